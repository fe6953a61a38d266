"""Subagents in the store: `covey.agent`'s `SubagentRecorder` over session rows.

Each subagent is a session of kind `subagent` whose `parent_id` is the session that spawned
it: its own row (cwd, model, agent type), its own lease (held by this host while it runs),
its own transcript and usage rows (written by a `Persister` with the subagent's agent path,
so `store.usage.session_usage` of the parent rolls them up), and a final state. With
`isolation: worktree` it works in a temporary worktree, removed at the end when nothing
changed there; otherwise its path and branch go back to the parent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from covey.agent.definitions import AgentDefinition, Definitions
from covey.agent.hooks import AgentHooks
from covey.agent.loop import Approver, Observer, RequestGuard
from covey.agent.subagents import SubagentLimits, SubagentRuntime
from covey.agent.subagents_records import AgentPaths, ChildRecord, SubagentNotice
from covey.config import LoadedSettings, WorktreeSettings
from covey.errors import ToolError
from covey.git.repo import git_result
from covey.git.snapshots import is_dirty
from covey.git.worktrees import (
    Worktree,
    WorktreeHooks,
    lock_worktree,
    open_worktree,
    remove_worktree,
    unlock_worktree,
)
from covey.models.base import Model
from covey.models.pricing import PriceSetting
from covey.sessions.lease import HostLease
from covey.sessions.persist import Persister
from covey.sessions.state import set_state
from covey.store import Store
from covey.store.events import append_event
from covey.store.sessions import (
    SessionMeta,
    SessionRow,
    SessionState,
    insert_session,
    new_session_id,
)
from covey.tools.permissions import PermissionPolicy

__all__ = ["RUNNING", "StoreRecorder", "subagent_runtime"]

RUNNING: dict[str, Callable[[], None]] = {}
"""Subagent id → what stops its run, for the subagents running in this process (a Ray node
acts on `covey stop SUBAGENT_ID` with it: `covey.executors.replica_node`)."""


@dataclass
class _StoreChild:
    store: Store
    agent_id: str
    agent_path: str
    workspace: Path
    lease: HostLease
    epoch: int
    worktree: Worktree | None = None
    hooks: WorktreeHooks | None = None
    observers: list[Observer] = field(default_factory=list)

    stopped_by_user: bool = False

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The child's run; `RUNNING[agent_id]()` stops it (a ToolError for its parent)."""
        async with self.lease.heartbeat():
            set_state(self.store, self.agent_id, self.epoch, "working")
            try:
                async with asyncio.timeout(None) as stop:
                    loop = asyncio.get_running_loop()
                    RUNNING[self.agent_id] = lambda: stop.reschedule(loop.time())
                    yield
            except TimeoutError:
                if not stop.expired():
                    raise
                self.stopped_by_user = True
                raise ToolError(f"subagent {self.agent_id} was stopped by the user") from None
            finally:
                RUNNING.pop(self.agent_id, None)

    def finish(self, state: str, reason: str | None) -> dict[str, Any]:
        final: SessionState = state if state in ("completed", "failed") else "stopped"  # type: ignore[assignment]
        if self.stopped_by_user:
            reason = "stopped by user"
        try:
            set_state(self.store, self.agent_id, self.epoch, final, reason)
        finally:
            self.lease.release()
        return self._close_worktree()

    def _close_worktree(self) -> dict[str, Any]:
        wt = self.worktree
        if wt is None:
            return {}
        unlock_worktree(wt)
        head = git_result("rev-parse", "HEAD", cwd=wt.path)
        moved = not head.ok or head.stdout.strip() != wt.base
        if moved or is_dirty(wt.path):
            return {"worktreePath": str(wt.path), "worktreeBranch": wt.branch}
        remove_worktree(wt.repo_root, wt.name, hooks=self.hooks)
        return {}


