"""Assemble and run one session in this process: settings → model → store row → agent.

This is the foreground host of ARCHITECTURE.md: it holds the session's lease while it runs,
persists every step through `Persister`, and records the final state. Everything that can
be wrong with the input fails before any row is written, as a `UserError`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from covey.agent import AgentEvent, MessageAdded, RunResult
from covey.agent.definitions import AgentDefinition, Definitions, load_definitions, resolve_tools
from covey.agent.loop import Agent, Approver, Observer
from covey.agent.prompt import build_system_prompt
from covey.agent.subagents_run import definition_system_prompt
from covey.config import LoadedSettings, effective_env, load_settings
from covey.errors import MaxTurnsExceeded, RunError, UserError
from covey.git.worktrees import (
    Worktree,
    gitignore_hint,
    lock_worktree,
    open_worktree,
    unlock_worktree,
)
from covey.messages import Message
from covey.models.base import Model
from covey.models.pricing import cost_usd
from covey.models.registry import DEFAULT_MODEL, resolve_model
from covey.models.retry import RetryNotice, RetryPolicy
from covey.sessions.hooks_bridge import (
    CommandHooks,
    WorktreeCommandHooks,
    hook_runner,
    load_hooks,
)
from covey.sessions.lease import HostLease
from covey.sessions.persist import Persister
from covey.sessions.resume import load_conversation
from covey.sessions.state import set_state
from covey.sessions.subagents import subagent_runtime
from covey.store import Store
from covey.store.sessions import (
    SessionKind,
    SessionMeta,
    SessionRow,
    find_session,
    insert_session,
    list_sessions,
    new_session_id,
)
from covey.store.transcript import read_entries
from covey.tools import core_tools
from covey.tools.base import AskUser, SandboxOptions, Tool, ToolContext
from covey.tools.permissions import PERMISSION_MODES, PermissionPolicy

__all__ = ["CostMeter", "PreparedSession", "SessionOptions", "prepare_session"]


@dataclass
class SessionOptions:
    cwd: Path
    model: str | None = None
    max_turns: int | None = None
    permission_mode: str | None = None
    allowed_tools: Sequence[str] = ()
    disallowed_tools: Sequence[str] = ()
    append_system_prompt: str | None = None
    resume: str | None = None
    """A session id, id prefix or name to continue."""
    continue_last: bool = False
    """Continue the most recent session started in `cwd`."""
    name: str | None = None
    worktree: str | None = None
    """Run in `.covey/worktrees/NAME` (created or reopened); "" = a generated name."""
    kind: SessionKind = "print"
    agent: str | None = None
    """Run the main agent as this subagent definition (its prompt, tools, model, mode)."""
    agents_json: str | None = None
    """`--agents JSON`: extra definitions for this session, over every other scope."""
    environ: Mapping[str, str] | None = None
    """The environment credentials come from (merged under the settings `env` block);
    None: this process's."""


class CostMeter:
    """Adds up the USD cost of this run's model responses, each priced by its model."""

    def __init__(self) -> None:
        self.total_usd = 0.0

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, MessageAdded) and event.usage is not None and event.model:
            self.total_usd += cost_usd(event.model, event.usage)


@dataclass
class PreparedSession:
    session_id: str
    agent: Agent
    store: Store
    lease: HostLease
    model_name: str
    permission_mode: str
    cwd: Path
    warnings: list[str]
    resumed: bool
    hooks: CommandHooks
    worktree: Worktree | None = None
    cost: CostMeter = field(default_factory=CostMeter)

    @property
    def tool_names(self) -> list[str]:
        return list(self.agent.tools)

    async def run(self, prompt: str, *, start_hooks: bool = True) -> RunResult:
        """Run one prompt to the end of its turn, recording the session's state.
        `start_hooks` False: a host running the next prompt of a session it already
        started does not run SessionStart again."""
        epoch = self.lease.epoch
        try:
            async with self.lease.heartbeat():
                set_state(self.store, self.session_id, epoch, "working")
                result = await self.agent.run(await self.started(prompt) if start_hooks else prompt)
        except MaxTurnsExceeded as e:
            set_state(self.store, self.session_id, epoch, "failed", e.reason)
            raise
        except RunError as e:
            if e.reason != "lease_lost":
                set_state(self.store, self.session_id, epoch, "failed", e.reason)
            raise
        except (KeyboardInterrupt, Exception):
            set_state(self.store, self.session_id, epoch, "stopped", "interrupted")
            raise
        finally:
            self.lease.release()
            if self.worktree is not None:
                unlock_worktree(self.worktree)
        set_state(self.store, self.session_id, epoch, "completed", "end_turn")
        await self.hooks.notify("agent_completed", f"session {self.session_id} completed")
        return result

    async def started(self, prompt: str, *, resumed: bool | None = None) -> str:
        """Run the SessionStart hooks (source `resume` or `startup`); `prompt` with the
        context they add. Every host calls this before the agent's first turn."""
        resume = self.resumed if resumed is None else resumed
        context = await self.hooks.session_start("resume" if resume else "startup")
        return f"{prompt}\n\n{context}" if context else prompt

    def mark_stopped(self, reason: str) -> None:
        """Record that the run was stopped from outside (Ctrl+C, `covey stop`) after it let
        go of the session; nothing when another host has taken it over since."""
        with contextlib.suppress(RunError):
            set_state(self.store, self.session_id, self.lease.epoch, "stopped", reason)

    def close(self) -> None:
        self.store.close()


