"""`covey agents`: every background session in its group, a peek panel, a dispatch input.

The view polls `store.data_version()` every 50 ms and re-reads the rows only when someone
committed, so a state change shows within one poll plus one read. Overlaps (git scans) run
in a worker thread every few seconds. Stopping and deleting waits for the session's host, so
it runs in a worker thread too.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Input, Static

from covey.errors import CoveyError, UserError
from covey.git.overlaps import find_overlaps
from covey.git.worktrees import find_repo
from covey.sessions import control
from covey.sessions.listing import ALL_KINDS, AgentRow, agent_rows
from covey.store import Store
from covey.store.sessions import SessionKind
from covey.teams.user_mail import tell_teammate
from covey.teams.view import task_board, teammates_of
from covey.tui.agent_list import AgentList
from covey.tui.help import HelpScreen
from covey.tui.inputs import EmptyKeysInput
from covey.tui.peek import PEEK_LINES, PeekPanel
from covey.tui.rows import awaiting_input, overlaps_by_worktree, terminal_title
from covey.tui.session_screen import EnsureHost, SessionScreen
from covey.tui.transcript import tail_lines

__all__ = ["AgentViewApp", "AgentsScreen"]

POLL_S = 0.05
OVERLAP_SCAN_S = 5.0
DELETE_WINDOW_S = 2.0
EMPTY_INPUT_KEYS = {"space": "screen.peek", "q": "app.quit", "question_mark": "screen.help"}


class AgentsScreen(Screen[None]):
    DEFAULT_CSS = """
    AgentsScreen #view-header { height: 1; background: $boost; text-style: bold; }
    AgentsScreen #view-message { height: auto; color: $warning; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("ctrl+x", "stop_and_delete", "Stop, delete", show=False, priority=True),
        Binding("escape", "close_peek", "Close peek", show=False),
    ]

    def __init__(
        self,
        store: Store,
        cwd: Path,
        *,
        kinds: Sequence[SessionKind],
        model: str | None,
        permission_mode: str | None,
        clock: Callable[[], float],
        ensure_host: EnsureHost | None,
        overlap_scan: bool,
    ) -> None:
        super().__init__()
        self.overlap_scan = overlap_scan
        self.store = store
        self.cwd = cwd
        self.kinds = kinds
        self.model = model
        self.permission_mode = permission_mode
        self.clock = clock
        self.ensure_host = ensure_host
        self.rows: list[AgentRow] = []
        self.overlaps: dict[str, tuple[str, ...]] = {}
        self._version: int | None = None
        self._armed: tuple[str, float] | None = None
        """The session a first Ctrl+X picked, and when."""

    def compose(self) -> ComposeResult:
        yield Static("", id="view-header")
        yield AgentList(self.clock, id="agent-list")
        yield PeekPanel()
        yield Static("", id="view-message")
        yield EmptyKeysInput(
            EMPTY_INPUT_KEYS,
            placeholder="dispatch a prompt (@agent prompt) · Enter attach · Space peek · ? help",
            id="dispatch",
        )

    @property
    def agent_list(self) -> AgentList:
        return self.query_one(AgentList)

    @property
    def peek_panel(self) -> PeekPanel:
        return self.query_one(PeekPanel)

    def on_mount(self) -> None:
        self.peek_panel.display = False
        self.query_one("#dispatch").focus()
        self.poll()
        # What exists now (Textual, covey, the first rows) lives as long as the view: keep it
        # out of the collector's full passes, which otherwise cost 35-55 ms every few reloads.
        gc.freeze()
        self.set_interval(POLL_S, self.poll)
        self.set_interval(1.0, self.agent_list.refresh)  # ages
        if self.overlap_scan:
            self.scan_overlaps()
            self.set_interval(OVERLAP_SCAN_S, self.scan_overlaps)

    def poll(self) -> None:
        version = self.store.data_version()
        if version != self._version:
            self._version = version
            self.reload()

    def reload(self) -> None:
        """Re-read the rows and show them (the cursor stays on its session)."""
        self.rows = agent_rows(self.store, kinds=self.kinds, overlaps=self.overlaps)
        with self.store.read() as conn:
            teammates = teammates_of(conn, [r.id for r in self.rows])
        self.agent_list.set_rows(self.rows, teammates)
        waiting = awaiting_input(self.rows)
        header = f" covey agents · {len(self.rows)} sessions · {waiting} awaiting input · ? help"
        self.query_one("#view-header", Static).update(header)
        if isinstance(self.app, AgentViewApp):
            self.app.set_terminal_title(terminal_title(self.rows))
        if self.peek_panel.display:
            self._show_peek()

    def show_message(self, text: str) -> None:
        self.query_one("#view-message", Static).update(text)

    def action_move(self, delta: int) -> None:
        self.agent_list.move(delta)
        if self.peek_panel.display:
            self._show_peek()

    def action_peek(self) -> None:
        if self.agent_list.on_more:
            self.agent_list.unfold()
            return
        if self.agent_list.selected is None:
            self.show_message("no session to peek at")
            return
        self.peek_panel.display = True
        self._show_peek()
        self.query_one("#reply").focus()
        self._wake(self.agent_list.selected)

    def _wake(self, row: AgentRow | None) -> None:
        """An interrupted session someone looks at continues (see `control.wake`)."""
        if row is not None and row.state == "interrupted" and control.wake(self.store, row.id):
            self.show_message(f"resuming · {row.label}")
            self._ensure_host_soon()

    def _show_peek(self) -> None:
        row = self.agent_list.selected
        if row is None:
            self.action_close_peek()
            return
        with self.store.read() as conn:
            latest = tail_lines(conn, row.id, PEEK_LINES)
            board = task_board(conn, row.id)
        self.peek_panel.show_row(row, latest, board)

    def action_close_peek(self) -> None:
        self.peek_panel.display = False
        self.query_one("#dispatch").focus()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    @on(Input.Submitted, "#dispatch")
    def on_dispatch_submitted(self, event: Input.Submitted) -> None:
        text = event.value
        if not text.strip():
            self.attach()
            return
        try:
            row = control.dispatch(
                self.store,
                self.cwd,
                text,
                model=self.model,
                permission_mode=self.permission_mode,
            )
        except UserError as e:
            self.show_message(str(e))
            return
        event.input.clear()
        self.show_message(f"dispatched · {row.id}")
        self._ensure_host_soon()
        self.reload()

    @on(Input.Submitted, "#reply")
    def on_reply_submitted(self, event: Input.Submitted) -> None:
        row = self.agent_list.selected
        if row is None or not event.value.strip():
            return
        text = row.pending.choose(event.value) if row.pending else event.value
        try:
            if row.kind == "teammate":  # its lead's host reads its mail: no supervisor needed
                tell_teammate(self.store, row.id, text)
            else:
                control.reply(self.store, row.id, text)
        except UserError as e:
            self.show_message(str(e))
            return
        event.input.clear()
        if row.kind == "teammate":
            self.show_message(f"message sent · {row.label}")
            return
        self.show_message(f"reply queued · {row.label}")
        self._ensure_host_soon()

    def attach(self) -> None:
        if self.agent_list.on_more:
            self.agent_list.unfold()
            return
        row = self.agent_list.selected
        if row is None:
            self.show_message("no session to attach to: type a prompt to dispatch one")
            return
        if row.kind == "teammate":  # it runs on its lead's host: peek at it, reply there
            self.action_peek()
            return
        self.app.push_screen(SessionScreen(self.store, row.id, ensure_host=self.ensure_host))

    def action_stop_and_delete(self) -> None:
        row = self.agent_list.selected
        if row is None:
            return
        now = time.monotonic()
        armed = self._armed
        # a teammate is only stopped: its name, tasks and mail stay with its team
        teammate = row.kind == "teammate"
        if armed is not None and armed[0] == row.id and now - armed[1] <= DELETE_WINDOW_S:
            self._armed = None
            if teammate:
                self.stop_teammate(row.id, row.label)
                return
            self.show_message(f"stopping and deleting {row.label}…")
            self.remove_session(row.id, row.label)
            return
        self._armed = (row.id, now)
        what = "stop" if teammate else "stop and delete"
        self.show_message(f"press Ctrl+X again to {what} {row.label}")
        self.set_timer(DELETE_WINDOW_S, partial(self._disarm, self._armed))

    def _disarm(self, armed: tuple[str, float]) -> None:
        if self._armed == armed:
            self._armed = None
            self.show_message("")

    @property
    def delete_armed(self) -> bool:
        return self._armed is not None

    @work(thread=True, group="remove")
    def remove_session(self, session_id: str, label: str) -> None:
        try:
            control.remove(self.store, session_id)
        except CoveyError as e:
            self.app.call_from_thread(self.show_message, f"{label}: {e}")
            return
        self.app.call_from_thread(self.show_message, f"stopped and deleted · {label}")

    @work(thread=True, group="remove")
    def stop_teammate(self, session_id: str, label: str) -> None:
        try:
            _, outcome = control.stop(self.store, session_id)
        except CoveyError as e:
            self.app.call_from_thread(self.show_message, f"{label}: {e}")
            return
        said = {"requested": "stop requested", "stopped": "stopped"}.get(outcome, "already ended")
        self.app.call_from_thread(self.show_message, f"{said} · {label}")

    @work(thread=True, exclusive=True, group="overlaps")
    def scan_overlaps(self) -> None:
        worktrees = [r.worktree for r in self.rows if r.worktree and Path(r.worktree).is_dir()]
        repos: set[Path] = set()
        for path in worktrees:
            try:
                repos.add(find_repo(Path(path)))
            except UserError:
                continue
        overlaps = []
        for repo in repos:
            try:
                overlaps += find_overlaps(repo)
            except CoveyError:
                continue
        found = overlaps_by_worktree(overlaps, worktrees)
        self.app.call_from_thread(self._apply_overlaps, found)

    def _apply_overlaps(self, found: dict[str, tuple[str, ...]]) -> None:
        if found != self.overlaps:
            self.overlaps = found
            self.reload()

    def _ensure_host_soon(self) -> None:
        ensure = self.ensure_host
        if ensure is not None:
            self.run_worker(asyncio.to_thread(ensure), group="ensure-host", exclusive=True)


