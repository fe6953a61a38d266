"""The interactive host behind plain `covey`'s session screen: runs each prompt as one turn
of one session in this process, asks the person inline (permissions, questions), and hands
the session to the supervisor when the screen detaches.

The session is planned once; each turn opens a `SessionHost` on it (the first creates the
session, the next ones continue it) and closes it at the turn's end, so the lease is held
only while a turn runs and the transcript in the store is the one truth. While a question
waits, the session row says `needs_input` with `meta.pending`, as a background host's would,
so the agent view shows it too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from covey.agent import AgentEvent, RunResult
from covey.errors import RunError, UserError
from covey.messages import ToolUseBlock
from covey.sessions import control
from covey.sessions.hooks_bridge import CommandHooks
from covey.sessions.host import CancelCause, SessionHost
from covey.sessions.lease import holder_alive
from covey.sessions.pending import Pending, is_yes, set_waiting
from covey.sessions.plan import SessionOptions, SessionPlan, plan_session
from covey.sessions.slash import compact_session
from covey.store import Store
from covey.store.sessions import SessionRow, get_session, update_session
from covey.tools.permissions import Decision

__all__ = ["ForegroundHost"]


@dataclass
class _Ask:
    pending: Pending
    future: asyncio.Future[str] = field(repr=False)


class ForegroundHost:
    """One foreground session, turn by turn. `on_event` sees every agent event; `on_change`
    is called when a turn starts or ends and when a question appears or is answered."""

    def __init__(
        self,
        store: Store,
        cwd: Path,
        *,
        model: str | None = None,
        permission_mode: str | None = None,
        max_budget_usd: float | None = None,
        on_event: Callable[[AgentEvent], None] = lambda _e: None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.cwd = cwd
        self.model = model
        self.permission_mode = permission_mode
        self.max_budget_usd = max_budget_usd
        self.on_event = on_event
        self.on_change = on_change
        self.session_id: str | None = None
        self.ask: _Ask | None = None
        self.error: str | None = None
        """Why the last turn failed, if it did."""
        self._plan: SessionPlan | None = None
        self._session: SessionHost | None = None
        self._turn: asyncio.Task[RunResult | None] | None = None
        self._started = False

    @property
    def running(self) -> bool:
        return self._turn is not None and not self._turn.done()

    @property
    def pending(self) -> Pending | None:
        return self.ask.pending if self.ask else None

    def start_turn(self, prompt: str) -> None:
        """Run `prompt` as the next turn (in the background of the event loop)."""
        if self.running:
            raise UserError("a turn is running: wait for it, or ← to send it to the background")
        self._session = SessionHost.open(
            self.store, self._next_plan(), observers=[self.on_event], asker=self
        )
        first, self._started = not self._started, True  # SessionStart: once per host
        self.session_id = self._session.session_id
        self.error = None
        self._turn = asyncio.create_task(self._run(self._session, prompt, start_hooks=first))
        self.on_change()

    def _next_plan(self) -> SessionPlan:
        """The session's plan: made once, then continuing the session the first turn made."""
        if self._plan is None or self._plan.session_id != self.session_id:
            self._plan = self._replan()
        return self._plan

    def _replan(self) -> SessionPlan:
        """A plan from this screen's options, continuing `session_id` (if any)."""
        options = SessionOptions(
            cwd=self.cwd,
            model=self.model,
            permission_mode=self.permission_mode,
            kind="interactive",
            max_budget_usd=self.max_budget_usd,
        )
        previous = None
        if self.session_id is not None:
            with self.store.read() as conn:
                previous = get_session(conn, self.session_id)
            if previous is None:
                raise UserError(f"session {self.session_id} is gone from the store")
        return plan_session(options, previous)

    @property
    def plan(self) -> SessionPlan:
        """The plan the next turn runs with (checked: `UserError` for bad input)."""
        return self._next_plan()

    def _idle(self, what: str) -> None:
        if self.running:
            raise UserError(f"a turn is running: wait for it (or Ctrl+C) before {what}")

    def clear(self) -> str | None:
        """`/clear`: the next prompt starts a fresh session in the same place; the id of the
        session left behind (it stays resumable), None when none had started."""
        self._idle("/clear")
        left, self.session_id = self.session_id, None
        self._plan, self._session, self._started, self.error = None, None, False, None
        self.on_change()
        return left

    def switch(self, *, model: str | None = None, permission_mode: str | None = None) -> None:
        """`/model NAME`, `/mode MODE`: the next turns run with it (checked first: a bad
        model or mode changes nothing)."""
        self._idle("switching")
        before = (self.model, self.permission_mode)
        self.model = model or self.model
        self.permission_mode = permission_mode or self.permission_mode
        try:
            self._plan = self._replan()
        except UserError:
            self.model, self.permission_mode = before
            raise
        previous = self._plan.previous
        if model and previous is not None:  # the session goes on with it (title, resume)
            with self.store.write() as conn:
                update_session(conn, previous.id, previous.epoch, model=self._plan.model_name)
        self.on_change()

    def resume(self, session: SessionRow) -> None:
        """`/resume`: continue `session` in this screen from the next prompt."""
        self._idle("/resume")
        if session.parent_id is not None:
            raise UserError(f"session {session.id} is a subagent or teammate: resume its lead")
        if session.host_id is not None and holder_alive(session.host_id):
            raise UserError(
                f"session {session.id} is running elsewhere: attach to it (covey attach "
                f"{session.id})"
            )
        before = (self.session_id, self._plan)
        self.session_id = session.id
        try:
            self._plan = self._replan()
        except UserError:
            self.session_id, self._plan = before
            raise
        self._session, self._started, self.error = None, False, None
        self.on_change()

    async def compact(self, instructions: str | None = None) -> str:
        """`/compact`: summarise this session's conversation now; one line saying so."""
        self._idle("/compact")
        if self.session_id is None:
            raise UserError("nothing to compact: send a prompt first")
        message = await compact_session(self.store, self._next_plan(), instructions)
        self.on_change()
        return message

    @property
    def context_window(self) -> int | None:
        """The window of the model of the latest turn run here (None before one ran)."""
        return self._session.agent.model.context_window if self._session else None

    def bind(self, session_id: str, epoch: int, hooks: CommandHooks) -> None:
        """`Asker`: this host asks only while its own turn runs; nothing to keep."""

    async def wait_turn(self) -> RunResult | None:
        """Wait for the running turn (if any) to end; its result, None when it failed."""
        return await self._turn if self._turn is not None else None

    async def _run(
        self, session: SessionHost, prompt: str, *, start_hooks: bool
    ) -> RunResult | None:
        try:
            return await session.run_turn(prompt, start_hooks=start_hooks)
        except RunError as e:
            self.error = str(e)
            return None
        except Exception as e:  # shown on the screen; the session row says what happened
            self.error = f"{type(e).__name__}: {e}"
            return None
        finally:
            session.close()
            self.ask = None
            self.on_change()

    def answer(self, text: str) -> None:
        """Answer the waiting question or permission prompt."""
        if self.ask is None:
            raise UserError("nothing is waiting for an answer")
        ask, self.ask = self.ask, None
        ask.future.set_result(ask.pending.choose(text))

    async def approve(self, call: ToolUseBlock, decision: Decision) -> bool:
        pending = Pending.permission(call.name, call.input, decision.reason)
        return is_yes(await self._wait_answer(pending))

    async def ask_user(self, question: str, options: list[str]) -> str:
        return await self._wait_answer(Pending(kind="question", text=question, options=options))

    async def _wait_answer(self, pending: Pending) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.ask = _Ask(pending, future)
        self._mark_waiting(pending)
        self.on_change()
        if self._session is not None:
            message = f"session {self._session.session_id}: {pending.text}"
            await self._session.hooks.notify("agent_needs_input", message)
        try:
            return await future
        finally:
            self.ask = None
            self._mark_waiting(None)
            self.on_change()

    def _mark_waiting(self, pending: Pending | None) -> None:
        """The row says needs_input (with the question) while the person is asked."""
        session = self._session
        if session is not None and self.running:
            set_waiting(self.store, session.session_id, session.lease.epoch, pending)

    async def let_go(self, cause: CancelCause = "detach") -> None:
        """Stop running here (the lease is released as the turn unwinds); `cause` decides
        the state the session is left in."""
        if self._turn is not None and not self._turn.done():
            if self._session is not None:
                self._session.cancel_cause = cause
            self._turn.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._turn

    async def interrupt(self) -> bool:
        """Ctrl+C: stop the running turn; the session stays (stopped, "interrupted by user")
        and the next prompt continues it. False when no turn runs."""
        if not self.running or self._session is None:
            return False
        await self.let_go("interrupt")
        self.on_change()
        return True

    async def hand_over(self) -> str | None:
        """Send the session to the background: let go of it, then make it the supervisor's.
        The session id, or None when no session was started."""
        await self.let_go()
        if self.session_id is None:
            return None
        control.hand_over(self.store, self.session_id)
        return self.session_id