def prepare_session(
    opts: SessionOptions,
    *,
    observers: Sequence[Observer] = (),
    approver: Approver | None = None,
    ask_user: AskUser | None = None,
    on_retry: Callable[[RetryNotice], None] | None = None,
    store: Store | None = None,
) -> PreparedSession:
    """`store`: use this open store (the caller keeps and closes it) instead of opening one;
    a long-lived host shares one, since opening a store file while a connection of this
    process holds SQLite's locks on it would drop those locks (POSIX lock semantics)."""
    if opts.max_turns is not None and opts.max_turns < 1:
        raise UserError(f"--max-turns must be at least 1 (got {opts.max_turns})")
    if opts.permission_mode is not None and opts.permission_mode not in PERMISSION_MODES:
        modes = ", ".join(PERMISSION_MODES)
        raise UserError(f"--permission-mode {opts.permission_mode!r} is not one of: {modes}")
    if store is not None:
        return _prepare(opts, store, observers, approver, ask_user, on_retry)
    store = Store.open()
    try:
        return _prepare(opts, store, observers, approver, ask_user, on_retry)
    except BaseException:
        store.close()
        raise


def _find_previous(store: Store, opts: SessionOptions) -> SessionRow | None:
    with store.read() as conn:
        if opts.resume is not None:
            row = find_session(conn, opts.resume)
            if row is None:
                raise UserError(f"--resume {opts.resume!r}: no such session (see covey sessions)")
            return row
        if opts.continue_last:
            rows = list_sessions(conn, cwd=str(opts.cwd.resolve()), kinds=["print", "interactive"])
            if not rows:
                raise UserError(f"--continue: no earlier session in {opts.cwd.resolve()}")
            return rows[0]
    return None


def _policy(
    opts: SessionOptions, loaded: LoadedSettings, defn: AgentDefinition | None, cwd: Path
) -> PermissionPolicy:
    return PermissionPolicy.from_settings(
        loaded.settings,
        mode_override=opts.permission_mode or (defn.permission_mode if defn else None),
        allowed_tools=[*opts.allowed_tools, "Agent"],
        disallowed_tools=list(opts.disallowed_tools),
        project_root=loaded.project_root,
        workspace=cwd,
    )


