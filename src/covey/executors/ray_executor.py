"""The supervisor's side of `background.executor: "ray"`: it is a Ray driver that places each
session on a node and keeps the user's store and repository the truth.

    executor = RayExecutor(store, host_id, settings.background)   # connects on first use
    await executor.host(row, start, stopped)                       # one session, to its end

For a session it: takes the lease (a new epoch); keeps the session's usual local worktree
`.covey/worktrees/bg-ID` on branch `worktree-bg-ID` (so `covey diff`, `merge` and `rm` work
unchanged); picks the least-loaded live node with fewer than `maxSessionsPerNode` sessions;
records it as `meta.node`; ships the export of the session (`replica.export_session`), the
workspace (`bundles.pack_workspace` of its base commit, `ray.put` once per base) and, for a
session continued or resumed, its work since the base (`bundles.pack_progress`: the node
reuses its base repository) to the node's host actor; then pumps
(`ray_pump.pump_session`: the node's journal applied with the epoch, each snapshot fetched
into the repository, the tree's commands forwarded). The lease is renewed meanwhile.

Failures: a host actor or its node lost mid-session (`RayActorError`, or no answer within
`CALL_TIMEOUT_S`) → the session is taken over with a new epoch (whatever the old node still
writes is refused) and started again, once another live node has room, from the user's
transcript and the branch's tip; the tool call in flight is
answered as interrupted by the resumed host, never re-run. `covey stop` cancels it on the
node and the stop is recorded there. The cluster gone entirely (its head does not answer)
→ the session is `interrupted` with the reason (and no `node`); `covey respawn` or a reply
then continues it in the supervisor itself, from the transcript and the local worktree,
which holds the last snapshot received.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorUnschedulableError, GetTimeoutError, RayActorError

from covey.config import BackgroundSettings, load_settings
from covey.errors import UserError
from covey.executors.ray_address import check_cluster
from covey.executors.ray_host import ensure_host, existing_host, host_environment, user_namespace
from covey.executors.ray_node import NodeJob
from covey.executors.ray_placement import RayDriver, choose_node, node_loads
from covey.executors.ray_pump import PUMP_S, follow_branch, pump_session
from covey.executors.ray_worktrees import child_worktrees
from covey.executors.replica import export_session
from covey.executors.replica_ask import leave_waiting, store_reply
from covey.git.bundles import pack_progress, pack_workspace
from covey.git.repo import git
from covey.git.worktrees import open_worktree
from covey.home import covey_home
from covey.sessions.background import claim_queued
from covey.sessions.lease import LEASE_TTL_S
from covey.sessions.pending import with_meta
from covey.sessions.state import set_state
from covey.store import Store
from covey.store.session_meta import Grant
from covey.store.sessions import (
    SessionRow,
    acquire_lease,
    adopt_lease,
    get_session,
    release_lease,
    renew_lease,
    update_session,
)
from covey.store.transcript import read_entries

__all__ = ["PUMP_S", "RayExecutor"]

log = logging.getLogger("covey.executors.ray")

CALL_TIMEOUT_S = 30.0
"""How long a call to a host actor may take before the node counts as gone."""
KEEP_PACKS = 8
"""Base packs kept in Ray's object store (the newest put)."""
NODE_LOST = (RayActorError, ActorUnschedulableError, GetTimeoutError, TimeoutError)
"""What a call to a lost node's host raises: its worker gone, its restart refused (the node
found dead: the actor is pinned to it), or no answer in time; which one depends on timing."""
ROOM_POLL_S = 0.5
"""How often a session whose node was lost looks for a node with room."""
RESUME_PROMPT = (
    "The node running you was lost; you continue on another one. Continue the task where you "
    "left off; check the state of anything that was interrupted before relying on it."
)