class AgentViewApp(App[None]):
    """The agent view over `store`. `clock` gives the time ages are measured at (fixed in
    snapshot tests); `ensure_host` starts the supervisor after a dispatch or a reply;
    `overlap_scan` off leaves `agents.overlaps` as it is set (no git scans)."""

    TITLE = "covey agents"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True)
    ]

    def __init__(
        self,
        store: Store,
        cwd: Path,
        *,
        all_kinds: bool = False,
        model: str | None = None,
        permission_mode: str | None = None,
        clock: Callable[[], float] = time.time,
        ensure_host: EnsureHost | None = None,
        overlap_scan: bool = True,
    ) -> None:
        super().__init__()
        self.store = store
        self.agents = AgentsScreen(
            store,
            cwd,
            kinds=ALL_KINDS if all_kinds else ("background",),
            model=model,
            permission_mode=permission_mode,
            clock=clock,
            ensure_host=ensure_host,
            overlap_scan=overlap_scan,
        )
        self.terminal_title = ""

    def get_default_screen(self) -> Screen[None]:
        return self.agents

    def reload(self) -> None:
        """Re-read the store and update the list (what the benchmark times)."""
        self.agents.reload()

    def set_terminal_title(self, title: str) -> None:
        """ "N awaiting input · covey agents" in the terminal's title bar (OSC 2)."""
        if title == self.terminal_title:
            return
        self.terminal_title = title
        driver = self._driver
        if driver is not None and not self.is_headless:
            driver.write(f"\x1b]2;{title}\x07")

    @on(SessionScreen.Detached)
    def on_session_detached(self) -> None:
        self.pop_screen()
        self.agents.reload()
