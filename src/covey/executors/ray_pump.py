"""The supervisor's loop for one session on a Ray node: its journal home, commands out.

    await pump_session(store, sid, epoch, actor, (repo, branch, worktree), call, claimer)

Every `PUMP_S` while nothing is new: collect the node's journal, apply it to the store with
the epoch (`replica.apply`; each snapshot fetched into the user's repository on the
session's branch, or a child's own worktree's on its branch: `ray_worktrees`) and
acknowledge it. The local worktrees (on those branches) are checked out once, when the pump
ends (`SnapshotReceiver.finish`), not at every snapshot. Every `FORWARD_S`:
the pending commands of the session's tree (`covey stop TEAMMATE`, a subagent's stop) go
to the node (`replica.tree_commands`, the actor's `forward`), claimed here so no local
host acts on them; their outcome comes back through the journal. The root's own commands
are the supervisor's (`covey stop` of the root cancels it through the actor), but for a
reply that answers the question the root waits on at its node (`replica_ask`). Returns when
the node's run of it is over and everything it wrote is applied, or when the session's
epoch is no longer `epoch` (a successor holds it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from covey.executors.ray_worktrees import SnapshotReceiver
from covey.executors.replica import (
    Cursor,
    SnapshotRecord,
    StaleEpoch,
    applied_cursor,
    apply,
    claim_forwarded,
)
from covey.executors.replica_ask import forwardable_commands
from covey.git.repo import git
from covey.store import Store
from covey.store.sessions import get_session

__all__ = ["FORWARD_S", "PUMP_S", "follow_branch", "pump_session"]

PUMP_S = 0.05
"""How often a session's journal is collected from its node while nothing is new."""
FORWARD_S = 0.25
"""How often the pending commands of a session's tree are looked for (`STOP_POLL_S`)."""

Call = Callable[[Any], Awaitable[Any]]


async def pump_session(
    store: Store,
    sid: str,
    epoch: int,
    actor: Any,
    where: tuple[Path, str, Path],
    call: Call,
    claimer: str,
) -> None:
    repo, branch, wt = where
    with store.read() as conn:
        row = get_session(conn, sid)
    receiver = SnapshotReceiver(repo, branch, wt, row.meta.base if row is not None else None)
    try:
        await _pump(store, sid, epoch, actor, call, claimer, receiver)
    finally:  # the local worktrees follow once, not at every snapshot
        receiver.finish()


def follow_branch(worktree: Path) -> None:
    """Check out in the session's local worktree what its branch (its HEAD) now holds: the
    snapshots received move the branch, the worktree's files follow when the run ends."""
    git("reset", "-q", "--hard", "HEAD", cwd=worktree)


async def _pump(
    store: Store,
    sid: str,
    epoch: int,
    actor: Any,
    call: Call,
    claimer: str,
    on_snapshot: Callable[[SnapshotRecord], None],
) -> None:
    cursor: Cursor = await asyncio.to_thread(applied_cursor, store, sid, epoch)
    forwarded, next_forward = 0, 0.0
    while True:
        try:
            if time.monotonic() >= next_forward:
                next_forward = time.monotonic() + FORWARD_S
                forwarded = await _forward(store, sid, actor, forwarded, call, claimer)
            done = await call(actor.status.remote(sid)) != "running"
            batch = await call(actor.collect.remote(sid, cursor))
            if batch.cursor != cursor:
                cursor = await asyncio.to_thread(apply, store, sid, epoch, batch, on_snapshot)
                await call(actor.acknowledge.remote(sid, cursor))
            elif done:
                await call(actor.drop.remote(sid))
                return
            if not batch.more:
                await asyncio.sleep(PUMP_S)
        except StaleEpoch:
            with contextlib.suppress(Exception):
                await call(actor.drop.remote(sid))
            return


async def _forward(store: Store, sid: str, actor: Any, after: int, call: Call, claimer: str) -> int:
    """Send the pending commands of `sid`'s children with id > `after` to the node, and the
    root's reply that answers its question (`replica_ask`); the next `after`."""
    pending = await asyncio.to_thread(forwardable_commands, store, sid, after)
    if not pending:
        return after
    await call(actor.forward.remote(pending))
    await asyncio.to_thread(claim_forwarded, store, pending, claimer)
    return max(after, *(c.id for c in pending))
