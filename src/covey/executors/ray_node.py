"""What a node does for the sessions it hosts, without Ray: `NodeSessions`, held by the node's
`SessionHost` actor (`ray_host.py`), one per node, many sessions as asyncio tasks.

    node = NodeSessions(directory)                       # <dir>/node.db, <dir>/work/<sid>
    await node.start(job, pack)                          # unpack, seed, open, run (a task)
    batch = node.collect(sid, cursor); node.acknowledge(sid, batch.cursor)
    node.forward(commands)                               # `covey stop TEAMMATE|SUBAGENT`
    node.status(sid) -> "running" | "done" | "absent";  await node.stop(sid); node.forget(sid)

A session arrives as a `NodeJob` (picklable) and its base's workspace pack: the job holds
its export from the user's store, its progress since the base (a resumed one), the epoch the
supervisor claimed, the first prompt, the user's settings file and the endpoint. The node
makes the worktree from the pack (`git/bundles.py`) on the session's branch, seeds its own
store (`replica.seed_node_store`) and runs the unchanged `SessionHost` there, its tool
batches gated (`replica_node.ToolGate`, a teammate's too): after each batch each worktree
of the tree that changed (the session's, a child's own: `ray_worktrees`) is committed and
shipped as a thin bundle, and the batch's results count only once the supervisor applied
those snapshots. `covey stop SUBAGENT_ID` is acted on here (`replica_stops`). Credentials
are the node process's environment (the actor's `runtime_env`), never part of a job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from covey.agent import RunResult
from covey.executors.ray_worktrees import ChildWorktree, NodeWorktrees, restore_children
from covey.executors.replica import (
    Batch,
    Cursor,
    SessionExport,
    acknowledge,
    collect,
    insert_commands,
    seed_node_store,
)
from covey.executors.replica_ask import NodeAsker
from covey.executors.replica_node import ToolGate, gate_tools
from covey.executors.replica_stops import stop_subagents
from covey.git.bundles import ShippedSnapshot, WorkspacePack
from covey.git.bundles import unpack_workspace as unpack
from covey.git.repo import repo_root
from covey.models.registry import BASE_URL_VARS
from covey.sessions.background import stored_options
from covey.sessions.host import SessionHost
from covey.sessions.lease import new_host_id
from covey.sessions.plan import plan_session
from covey.store import Store
from covey.store.commands import CommandRow
from covey.store.sessions import get_session

__all__ = ["NodeJob", "NodeSessions"]

log = logging.getLogger("covey.executors.ray")


@dataclass(frozen=True)
class NodeJob:
    """One start of a session on a node; its base's `WorkspacePack` travels beside it (one
    object in Ray's store per base commit, shared by every session of that base)."""

    export: SessionExport
    epoch: int
    prompt: str
    branch: str
    settings_json: str | None = None
    """The user's `$COVEY_HOME/settings.json`, so the node plans as the user's machine does."""
    base_url: str | None = None
    """The endpoint the session was dispatched with (not a secret)."""
    resume: ShippedSnapshot | None = None
    """The work on the branch since the base (`bundles.pack_progress`): the worktree starts
    at `resume.sha`, the first snapshot's parent (at the pack's base when None)."""
    children: tuple[ChildWorktree, ...] = ()
    """The tree's children's own worktrees, made again here at their branches' tips."""


