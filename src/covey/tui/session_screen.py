"""The session screen: one session's transcript, the question it waits on, and an input.

The transcript is tailed from the store (new entries appear as they are committed, by
whichever process hosts the session). A foreground session (plain `covey`) also streams the
text of the response being written. The input answers a pending question or permission
prompt; otherwise it is the next prompt. ← on the empty input detaches: a background
session goes on where it is; a foreground one is handed to the supervisor.

A line starting with `/` is a slash command, never a prompt: parsed and run by
`covey.sessions.slash` and `covey.sessions.slash_run`; the screen shows the commands matching
what is typed, completes inline (→ accepts), and shows what a command answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Log, Static

from covey.agent import AgentEvent, MessageAdded, TextDelta
from covey.agent.events import BudgetWarning
from covey.budget.spend_limits import warning_text
from covey.errors import UserError
from covey.sessions import control
from covey.sessions.interactive import ForegroundHost
from covey.sessions.listing import display_state
from covey.sessions.pending import Pending
from covey.sessions.slash import COMMANDS, Invocation, matching, parse
from covey.sessions.slash_run import run_command
from covey.store import Store
from covey.store.sessions import get_session
from covey.store.transcript import read_entries
from covey.tui.help import SESSION_KEYS
from covey.tui.inputs import PromptInput
from covey.tui.transcript import entry_lines

__all__ = ["SessionScreen"]

POLL_S = 0.1

EnsureHost = Callable[[], object]


def pending_text(pending: Pending) -> str:
    lines = [f"{'Permission' if pending.kind == 'permission' else 'Question'}: {pending.text}"]
    lines += [f"  {i}. {option}" for i, option in enumerate(pending.options, 1)]
    if pending.kind == "permission":
        lines.append("  answer y (allow) or n (deny), then Enter")
    elif pending.options:
        lines.append("  type a number or an answer, then Enter")
    return "\n".join(lines)


class SessionScreen(Screen[None]):
    """`session_id` for a session hosted elsewhere, or `host` for a foreground session."""

    DEFAULT_CSS = """
    SessionScreen #session-title { height: 1; background: $boost; text-style: bold; }
    SessionScreen #transcript { height: 1fr; }
    SessionScreen #live { height: auto; max-height: 10; color: $text-muted; }
    SessionScreen #ask { height: auto; color: $warning; border-left: thick $warning; }
    SessionScreen #session-message { height: auto; color: $text-muted; }
    SessionScreen #slash-hints { height: auto; max-height: 12; color: $text-muted; }
    """

    class Detached(Message):
        """The person left the screen; `handed_over`: a foreground session went background."""

        def __init__(self, session_id: str | None, handed_over: bool) -> None:
            super().__init__()
            self.session_id = session_id
            self.handed_over = handed_over

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
        self.store = store
        self.session_id = session_id
        self.host = host
        self.initial_prompt = initial_prompt
        self.ensure_host = ensure_host
        """Makes sure a host (the supervisor) runs after a reply or hand-over."""
        self.live_text = ""
        self.pending: Pending | None = None
        self._seq = 0
        self._error_shown: str | None = None
        self._version: int | None = None
        if host is not None:
            host.on_event = self._on_agent_event
            host.on_change = self.refresh_session

    def compose(self) -> ComposeResult:
        yield Static("", id="session-title")
        yield Log(id="transcript", auto_scroll=True)
        yield Static("", id="live")
        yield Static("", id="ask")
        yield Static("", id="session-message", markup=False)
        yield Static("", id="slash-hints", markup=False)
        names = [f"/{name}" for command in COMMANDS for name in command.names]
        suggester = SuggestFromList(names, case_sensitive=False)
        yield PromptInput(placeholder=self._placeholder(), id="prompt", suggester=suggester)

    def on_mount(self) -> None:
        self.query_one("#live").display = False
        self.query_one("#ask").display = False
        self.query_one("#slash-hints").display = False
        self.query_one(PromptInput).focus()
        self.refresh_session()
        self.set_interval(POLL_S, self.poll)
        attached = self.host is None and self.session_id is not None
        if attached and control.wake(self.store, self.session_id or "") is not None:
            self.show_message("resuming the session")
            self._ensure_host_soon()
        if self.initial_prompt:
            self.submit(self.initial_prompt)

    async def on_unmount(self) -> None:
        if self.host is not None:
            await self.host.let_go()

    def _placeholder(self) -> str:
        if self.host is not None and self.session_id is None:
            return "what should the agent do?  (← on empty input: leave)"
        return "message the agent  (← on empty input: detach)"

    def show_message(self, text: str) -> None:
        self.query_one("#session-message", Static).update(text)

    def poll(self) -> None:
        version = self.store.data_version()
        if version != self._version:
            self._version = version
            self.refresh_session()

    def refresh_session(self) -> None:
        """Append new transcript entries; show the state and what the session waits for."""
        if self.host is not None:
            self.session_id = self.host.session_id
        if self.session_id is None:
            self.query_one("#session-title", Static).update(" new session · covey")
            return
        with self.store.read() as conn:
            row = get_session(conn, self.session_id)
            entries = read_entries(conn, self.session_id, after_seq=self._seq)
        if entries:
            self._seq = entries[-1].seq
            lines = [line for entry in entries for line in entry_lines(entry)]
            self.query_one(Log).write_lines(lines)
        if row is None:
            return
        state = display_state(row)
        if self.host is not None:
            self.pending = self.host.pending
            error = f" · {self.host.error}" if self.host.error else ""
            if self.host.error and self.host.error != self._error_shown:
                self.show_message(self.host.error)  # in full (a budget stop says what to do)
            self._error_shown = self.host.error
        else:
            self.pending = row.meta.pending if state == "needs_input" else None
            error = ""
        label = f"{row.id} {row.name}" if row.name else row.id
        title = f" {label} · {state} · {row.model}{error}"
        self.query_one("#session-title", Static).update(title)
        ask = self.query_one("#ask", Static)
        ask.display = self.pending is not None
        ask.update(pending_text(self.pending) if self.pending else "")

    def _on_agent_event(self, event: AgentEvent) -> None:
        live = self.query_one("#live", Static)
        if isinstance(event, TextDelta):
            self.live_text += event.text
            live.update(f"● {self.live_text}")
            live.display = True
        elif isinstance(event, MessageAdded):
            self.live_text = ""
            live.display = False
            self.refresh_session()
        elif isinstance(event, BudgetWarning):
            self.show_message(f"warning: {warning_text(event)}")

    @on(Input.Changed, "#prompt")
    def show_slash_hints(self, event: Input.Changed) -> None:
        """As `/…` is typed: the commands it may become, one a line."""
        found = matching(event.value)
        hints = self.query_one("#slash-hints", Static)
        hints.display = bool(found)
        hints.update("\n".join(f"  {c.usage:<26} {c.described}" for c in found))

    @on(Input.Submitted, "#prompt")
    def on_prompt_submitted(self, event: Input.Submitted) -> None:
        text = event.value
        if not text.strip():
            return
        event.input.clear()
        self.submit(text)

    def submit(self, text: str) -> None:
        """Run a slash command, answer what the session waits for, or send `text` as its
        next prompt."""
        self.show_message("")
        try:
            parsed = parse(text)
        except UserError as e:  # an unknown command: nothing is sent
            self.show_message(str(e))
            return
        if isinstance(parsed, Invocation):
            self.run_worker(self.run_slash(parsed), group="slash")
            return
        text = parsed
        try:
            if self.host is not None:
                if self.host.pending is not None:
                    self.host.answer(text)
                else:
                    self.host.start_turn(text)
                    self.query_one(PromptInput).placeholder = self._placeholder()
            elif self.session_id is not None:
                reply = self.pending.choose(text) if self.pending else text
                control.reply(self.store, self.session_id, reply)
                self.show_message("reply queued")
                self._ensure_host_soon()
        except UserError as e:
            self.show_message(str(e))
        self.refresh_session()

    async def run_slash(self, invocation: Invocation) -> None:
        """Run a slash command; show what it answers and do what it asks of the screen."""
        try:
            reply = await run_command(invocation, self.store, self.host, self.session_id)
        except UserError as e:
            self.show_message(str(e))
            return
        if reply.action == "reload":
            self._reload()
        lines = reply.lines + (SESSION_KEYS if invocation.command.name == "help" else [])
        if lines:
            self.query_one(Log).write_lines([f"> /{invocation.command.name}", *lines])
        self.show_message(reply.notice)
        if reply.action == "exit":
            self.app.exit(None)
        elif reply.action == "background":
            await self.detach()

    def _reload(self) -> None:
        """The screen now shows another session (or a fresh one): its transcript anew."""
        self._seq = 0
        self.query_one(Log).clear()
        self.session_id = self.host.session_id if self.host is not None else self.session_id
        self.query_one(PromptInput).placeholder = self._placeholder()
        self.refresh_session()

    def _ensure_host_soon(self) -> None:
        ensure = self.ensure_host
        if ensure is not None:
            self.run_worker(asyncio.to_thread(ensure), group="ensure-host", exclusive=True)

    async def interrupt(self) -> bool:
        """Ctrl+C: stop a turn running in this process; False when none runs here."""
        if self.host is None or not await self.host.interrupt():
            return False
        self.show_message("interrupted · Ctrl+C again to quit")
        self.refresh_session()
        return True

    @on(PromptInput.Detach)
    async def detach(self) -> None:
        """← on the empty input: leave; a foreground session goes to the background."""
        if self.host is None:
            self.post_message(self.Detached(self.session_id, handed_over=False))
            return
        self.show_message("sending the session to the background…")
        session_id = await self.host.hand_over()
        if session_id is not None and self.ensure_host is not None:
            await asyncio.to_thread(self.ensure_host)
        self.post_message(self.Detached(session_id, handed_over=session_id is not None))