class StoreRecorder:
    """Records the subagents of one host's sessions in the store."""

    def __init__(
        self,
        store: Store,
        *,
        worktree_settings: WorktreeSettings | None = None,
        worktree_hooks: WorktreeHooks | None = None,
        host_id: str | None = None,
        pricing: Mapping[str, PriceSetting] | None = None,
    ):
        self.store = store
        self.pricing = pricing
        self.worktree_settings = worktree_settings or WorktreeSettings()
        self.worktree_hooks = worktree_hooks
        self.host_id = host_id
        self._paths = AgentPaths()

    def start(
        self,
        definition: AgentDefinition,
        description: str,
        parent_agent_path: str,
        parent_session_id: str,
        *,
        model: str,
        cwd: Path,
        isolation: str | None = None,
    ) -> ChildRecord:
        agent_path = self._paths.next(parent_agent_path, definition.name)
        worktree = None
        if isolation == "worktree":
            worktree = open_worktree(cwd, None, self.worktree_settings, hooks=self.worktree_hooks)
        workspace = worktree.path if worktree else cwd
        with self.store.write() as conn:
            agent_id = new_session_id(conn)
            insert_session(
                conn,
                SessionRow.new(
                    id=agent_id,
                    kind="subagent",
                    cwd=str(workspace),
                    model=model,
                    name=description[:80] or None,
                    parent_id=parent_session_id or None,
                    agent=definition.name,
                    permission_mode=definition.permission_mode,
                    meta=SessionMeta.model_validate(
                        {
                            "worktree": str(worktree.path) if worktree else None,
                            "branch": worktree.branch if worktree else None,
                            "provider": model.partition(":")[0],
                            "agent_path": agent_path,
                        }
                    ),
                ),
            )
        lease = HostLease(self.store, agent_id, self.host_id)
        epoch = lease.acquire()
        if worktree is not None:
            lock_worktree(worktree, f"covey subagent {agent_id}")
        child = _StoreChild(
            self.store, agent_id, agent_path, workspace, lease, epoch, worktree, self.worktree_hooks
        )
        child.observers.append(
            Persister(self.store, agent_id, epoch, agent_path, pricing=self.pricing)
        )
        return child

    def notice(self, notice: SubagentNotice) -> None:
        """A `subagent_<kind>` event in the parent session's log, for UIs."""
        if not notice.parent_session_id:
            return
        data: dict[str, Any] = {
            "agent_id": notice.agent_id,
            "agent_type": notice.agent_type,
            "description": notice.description,
        }
        if notice.kind == "queued":
            data["waiting"] = notice.waiting
        if notice.state is not None:
            data["state"] = notice.state
        with self.store.write() as conn:
            append_event(conn, notice.parent_session_id, f"subagent_{notice.kind}", data)


def subagent_runtime(
    store: Store,
    loaded: LoadedSettings,
    definitions: Definitions,
    *,
    env: Mapping[str, str],
    resolve: Callable[[str], Model],
    allowed_tools: Sequence[str],
    disallowed_tools: Sequence[str],
    hooks: AgentHooks,
    approver: Approver | None,
    worktree_hooks: WorktreeHooks | None = None,
    request_guard: RequestGuard | None = None,
) -> SubagentRuntime:
    """The subagent runtime of one session: its settings' limits, the store as recorder.

    Children are checked against the session's rules (plus an allow for Agent: launching a
    subagent never asks; its own calls are checked one by one)."""
    settings = loaded.settings

    def make_policy(mode: str, workspace: Path) -> PermissionPolicy:
        return PermissionPolicy.from_settings(
            settings,
            mode_override=mode,
            allowed_tools=[*allowed_tools, "Agent"],
            disallowed_tools=list(disallowed_tools),
            project_root=loaded.project_root,
            workspace=workspace,
        )

    return SubagentRuntime(
        definitions,
        recorder=StoreRecorder(
            store,
            worktree_settings=settings.worktree,
            worktree_hooks=worktree_hooks,
            pricing=settings.pricing,
        ),
        limits=SubagentLimits(
            settings.subagents.maxDepth,
            settings.subagents.maxConcurrent,
            settings.subagents.listBudgetChars,
        ),
        resolve=resolve,
        env=env,
        make_policy=make_policy,
        hooks=hooks,
        approver=approver,
        project_root=loaded.project_root,
        request_guard=request_guard,
    )