@dataclass
class _Hosted:
    job: NodeJob
    worktree: Path
    worktrees: NodeWorktrees
    task: asyncio.Task[None] | None = None
    host: SessionHost | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class NodeSessions:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (directory / "work").mkdir(parents=True, exist_ok=True)
        self.home = directory / "home"
        self.home.mkdir(exist_ok=True)
        os.environ["COVEY_HOME"] = str(self.home)  # the node's plans read the user's settings
        self.store = Store.open(directory / "node.db")
        self.host_id = new_host_id("node")
        self.sessions: dict[str, _Hosted] = {}

    async def start(self, job: NodeJob, pack: WorkspacePack) -> None:
        """Host the session from `pack` (its base): an earlier run of it here is dropped."""
        sid = job.export.row.id
        await self.drop(sid)
        if job.settings_json is not None:
            (self.home / "settings.json").write_text(job.settings_json)
        dest = self.directory / "work" / sid
        worktrees = NodeWorktrees(
            self.store, sid, dest, job.resume.sha if job.resume else pack.base
        )
        base_repo = await asyncio.to_thread(self._unpack, job, pack, worktrees)
        seed_node_store(
            self.store,
            job.export,
            job.epoch,
            host_id=self.host_id,
            cwd=dest,
            worktree=dest,
            repo=base_repo,
        )
        hosted = _Hosted(job, dest, worktrees)
        self.sessions[sid] = hosted
        hosted.task = asyncio.create_task(self._run(sid, hosted), name=f"session-{sid}")

    def _unpack(self, job: NodeJob, pack: WorkspacePack, worktrees: NodeWorktrees) -> Path:
        """The session's worktree and its children's (a resumed tree's); the main checkout
        they are worktrees of (the node's base repository, where children make theirs)."""
        bases = self.directory / "bases"
        dest = unpack(pack, worktrees.worktree, job.branch, cache_dir=bases, resume=job.resume)
        base_repo = repo_root(dest) or dest
        restore_children(base_repo, job.children, worktrees)
        return base_repo

    async def _run(self, sid: str, hosted: _Hosted) -> None:
        job = hosted.job
        try:
            host = await asyncio.to_thread(self._open, sid, job)
            hosted.host = host
            gate_tools(host, ToolGate(self.store, sid, hosted.worktrees.snapshot))
            stops = asyncio.create_task(stop_subagents(self.store, sid), name=f"stops-{sid}")
            try:
                await host.run_turn(job.prompt, start_hooks=True, finish=_summary(job.branch))
            finally:
                stops.cancel()
                await asyncio.to_thread(host.close)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # recorded by the host when it could (failed, its reason)
            hosted.error = str(e)[:300]
            log.info("session %s on this node ended: %s", sid, e)

    def _open(self, sid: str, job: NodeJob) -> SessionHost:
        with self.store.read() as conn:
            row = get_session(conn, sid)
        assert row is not None
        environ = dict(os.environ)
        if (var := BASE_URL_VARS.get(row.meta.provider or "")) and job.base_url:
            environ[var] = job.base_url
        plan = plan_session(stored_options(row, environ), previous=row)
        asker = NodeAsker(self.store)  # its questions go home, `covey reply` comes back
        return SessionHost.open(
            self.store, plan, asker=asker, host_id=self.host_id, claimed_epoch=job.epoch
        )

    def collect(self, sid: str, after: Cursor) -> Batch:
        return collect(self.store, sid, after)

    def acknowledge(self, sid: str, cursor: Cursor) -> None:
        acknowledge(self.store, sid, cursor)

    def forward(self, commands: list[CommandRow]) -> None:
        """Commands for the sessions of a tree hosted here (`covey stop TEAMMATE`), for
        their hosts to act on; the outcome goes back through the root's journal."""
        insert_commands(self.store, commands)

    def status(self, sid: str) -> str:
        hosted = self.sessions.get(sid)
        if hosted is None:
            return "absent"
        return "done" if hosted.task is None or hosted.task.done() else "running"

    def epoch(self, sid: str) -> int | None:
        """The epoch the session runs (or ran, until dropped) at here."""
        hosted = self.sessions.get(sid)
        return hosted.job.epoch if hosted is not None else None

    async def stop(self, sid: str, cause: str = "stop") -> None:
        """Cancel the session's turn; its host records `stopped` (a `shutdown` records
        nothing: the session resumes elsewhere)."""
        hosted = self.sessions.get(sid)
        if hosted is None or hosted.task is None or hosted.task.done():
            return
        if hosted.host is not None and hosted.host.cancel_cause is None:
            hosted.host.cancel_cause = cause  # type: ignore[assignment]
        hosted.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await hosted.task

    async def drop(self, sid: str) -> None:
        """Forget a session: its task cancelled (nothing recorded), its worktree removed."""
        hosted = self.sessions.pop(sid, None)
        if hosted is not None and hosted.task is not None and not hosted.task.done():
            hosted.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await hosted.task
        if hosted is not None:
            await asyncio.to_thread(hosted.worktrees.remove_children)
        dest = self.directory / "work" / sid
        if dest.exists():
            await asyncio.to_thread(shutil.rmtree, dest, True)

    def load(self) -> dict[str, Any]:
        """What `covey cluster status` shows of this node."""
        running = [s for s in self.sessions if self.status(s) == "running"]
        return {"sessions": sorted(running), "hosted": len(self.sessions), "rss": _rss()}


def _summary(branch: str) -> Callable[[RunResult], Awaitable[str]]:
    """The row's summary at the turn's end, as the local supervisor writes it (the work is
    on the branch already: every tool batch was shipped as a snapshot)."""

    async def finish(result: RunResult) -> str:
        did = (result.result.strip().splitlines() or ["done"])[0][:120]
        return f"{did} · branch {branch}"

    return finish


def _rss() -> int:
    """This process's resident memory in bytes (0 where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
