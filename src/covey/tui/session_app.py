"""The session screen on its own: `covey attach ID` and plain `covey`."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from covey.store import Store
from covey.tui.foreground import ForegroundHost
from covey.tui.session_screen import EnsureHost, SessionScreen

__all__ = ["SessionApp"]


class SessionApp(App[str | None]):
    """Attached to `session_id`, or hosting a new foreground session (`host`). Detaching
    exits; the result is the id of a session that was handed to the background."""

    TITLE = "covey"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True)
    ]

    def __init__(
        self,
        store: Store,
        session_id: str | None = None,
        *,
        host: ForegroundHost | None = None,
        initial_prompt: str | None = None,
        ensure_host: EnsureHost | None = None,
    ) -> None:
        super().__init__()
        self.session_screen = SessionScreen(
            store,
            session_id,
            host=host,
            initial_prompt=initial_prompt,
            ensure_host=ensure_host,
        )

    def get_default_screen(self) -> Screen[None]:
        return self.session_screen

    @on(SessionScreen.Detached)
    def on_session_detached(self, message: SessionScreen.Detached) -> None:
        self.exit(message.session_id if message.handed_over else None)
