"""The session screen on its own: `covey attach ID` and plain `covey`."""

from __future__ import annotations

import time
from typing import ClassVar

from textual import on
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from covey.sessions.interactive import ForegroundHost
from covey.store import Store
from covey.tui.session_screen import EnsureHost, SessionScreen

__all__ = ["QUIT_WINDOW_S", "SessionApp"]

QUIT_WINDOW_S = 2.0
"""A second Ctrl+C within this many seconds quits."""


class SessionApp(App[str | None]):
    """Attached to `session_id`, or hosting a new foreground session (`host`). Detaching
    exits; the result is the id of a session that was handed to the background.

    Ctrl+C stops a turn running here; otherwise (or again within `QUIT_WINDOW_S`) a second
    Ctrl+C quits. Quitting never stops a background session; a foreground one stays as it
    was left (`covey attach ID` continues it)."""

    TITLE = "covey"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "interrupt_or_quit", "Interrupt, quit", show=False, priority=True)
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
        self._armed: float | None = None
        self.session_screen = SessionScreen(
            store,
            session_id,
            host=host,
            initial_prompt=initial_prompt,
            ensure_host=ensure_host,
        )

    def get_default_screen(self) -> Screen[None]:
        return self.session_screen

    async def action_interrupt_or_quit(self) -> None:
        now = time.monotonic()
        armed, self._armed = self._armed, now
        if await self.session_screen.interrupt():
            return
        if armed is not None and now - armed <= QUIT_WINDOW_S:
            self.exit(None)
            return
        what = "quit" if self.session_screen.host is not None else "detach (the session goes on)"
        self.session_screen.show_message(f"press Ctrl+C again to {what}")

    @on(SessionScreen.Detached)
    def on_session_detached(self, message: SessionScreen.Detached) -> None:
        self.exit(message.session_id if message.handed_over else None)
