"""Inputs whose keys mean something else while they are empty: in the agent view, Space peeks,
`q` quits and `?` shows help; in the session screen, ← detaches."""

from __future__ import annotations

from collections.abc import Mapping

from textual import events
from textual.message import Message
from textual.widgets import Input

__all__ = ["EmptyKeysInput", "PromptInput"]


class EmptyKeysInput(Input):
    """An input that, while empty, runs an action for some keys instead of typing them."""

    def __init__(
        self, empty_actions: Mapping[str, str], *, placeholder: str = "", id: str | None = None
    ) -> None:
        super().__init__(placeholder=placeholder, id=id)
        self.empty_actions = dict(empty_actions)
        """Key name (`space`, `q`, `question_mark`) → action (`screen.peek`)."""

    async def _on_key(self, event: events.Key) -> None:
        action = self.empty_actions.get(event.key)
        if action is not None and not self.value:
            event.stop()
            event.prevent_default()
            await self.run_action(action)
            return
        await super()._on_key(event)


class PromptInput(Input):
    """The session screen's input: ← while it is empty asks to detach."""

    class Detach(Message):
        """← was pressed on the empty input."""

    def action_cursor_left(self, select: bool = False) -> None:
        if not self.value and not select:
            self.post_message(self.Detach())
            return
        super().action_cursor_left(select)
