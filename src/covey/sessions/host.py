"""The one session host: a planned session made real, and run turn by turn.

`SessionHost.open(store, plan)` builds the model (input errors first, before anything is
created), opens the worktree the plan asks for, creates the session row (or loads the
conversation of the session it continues), takes the session's lease — once — and locks its
worktree while it is hosted. `run_turn(prompt)` runs one prompt to the end of its turn under
the lease's heartbeat, writing `working` once at its start and the final state at its end
from one table (`outcome`), whoever hosts: `covey -p`, the session screen, the supervisor.
`close()` lets go of the worktree lock and the lease. The worktree comes from
`session_worktree`, the agent's tools and context from `agent_wiring`; the host builds the
budget and the rate limiter they are given.

Asking a person goes through an `Asker`: the session screen answers inline, the supervisor
stores the question and waits for a `reply` command.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from covey.agent import RunResult
from covey.agent.loop import Agent, Observer
from covey.budget.rate_limiter import shared_limiter
from covey.budget.spend_limits import BudgetLimits, SessionBudget, budget_pending, warn_host
from covey.errors import BudgetExceeded, LeaseLost, RunError
from covey.git.worktrees import Worktree, lock_worktree, unlock_worktree
from covey.hooks import HookCallback
from covey.messages import Message, Usage
from covey.models.retry import RetryNotice
from covey.sessions.agent_wiring import Asker, command_hooks, wire_agent
from covey.sessions.background import tree_root
from covey.sessions.hooks_bridge import CommandHooks
from covey.sessions.lease import HostLease
from covey.sessions.pending import set_waiting, with_meta
from covey.sessions.persist import Persister
from covey.sessions.plan import SessionPlan
from covey.sessions.resume import load_conversation
from covey.sessions.session_worktree import (
    existing_worktree,
    open_session_worktree,
    record_worktree,
)
from covey.sessions.state import set_state
from covey.sessions.subagent_stops import acting_on_subagent_stops
from covey.sessions.tool_runs import StoreToolRuns, end_leftover_runs
from covey.store import Store
from covey.store.session_meta import SessionMeta
from covey.store.sessions import (
    SessionRow,
    SessionState,
    get_session,
    insert_session,
    new_session_id,
)
from covey.store.transcript import read_entries
from covey.store.usage import last_usage_id, session_usage

__all__ = ["Asker", "CancelCause", "SessionHost", "Spend", "outcome"]

CancelCause = Literal["stop", "interrupt", "shutdown", "detach"]
"""Why a host cancelled a running turn: `covey stop`; Ctrl+C in the session screen; the
supervisor going down; the screen handing the session to the supervisor."""

Final = tuple[SessionState, str | None]

_CANCELLED: dict[CancelCause | None, Final | None] = {
    "stop": ("stopped", "stopped by user"),
    "interrupt": ("stopped", "interrupted by user"),
    "shutdown": ("interrupted", "supervisor stopped"),
    "detach": None,  # whoever takes the session over records its state
    None: ("stopped", "interrupted"),  # Ctrl+C or `covey stop` reaching `covey -p`
}


def outcome(error: BaseException | None, cause: CancelCause | None = None) -> Final | None:
    """The state and reason a turn ends a session with, whoever hosts it; None: write
    nothing (another host owns the session now)."""
    if error is None:
        return ("completed", "end_turn")
    if isinstance(error, LeaseLost):
        return None
    if isinstance(error, asyncio.CancelledError | KeyboardInterrupt):
        return _CANCELLED[cause]
    if isinstance(error, BudgetExceeded):
        return ("stopped", f"{error.reason}: {error.summary}"[:300])
    if isinstance(error, RunError):
        return ("failed", f"{error.reason}: {error}"[:300])
    return ("failed", f"{type(error).__name__}: {error}"[:300])


class Spend:
    """What the session spent while this host ran it, from the usage rows (the one ledger):
    its own model calls and those of its subagents and teammates."""

    def __init__(self, store: Store, session_id: str, since_id: int) -> None:
        self.store, self.session_id, self.since_id = store, session_id, since_id

    def read(self) -> tuple[Usage, float]:
        with self.store.read() as conn:
            return session_usage(conn, self.session_id, since_id=self.since_id)


class SessionHost:
    def __init__(
        self,
        store: Store,
        plan: SessionPlan,
        row: SessionRow,
        lease: HostLease,
        agent: Agent,
        hooks: CommandHooks,
        worktree: Worktree | None,
        spend: Spend,
        stops_subagents: bool = False,
    ) -> None:
        self.store = store
        self.plan = plan
        self.session_id = row.id
        self.lease = lease
        self.agent = agent
        self.hooks = hooks
        self.worktree = worktree
        self.spend = spend
        self.resumed = plan.previous is not None and plan.previous.state != "queued"
        self.cancel_cause: CancelCause | None = None
        self.stops_subagents = stops_subagents
        """A foreground tree: `covey stop SUBAGENT_ID` is acted on here (`subagent_stops`)."""

    @property
    def cwd(self) -> Path:
        return self.plan.cwd

    @property
    def model_name(self) -> str:
        return self.agent.model.name

    @property
    def permission_mode(self) -> str:
        return self.plan.policy.mode

    @property
    def tool_names(self) -> list[str]:
        return list(self.agent.tools)

    @property
    def warnings(self) -> list[str]:
        return self.plan.warnings

    @classmethod
    def open(
        cls,
        store: Store,
        plan: SessionPlan,
        *,
        observers: Sequence[Observer] = (),
        asker: Asker | None = None,
        on_retry: Callable[[RetryNotice], None] | None = None,
        host_id: str | None = None,
        claimed_epoch: int | None = None,
        wake_supervisor: Callable[[], object] | None = None,
        hook_callback: HookCallback | None = None,
    ) -> SessionHost:
        """Make the planned session real and take it. `claimed_epoch`: the caller took the
        lease already (the supervisor claiming a queued session) under `host_id`.
        `wake_supervisor`: called when a worktree was taken from the warm pool, so the
        supervisor tops it up. `hook_callback`: answers the SDK hook callbacks in the plan's
        hooks (the stream-json host's)."""
        limiter = shared_limiter(store, plan.settings.rateLimits)
        model = plan.make_model(on_retry, limiter)  # a bad model or key changes nothing
        worktree, plan = open_session_worktree(store, plan, wake_supervisor)
        with store.write() as conn:
            row = _session_row(conn, plan, model.name, worktree)
            foreground = tree_root(conn, row).kind != "background"
        lease = HostLease(store, row.id, host_id)
        try:
            epoch = lease.adopt(claimed_epoch) if claimed_epoch is not None else lease.acquire()
            if worktree is not None and plan.previous is not None:
                record_worktree(store, row, epoch, worktree)
            worktree = worktree or existing_worktree(row)
            if worktree is not None:
                lock_worktree(worktree, f"covey session {row.id}")
            if plan.previous is not None:  # what a dead host's commands left runs no more
                end_leftover_runs(store, row.id)
            messages: list[Message] = []
            with store.read() as conn:
                if plan.previous is not None:
                    messages = load_conversation(read_entries(conn, row.id))
                since = last_usage_id(conn)
        except BaseException:
            lease.release()
            raise
        hooks = command_hooks(plan, row.id, hook_callback)
        if asker is not None:
            asker.bind(row.id, epoch, hooks)
        if limiter is not None:
            limiter.bind(row.id, epoch)
        resolve = plan.resolver(on_retry, limiter)
        told, budget = _observers_and_budget(store, plan, row.id, epoch, observers, hooks)
        agent = wire_agent(
            store, plan, row.id, epoch, model, resolve, messages, hooks, asker, told, budget
        )
        spend = Spend(store, row.id, since)
        return cls(store, plan, row, lease, agent, hooks, worktree, spend, foreground)

    async def run_turn(
        self,
        prompt: str,
        *,
        start_hooks: bool = True,
        finish: Callable[[RunResult], Awaitable[str | None]] | None = None,
    ) -> RunResult:
        """Run one prompt to the end of its turn. `start_hooks`: run SessionStart first (a
        host's first turn). `finish`: after the turn, before `completed` is written; what it
        returns is the session's summary (the supervisor commits the worktree there)."""
        epoch = self.lease.epoch
        self.cancel_cause = None
        stops = (
            acting_on_subagent_stops(self.store)
            if self.stops_subagents
            else contextlib.nullcontext()
        )
        try:
            async with self.lease.heartbeat(), stops:
                # on the loop, at once: a queue of other sessions' work in the thread pool
                # must not hold this turn back (and line every session's turns up behind it)
                self._set_working(epoch)
                if start_hooks:
                    prompt = await self.started(prompt)
                result = await self.agent.run(prompt)
                summary = await finish(result) if finish is not None else None
        except BaseException as e:
            final = outcome(e, self.cancel_cause)
            if isinstance(e, BudgetExceeded) and self.plan.options.kind == "background":
                await self._wait_for_budget(epoch, e)
            elif final is not None and not self._stays_waiting():
                with contextlib.suppress(RunError):
                    set_state(self.store, self.session_id, epoch, *final)
            raise
        set_state(self.store, self.session_id, epoch, "completed", "end_turn", summary=summary)
        message = f"session {self.session_id} completed" + (f": {summary}" if summary else "")
        await self.hooks.notify("agent_completed", message)
        return result

    async def started(self, prompt: str) -> str:
        """Run the SessionStart hooks (source `resume` or `startup`); `prompt` with the
        context they add."""
        context = await self.hooks.session_start("resume" if self.resumed else "startup")
        return f"{prompt}\n\n{context}" if context else prompt

    def _set_working(self, epoch: int) -> None:
        """`working`, once per turn; a question left from before is no longer waited for."""
        with self.store.read() as conn:
            row = get_session(conn, self.session_id)
        meta = with_meta(row.meta, pending=None, waiting=None) if row is not None else SessionMeta()
        set_state(self.store, self.session_id, epoch, "working", None, meta=meta)

    async def _wait_for_budget(self, epoch: int, error: BudgetExceeded) -> None:
        """A background session stopped by a budget waits in `needs_input` for a raise
        (`covey reply`) or a respawn; its host lets go of it."""
        pending = budget_pending(error, self.session_id)
        with contextlib.suppress(RunError):
            set_waiting(self.store, self.session_id, epoch, pending)
        await self.hooks.notify("agent_needs_input", f"session {self.session_id}: {pending.text}")

    def _stays_waiting(self) -> bool:
        """A supervisor going down leaves a session waiting on a stored question as it is:
        the reply continues it later."""
        if self.cancel_cause != "shutdown":
            return False
        with self.store.read() as conn:
            row = get_session(conn, self.session_id)
        return row is not None and row.state == "needs_input"

    def close(self) -> None:
        """Let go of the worktree lock and the lease (the session stays as recorded)."""
        try:
            StoreToolRuns(self.store, self.session_id).forget()
            if self.worktree is not None:
                unlock_worktree(self.worktree)
        finally:
            self.lease.release()


def _session_row(
    conn: Any, plan: SessionPlan, model_name: str, worktree: Worktree | None
) -> SessionRow:
    if plan.previous is not None:
        return plan.previous
    session_id = plan.options.session_id or new_session_id(conn)
    row = SessionRow.new(
        id=session_id,
        name=plan.options.name,
        kind=plan.options.kind,
        parent_id=plan.options.parent_id,
        cwd=str(plan.cwd),
        model=model_name,
        permission_mode=plan.policy.mode,
        agent=plan.definition.name if plan.definition else None,
        meta=SessionMeta(
            worktree=str(worktree.path) if worktree else None,
            branch=worktree.branch if worktree else None,
            provider=model_name.partition(":")[0],
        ),
    )
    insert_session(conn, row)
    return row


def _observers_and_budget(
    store: Store,
    plan: SessionPlan,
    session_id: str,
    epoch: int,
    observers: Sequence[Observer],
    hooks: CommandHooks,
) -> tuple[list[Observer], SessionBudget]:
    """The agent's observers (the persister first) and the session's budget check, which
    warns them."""
    settings = plan.settings
    told: list[Observer] = [Persister(store, session_id, epoch, pricing=settings.pricing)]
    told += observers
    budget = SessionBudget(
        store,
        session_id,
        BudgetLimits.of(settings.budget, plan.options.max_budget_usd),
        pricing=settings.pricing,
        warn=warn_host(told, hooks.notify, session_id),
    )
    return told, budget
