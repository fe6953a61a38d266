"""The one session host: a planned session made real, and run turn by turn.

`SessionHost.open(store, plan)` builds the model (input errors first, before anything is
created), opens the worktree the plan asks for, creates the session row (or loads the
conversation of the session it continues), takes the session's lease — once — and locks its
worktree while it is hosted. `run_turn(prompt)` runs one prompt to the end of its turn under
the lease's heartbeat, writing `working` once at its start and the final state at its end
from one table (`outcome`), whoever hosts: `covey -p`, the session screen, the supervisor.
`close()` lets go of the worktree lock and the lease.

Asking a person goes through an `Asker`: the session screen answers inline, the supervisor
stores the question and waits for a `reply` command.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from covey.agent import RunResult
from covey.agent.loop import Agent, Observer
from covey.agent.tool_runner import Approval
from covey.budget.rate_limiter import shared_limiter
from covey.budget.spend_limits import BudgetLimits, SessionBudget, budget_pending, warn_host
from covey.config import credential_names
from covey.errors import BudgetExceeded, LeaseLost, RunError
from covey.git.worktrees import (
    Worktree,
    find_repo,
    gitignore_hint,
    lock_worktree,
    open_worktree,
    unlock_worktree,
)
from covey.hooks import HookCallback
from covey.messages import Message, ToolUseBlock, Usage
from covey.models.base import Model
from covey.models.retry import RetryNotice
from covey.sessions.background import tree_root
from covey.sessions.control import request_pool_refill
from covey.sessions.hooks_bridge import CommandHooks, WorktreeCommandHooks, hook_runner
from covey.sessions.lease import HostLease
from covey.sessions.pending import set_waiting, with_meta
from covey.sessions.persist import Persister
from covey.sessions.plan import SessionPlan
from covey.sessions.resume import load_conversation
from covey.sessions.state import set_state
from covey.sessions.subagent_stops import acting_on_subagent_stops
from covey.sessions.subagents import subagent_runtime
from covey.sessions.tool_runs import StoreToolRuns, end_leftover_runs
from covey.store import Store
from covey.store.session_meta import SessionMeta
from covey.store.sessions import (
    SessionRow,
    SessionState,
    get_session,
    insert_session,
    new_session_id,
    update_session,
)
from covey.store.transcript import read_entries
from covey.store.usage import last_usage_id, session_usage
from covey.teams.join import join_team
from covey.tools import core_tools
from covey.tools.base import SandboxOptions, Tool, ToolContext
from covey.tools.permissions import Decision

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


class Asker(Protocol):
    """How a hosted session asks its person (AskUserQuestion, a permission to grant)."""

    def bind(self, session_id: str, epoch: int, hooks: CommandHooks) -> None: ...

    async def ask_user(self, question: str, options: list[str]) -> str: ...

    async def approve(self, call: ToolUseBlock, decision: Decision) -> bool | Approval: ...


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
        worktree, plan = _open_worktree(store, plan, wake_supervisor)
        with store.write() as conn:
            row = _session_row(conn, plan, model.name, worktree)
            foreground = tree_root(conn, row).kind != "background"
        lease = HostLease(store, row.id, host_id)
        try:
            epoch = lease.adopt(claimed_epoch) if claimed_epoch is not None else lease.acquire()
            if worktree is not None and plan.previous is not None:
                _record_worktree(store, row, epoch, worktree)
            worktree = worktree or _existing_worktree(row)
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
        hooks = _command_hooks(plan, row.id, hook_callback)
        if asker is not None:
            asker.bind(row.id, epoch, hooks)
        if limiter is not None:
            limiter.bind(row.id, epoch)
        resolve = plan.resolver(on_retry, limiter)
        agent = _agent(
            store, plan, row.id, epoch, model, resolve, messages, hooks, asker, observers
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


def _open_worktree(
    store: Store, plan: SessionPlan, wake_supervisor: Callable[[], object] | None
) -> tuple[Worktree | None, SessionPlan]:
    """The worktree a new session asks for (`-w`, or a queued background session's
    `bg-ID`), and the plan moved into it."""
    previous = plan.previous
    queued = previous is not None and previous.state == "queued" and previous.kind == "background"
    if queued:
        assert previous is not None
        name: str | None = f"bg-{previous.id}"
        base, repo = previous.meta.base, previous.meta.repo
    elif plan.options.worktree is not None and previous is None:
        name, base, repo = plan.options.worktree or None, None, None
    else:
        return None, plan
    settings = plan.settings.worktree
    hooks = None
    if not queued:
        hooks = WorktreeCommandHooks(
            hook_runner(
                plan.hooks,
                session_id="",
                cwd=plan.cwd,
                project_dir=plan.loaded.project_root,
                mode=plan.policy.mode,
                settings=plan.settings,
            )
        )
    wt = open_worktree(
        plan.cwd, name, settings, hooks=hooks, base=base, repo=Path(repo) if repo else None
    )
    refill = settings.pool > 0 and request_pool_refill(store, wt.repo_root) is not None
    if refill and wake_supervisor is not None:
        wake_supervisor()
    hint = None if queued else gitignore_hint(wt.repo_root)
    return wt, plan.moved_to(wt.path, warning=hint)


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


def _record_worktree(store: Store, row: SessionRow, epoch: int, wt: Worktree) -> None:
    """A queued background session now works in its worktree (not a state change)."""
    meta = row.meta.model_copy(update={"worktree": str(wt.path), "branch": wt.branch})
    with store.write() as conn:
        update_session(conn, row.id, epoch, cwd=str(wt.path), meta=meta)


def _existing_worktree(row: SessionRow) -> Worktree | None:
    """The worktree a continued session works in, if it still exists."""
    if not row.meta.worktree or not Path(row.meta.worktree).is_dir():
        return None
    path = Path(row.meta.worktree)
    repo = Path(row.meta.repo) if row.meta.repo else find_repo(path)
    return Worktree(path.name, path, row.meta.branch or "", "", repo, created=False)


def _command_hooks(
    plan: SessionPlan, session_id: str, callback: HookCallback | None
) -> CommandHooks:
    return CommandHooks(
        hook_runner(
            plan.hooks,
            session_id=session_id,
            cwd=plan.cwd,
            project_dir=plan.loaded.project_root,
            mode=plan.policy.mode,
            settings=plan.settings,
            callback=callback,
        )
    )


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


def _agent(
    store: Store,
    plan: SessionPlan,
    session_id: str,
    epoch: int,
    model: Model,
    resolve: Callable[[str], Model],
    messages: list[Message],
    hooks: CommandHooks,
    asker: Asker | None,
    observers: Sequence[Observer],
) -> Agent:
    settings = plan.settings
    ctx = _tool_context(store, plan, session_id, asker)
    approver = asker.approve if asker else None
    told, budget = _observers_and_budget(store, plan, session_id, epoch, observers, hooks)
    runtime = subagent_runtime(
        store,
        plan.loaded,
        plan.definitions,
        env=plan.env,
        resolve=resolve,
        allowed_tools=plan.options.allowed_tools,
        disallowed_tools=plan.options.disallowed_tools,
        hooks=hooks,
        approver=approver,
        request_guard=budget,
    )
    team = join_team(store, plan, session_id, epoch, hooks)  # None unless teams are on
    if team is not None:
        runtime.teammates, ctx.file_owners = team.launcher, team.owners
    spawner = runtime.agent_tool(model=model, mode=plan.policy.mode)
    tools: list[Tool[Any]] = [*core_tools(), *([spawner] if spawner else [])]
    if plan.tool_names is not None:
        tools = [t for t in tools if t.name in plan.tool_names]
    tools += team.tools if team is not None else []
    return Agent(
        model,
        tools,
        plan.system_prompt,
        ctx,
        plan.policy,
        approver=approver,
        hooks=hooks,
        max_turns=plan.max_turns,
        auto_compact_tokens=settings.autoCompactWindow or int(model.context_window * 0.9),
        agent_name=_agent_name(plan),
        observers=told,
        messages=messages,
        inbox=spawner.inbox if spawner else None,
        mailbox=team.mailbox if team else None,
        request_guard=budget,
    )


def _tool_context(
    store: Store, plan: SessionPlan, session_id: str, asker: Asker | None
) -> ToolContext:
    settings = plan.settings
    return ToolContext(
        workspace=plan.cwd,
        extra_dirs=[Path(d).expanduser() for d in settings.permissions.additionalDirectories],
        session_id=session_id,
        sandbox=SandboxOptions(
            enabled=settings.sandbox.enabled,
            network=settings.sandbox.network,
            pass_credentials=settings.tools.passCredentials,
            credential_names=credential_names(settings),
        ),
        ask_user=asker.ask_user if asker else None,
        tool_runs=StoreToolRuns(store, session_id),
    )


def _agent_name(plan: SessionPlan) -> str | None:
    """What requests are tagged with: a teammate's own name (each has its own route in the
    fake provider), else the main agent's definition."""
    if plan.options.kind == "teammate":
        return plan.options.name
    return plan.definition.name if plan.definition else None