class RayExecutor:
    def __init__(self, store: Store, host_id: str, settings: BackgroundSettings) -> None:
        self.store = store
        self.host_id = host_id
        self.settings = settings.ray
        self.namespace = user_namespace(covey_home())
        self.placed: dict[str, str] = {}
        """Session id → the node it runs on (sessions this supervisor pumps)."""
        self.packs: dict[tuple[str, str], Any] = {}
        """(repository, base commit) → its `WorkspacePack` in Ray's object store."""
        self.epochs: dict[str, int] = {}
        """Session id → the epoch this supervisor holds it at (renewed by `_keep_lease`)."""
        self.driver = RayDriver(self.settings, self.namespace)

    def place(self, sid: str, alive: list[str], avoid: str | None = None) -> str | None:
        """The node for `sid` among `alive` (on the loop: counted at once by the caller)."""
        alive = [n for n in alive if n != avoid]
        return choose_node(node_loads(alive, self.placed, sid), self.settings.maxSessionsPerNode)

    async def host(
        self,
        row: SessionRow,
        fresh: bool,
        prompt: str | None,
        stopped: Callable[[], bool],
        *,
        may_run_here: bool = False,
        grants: Sequence[Grant] = (),
        budget_raise: tuple[str, float] | None = None,
    ) -> bool:
        """Run one session on the cluster until its turn ends (or it is stopped). With the
        cluster unreachable: False when `may_run_here` (a respawn or a reply: the caller runs
        it locally), else `interrupted`, saying why. `grants`, `budget_raise`: a reply's."""
        sid = row.id
        if (problem := await asyncio.to_thread(self.unreachable)) is not None:
            return await self._without_cluster(row, fresh, prompt, problem, may_run_here)
        try:
            await asyncio.to_thread(self.driver.connect)
            if not fresh and await self._catch_up(row, stopped):
                return True
            if prompt is None and await asyncio.to_thread(self._left_waiting, sid):
                return True  # adopted while it waits on a question, its node gone
            alive = await asyncio.to_thread(self.driver.alive_nodes) if fresh else []
            node = self.place(sid, alive) if fresh else await self._wait_for_room(sid, avoid="")
            if node is None:  # all full: a queued one stays queued, the next poll tries again
                return True
            self.placed[sid] = node  # at once: a session placed meanwhile counts it
            epoch = await asyncio.to_thread(self._take, sid, fresh)
            if epoch is None:
                return True
            await asyncio.to_thread(store_reply, self.store, sid, epoch, grants, budget_raise)
            keeper = asyncio.create_task(self._keep_lease(sid), name=f"lease-{sid}")
            try:
                await self._drive(sid, node, epoch, prompt, stopped)
            finally:
                keeper.cancel()
        except asyncio.CancelledError:
            if not stopped():
                raise
            self._stopped_here(sid)  # stopped before the node had it
        except Exception as e:
            log.exception("session %s on the cluster failed", sid)
            if fresh and sid not in self.epochs:  # failed before it was taken: say why all the same
                await asyncio.to_thread(self._take, sid, fresh)
            self._interrupt(
                sid, f"ray executor: {e}"[:240] + f"; covey respawn {sid} runs it again"
            )
        finally:
            self.placed.pop(sid, None)
            self.epochs.pop(sid, None)
        return True

    async def _without_cluster(
        self, row: SessionRow, fresh: bool, prompt: str | None, problem: str, may_run_here: bool
    ) -> bool:
        """`host` with the cluster unreachable (see there); one waiting on a question waits on."""
        sid = row.id
        if may_run_here:
            log.warning("session %s runs here: %s", sid, problem)
            if row.meta.worktree and Path(row.meta.worktree).is_dir():
                await asyncio.to_thread(follow_branch, Path(row.meta.worktree))
            return False
        waits = prompt is None and await asyncio.to_thread(self._left_waiting, sid)
        if not waits and await asyncio.to_thread(self._take, sid, fresh) is not None:
            self._interrupt(sid, f"{problem}; covey respawn {sid} runs it again")
        self.epochs.pop(sid, None)
        return True

    def unreachable(self) -> str | None:
        """Why the cluster cannot be used now (one line), or None."""
        try:
            check_cluster(self.settings)
        except UserError as e:
            return str(e).split(";")[0]
        return None

    async def _catch_up(self, row: SessionRow, stopped: Callable[[], bool]) -> bool:
        """A session a dead supervisor left running on a node (detached, buffering): take
        its lease at the same epoch and pump what the node kept. False when the node no
        longer runs it at that epoch (then it is started again)."""
        sid, node = row.id, row.meta.node
        if not node or node not in await asyncio.to_thread(self.driver.alive_nodes):
            return False
        actor = await asyncio.to_thread(existing_host, node, self.namespace)
        if actor is None or await self._call(actor.epoch.remote(sid)) != row.epoch:
            return False
        with self.store.write() as conn:
            if not adopt_lease(conn, sid, self.host_id, row.epoch, LEASE_TTL_S, time.time()):
                return False
        log.info("session %s: caught up with node %s", sid, node[:12])
        self.placed[sid], self.epochs[sid] = node, row.epoch
        meta = row.meta
        keeper = asyncio.create_task(self._keep_lease(sid), name=f"lease-{sid}")
        try:
            repo, wt = Path(meta.repo or row.cwd), Path(meta.worktree or row.cwd)
            where = (repo, meta.branch or "", wt)
            await self._pump_or_stop(sid, row.epoch, actor, where, stopped)
        except NODE_LOST:
            return False  # lost meanwhile: started again elsewhere
        finally:
            keeper.cancel()
        return True

    async def _keep_lease(self, sid: str) -> None:
        """Renew the session's lease while it runs on the cluster (its heartbeat)."""
        while True:
            await asyncio.sleep(LEASE_TTL_S / 3)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._renew, sid, self.epochs[sid])

    async def _drive(
        self, sid: str, node: str, epoch: int, prompt: str | None, stopped: Callable[[], bool]
    ) -> None:
        while True:
            self.placed[sid] = node
            actor = await asyncio.to_thread(ensure_host, node, host_environment(), self.namespace)
            job, pack, repo, branch, wt = await asyncio.to_thread(
                self._prepare, sid, epoch, node, prompt
            )
            try:
                start = actor.start.remote(job, pack)
                await self._pump_or_stop(sid, epoch, actor, (repo, branch, wt), stopped, start)
                return
            except NODE_LOST as e:
                log.warning("session %s lost its node %s: %s", sid, node[:12], e)
                self.placed.pop(sid, None)
                if await asyncio.to_thread(self._left_waiting, sid):
                    return
                nxt = await self._wait_for_room(sid, avoid=node)
                if nxt is None:
                    why = self.unreachable() or f"Ray node {node[:12]} lost, no other node live"
                    self._interrupt(sid, f"{why}; covey respawn {sid} runs it again")
                    return
                got = await asyncio.to_thread(self._take, sid, False)
                if got is None:
                    return
                node, epoch, prompt = nxt, got, RESUME_PROMPT

    def _left_waiting(self, sid: str) -> bool:  # `replica_ask.leave_waiting`
        return leave_waiting(self.store, sid, lambda: self._take(sid, False))

    async def _wait_for_room(self, sid: str, avoid: str) -> str | None:
        """A live node other than `avoid` with room, once there is one; None when the
        cluster has no other live node (or no longer answers)."""
        while True:
            if await asyncio.to_thread(self.unreachable) is not None:
                return None
            try:
                alive = await asyncio.to_thread(self.driver.alive_nodes)
            except Exception:
                return None
            if not [n for n in alive if n != avoid]:
                return None
            if (node := self.place(sid, alive, avoid=avoid)) is not None:
                return node
            await asyncio.sleep(ROOM_POLL_S)

    def _prepare(
        self, sid: str, epoch: int, node: str, prompt: str | None
    ) -> tuple[NodeJob, Any, Path, str, Path]:
        """The local worktree and branch (made at the base on first start), the row marked
        `working` on `node`, the job for the node and its base's pack (in Ray's store)."""
        with self.store.read() as conn:
            row = get_session(conn, sid)
            started = bool(read_entries(conn, sid))
        assert row is not None
        meta = row.meta
        repo = Path(meta.repo or row.cwd)
        if meta.worktree and Path(meta.worktree).is_dir() and meta.branch:
            wt, branch = Path(meta.worktree), meta.branch
        else:
            settings = load_settings(Path(row.cwd)).settings.worktree
            made = open_worktree(Path(row.cwd), f"bg-{sid}", settings, base=meta.base, repo=repo)
            wt, branch = made.path, made.branch
        base = meta.base or git("rev-parse", f"refs/heads/{branch}", cwd=repo).strip()
        progress = pack_progress(repo, base, branch)  # the work since the base, if any
        first = prompt or ("" if started else (meta.prompt or ""))
        if not first:
            from covey.supervisor.daemon import CONTINUE_PROMPT

            first = CONTINUE_PROMPT
        meta = with_meta(meta, worktree=str(wt), branch=branch, node=node)
        with self.store.write() as conn:
            update_session(conn, sid, epoch, cwd=str(wt), meta=meta)
        set_state(self.store, sid, epoch, "working", None)
        settings_file = covey_home() / "settings.json"
        job = NodeJob(
            export=export_session(self.store, sid),
            epoch=epoch,
            prompt=first,
            branch=branch,
            settings_json=settings_file.read_text() if settings_file.exists() else None,
            base_url=meta.base_url,
            resume=progress if progress.sha != base else None,
            children=child_worktrees(self.store, sid, repo),
        )
        return job, self._pack(repo, base), repo, branch, wt

    def _pack(self, repo: Path, base: str) -> Any:
        """The object reference of `base`'s workspace pack: put into Ray's store once per
        base commit, shared by every session started or resumed from it."""
        key = (str(repo), base)
        if (ref := self.packs.get(key)) is None:
            ref = self.packs[key] = ray.put(pack_workspace(repo, base))
            while len(self.packs) > KEEP_PACKS:
                del self.packs[next(iter(self.packs))]  # the oldest: freed once unused
        return ref

    async def _pump_or_stop(
        self,
        sid: str,
        epoch: int,
        actor: Any,
        where: tuple[Path, str, Path],
        stopped: Callable[[], bool],
        start: Any = None,
    ) -> None:
        """Pump the session (after its `start` call, if any) until it ends. Cancelled by
        `covey stop`: the node stops it (once it has it) and what it records is pumped home;
        cancelled otherwise (a shutdown): the node keeps running it, detached."""
        try:
            if start is not None:
                await self._call(start)
            await pump_session(self.store, sid, epoch, actor, where, self._call, self.host_id)
        except asyncio.CancelledError:
            if not stopped():
                raise
            if start is not None:
                with contextlib.suppress(Exception):
                    await self._call(start)  # there before it is stopped
            await self._call(actor.stop.remote(sid))
            await pump_session(self.store, sid, epoch, actor, where, self._call, self.host_id)
            self._stopped_here(sid)

    def _stopped_here(self, sid: str) -> None:
        """`stopped`, if the session is still live and ours (stopped before its host
        recorded anything)."""
        with self.store.read() as conn:
            row = get_session(conn, sid)
        if row is not None and row.host_id == self.host_id and row.state in ("queued", "working"):
            with contextlib.suppress(Exception):
                set_state(self.store, sid, row.epoch, "stopped", "stopped by user")

    async def _call(self, ref: Any) -> Any:
        return await asyncio.wait_for(
            asyncio.shield(asyncio.wrap_future(ref.future())), CALL_TIMEOUT_S
        )

    def _take(self, sid: str, fresh: bool) -> int | None:
        """The lease: a queued session's, or any other's with a new epoch (fencing out
        whoever held it: a lost node, a dead supervisor)."""
        if fresh:
            got = claim_queued(self.store, sid, self.host_id)
            if got is not None:
                self.epochs[sid] = got
            return got
        with self.store.write() as conn:
            row = get_session(conn, sid)
            if row is None or row.deleted_at is not None:
                return None
            if row.host_id == self.host_id:  # ours (a lost node's): a new epoch all the same
                release_lease(conn, sid, self.host_id, row.epoch)
            epoch = acquire_lease(conn, sid, self.host_id, LEASE_TTL_S, time.time(), force=True)
        if epoch is not None:
            self.epochs[sid] = epoch
        return epoch

    def _renew(self, sid: str, epoch: int) -> bool:
        with self.store.write() as conn:
            return renew_lease(conn, sid, self.host_id, epoch, LEASE_TTL_S, time.time())

    def _interrupt(self, sid: str, reason: str) -> None:
        with self.store.read() as conn:
            row = get_session(conn, sid)
        if row is None or row.host_id != self.host_id:
            return
        meta = with_meta(row.meta, node=None)  # on no node now; a respawn may run it here
        with contextlib.suppress(Exception):
            set_state(self.store, sid, row.epoch, "interrupted", reason, meta=meta)