def _prepare(
    opts: SessionOptions,
    store: Store,
    observers: Sequence[Observer],
    approver: Approver | None,
    ask_user: AskUser | None,
    on_retry: Callable[[RetryNotice], None] | None,
) -> PreparedSession:
    previous = _find_previous(store, opts)
    cwd = Path(previous.cwd) if previous else opts.cwd.resolve()
    if not cwd.is_dir():
        raise UserError(f"the session's directory {cwd} no longer exists")
    loaded = load_settings(cwd)
    definitions = load_definitions(cwd, cli_json=opts.agents_json)
    defn = _main_definition(definitions, opts.agent or (previous.agent if previous else None))
    settings = loaded.settings
    env = effective_env(settings, os.environ if opts.environ is None else opts.environ)
    r = settings.retries
    retry = RetryPolicy(
        max_retries=r.maxRetries, initial_delay=r.initialDelay, max_delay=r.maxDelay
    )

    def resolve(spec: str) -> Model:
        return resolve_model(
            spec, env=env, aliases=settings.modelAliases, retry=retry, on_retry=on_retry
        )

    own_model = defn.model if defn and defn.model != "inherit" else None
    previous_model = previous.model if previous else None
    model = resolve(opts.model or previous_model or own_model or settings.model or DEFAULT_MODEL)
    # Model and rules are checked before anything is created, so bad input changes nothing.
    policy = _policy(opts, loaded, defn, cwd)
    worktree: Worktree | None = None
    if opts.worktree is not None and previous is None:
        project_hooks = WorktreeCommandHooks(
            hook_runner(
                load_hooks(loaded)[0],
                session_id="",
                cwd=cwd,
                project_dir=loaded.project_root,
                mode=opts.permission_mode or "default",
            )
        )
        worktree = open_worktree(
            cwd, opts.worktree or None, loaded.settings.worktree, hooks=project_hooks
        )
        if loaded.settings.worktree.pool > 0:
            _refill_in_background(store, worktree.repo_root)
        hint = gitignore_hint(worktree.repo_root)
        cwd = worktree.path
        loaded = load_settings(cwd)
        if hint:
            loaded.warnings.append(hint)
        policy = _policy(opts, loaded, defn, cwd)
    settings = loaded.settings
    hooks_config, hook_warnings = load_hooks(loaded)
    messages: list[Message] = []
    if previous is None:
        with store.write() as conn:
            session_id = new_session_id(conn)
            insert_session(
                conn,
                SessionRow.new(
                    id=session_id,
                    name=opts.name,
                    kind=opts.kind,
                    cwd=str(cwd),
                    model=model.name,
                    permission_mode=policy.mode,
                    agent=defn.name if defn else None,
                    meta=SessionMeta(
                        worktree=str(worktree.path) if worktree else None,
                        branch=worktree.branch if worktree else None,
                        provider=model.name.partition(":")[0],
                    ),
                ),
            )
    else:
        session_id = previous.id
        with store.read() as conn:
            messages = load_conversation(read_entries(conn, session_id))
    lease = HostLease(store, session_id)
    epoch = lease.acquire()
    if worktree is not None:
        lock_worktree(worktree, f"covey session {session_id}")
    ctx = ToolContext(
        workspace=cwd,
        extra_dirs=[Path(d).expanduser() for d in settings.permissions.additionalDirectories],
        session_id=session_id,
        sandbox=SandboxOptions(enabled=settings.sandbox.enabled, network=settings.sandbox.network),
        ask_user=ask_user,
    )
    hooks = CommandHooks(
        hook_runner(
            hooks_config,
            session_id=session_id,
            cwd=cwd,
            project_dir=loaded.project_root,
            mode=policy.mode,
        )
    )
    window = settings.autoCompactWindow or int(model.context_window * 0.9)
    cost = CostMeter()
    runtime = subagent_runtime(
        store,
        loaded,
        definitions,
        env=env,
        resolve=resolve,
        allowed_tools=opts.allowed_tools,
        disallowed_tools=opts.disallowed_tools,
        hooks=hooks,
        approver=approver,
    )
    spawner = runtime.agent_tool(model=model, mode=policy.mode)
    tools: list[Tool[Any]] = [*core_tools(), *([spawner] if spawner else [])]
    if defn is not None:
        available = [t.name for t in tools]
        names = resolve_tools(defn, available, depth_allows_agent=True, main_agent=True)
        tools = [t for t in tools if t.name in names]
    if defn is not None:
        system = definition_system_prompt(defn, cwd, loaded.project_root, opts.append_system_prompt)
    else:
        append = opts.append_system_prompt
        system = build_system_prompt(cwd, project_root=loaded.project_root, append=append)
    agent = Agent(
        model,
        tools,
        system,
        ctx,
        policy,
        approver=approver,
        hooks=hooks,
        max_turns=opts.max_turns or (defn.max_turns if defn else None),
        auto_compact_tokens=window,
        agent_name=defn.name if defn else None,
        observers=[Persister(store, session_id, epoch), cost, *observers],
        messages=messages,
        inbox=spawner.inbox if spawner else None,
    )
    return PreparedSession(
        session_id=session_id,
        agent=agent,
        store=store,
        lease=lease,
        model_name=model.name,
        permission_mode=policy.mode,
        cwd=cwd,
        warnings=loaded.warnings + hook_warnings + definitions.run_warnings(defn),
        resumed=previous is not None,
        hooks=hooks,
        worktree=worktree,
        cost=cost,
    )


def _refill_in_background(store: Store, repo: Path) -> None:
    """The warm pool is topped up by the supervisor, so this session does not wait for it."""
    from covey.sessions.control import request_pool_refill
    from covey.supervisor import ensure_supervisor

    if request_pool_refill(store, repo) is not None:
        ensure_supervisor()


def _main_definition(definitions: Definitions, name: str | None) -> AgentDefinition | None:
    if name is None:
        return None
    found = definitions.get(name)
    if found is None:
        raise UserError(f"--agent {name!r}: {definitions.why_missing(name)}")
    return found
