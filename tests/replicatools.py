"""Helpers for the replica tests: a session in the user's store, the same session hosted on a
node store (in this process, or as `python tests/replicatools.py ...` to kill it), a pump.

The node side runs the real `SessionHost` with the scripted model, gated by `ToolGate`; its
snapshot callback is `git/snapshots.py`'s `take_snapshot` (a real commit of the worktree)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from covey.executors.replica import (
    SnapshotRecord,
    export_session,
    forward_commands,
    pump,
    seed_node_store,
)
from covey.executors.replica_node import ToolGate, gate_tools
from covey.git.snapshots import take_snapshot
from covey.sessions.host import SessionHost
from covey.sessions.lease import new_host_id
from covey.sessions.plan import SessionOptions, plan_session
from covey.store import Store
from covey.store.commands import claim_commands, finish_command
from covey.store.sessions import SessionRow, acquire_lease, get_session, insert_session
from covey.store.transcript import read_entries
from covey.store.usage import usage_rows

SUPERVISOR = "user-machine:1:abcdef:supervisor"


def write_script(path: Path, turns: list[dict[str, Any]]) -> str:
    path.write_text(json.dumps({"turns": turns}))
    return f"scripted:{path}"


def new_session(store: Store, repo: Path, model: str, session_id: str = "replica1") -> int:
    """A session row in `store`, leased by the supervisor; its epoch."""
    row = SessionRow.new(id=session_id, kind="print", cwd=str(repo), model=model)
    with store.write() as conn:
        insert_session(conn, row)
        epoch = acquire_lease(conn, session_id, SUPERVISOR, 30.0, time.time())
    assert epoch is not None
    return epoch


def open_host(store: Store, session_id: str, epoch: int, host_id: str) -> SessionHost:
    """The unchanged SessionHost over `store`, for a session already leased at `epoch`."""
    with store.read() as conn:
        row = get_session(conn, session_id)
    assert row is not None
    options = SessionOptions(cwd=Path(row.cwd), permission_mode="bypassPermissions")
    plan = plan_session(options, previous=row)
    return SessionHost.open(store, plan, host_id=host_id, claimed_epoch=epoch)


@dataclass(frozen=True)
class Shipped:
    sha: str
    parent: str
    bundle: bytes


def snapshotter(repo: Path, session_id: str) -> Callable[[], Shipped]:
    def snapshot() -> Shipped:
        snap = take_snapshot(repo, repo, f"replica-{session_id}")
        return Shipped(snap.commit, snap.head, b"bundle of " + snap.commit.encode())

    return snapshot


def seed(store: Store, node_store: Store, session_id: str, epoch: int) -> str:
    """Seed the node store from the user's; the node's host id."""
    host_id = new_host_id()
    seed_node_store(node_store, export_session(store, session_id), epoch, host_id=host_id)
    return host_id


async def run_on_node(
    node_store: Store,
    session_id: str,
    epoch: int,
    host_id: str,
    prompt: str,
    *,
    on_started: Callable[[SessionHost, asyncio.Task[Any]], None] | None = None,
) -> None:
    """Host the seeded session on the node store for one turn, its tools gated."""
    host = await asyncio.to_thread(open_host, node_store, session_id, epoch, host_id)
    gate_tools(host, ToolGate(node_store, session_id, snapshotter(host.cwd, session_id)))
    try:
        task = asyncio.ensure_future(host.run_turn(prompt))
        if on_started is not None:
            on_started(host, task)
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        host.close()


async def stop_when_asked(
    node_store: Store, session_id: str, host: SessionHost, task: asyncio.Task[Any]
) -> None:
    """What the node's host does with a forwarded `stop`: cancel the turn, say so."""
    while not task.done():
        with node_store.write() as conn:
            stops = claim_commands(conn, claimer="node", session_id=session_id, types=["stop"])
        for command in stops:
            host.cancel_cause = "stop"
            task.cancel()
            with node_store.write() as conn:
                finish_command(conn, command.id, "done", {"stopped": True})
        await asyncio.sleep(0.02)


@contextlib.contextmanager
def pumping(
    store: Store,
    node_path: Path,
    session_id: str,
    epoch: int,
    on_snapshot: Callable[[SnapshotRecord], None],
    *,
    every_s: float = 0.02,
    last_round: bool = True,
) -> Iterator[list[BaseException]]:
    """The supervisor's side in a thread: pump every `every_s`, forward commands; errors
    kept. On leaving, one `last_round` (False: the node is lost, nothing more comes)."""
    errors: list[BaseException] = []
    done = threading.Event()

    def loop() -> None:
        forwarded = 0
        with Store.open(node_path) as node_store:
            while True:
                finished = done.is_set()
                if finished and not last_round:
                    return
                try:
                    pump(store, node_store, session_id, epoch, on_snapshot)
                    forwarded = forward_commands(store, node_store, session_id, forwarded)
                except Exception as e:
                    errors.append(e)
                    return
                if finished:
                    return
                time.sleep(every_s)

    thread = threading.Thread(target=loop, name="pump")
    thread.start()
    try:
        yield errors
    finally:
        done.set()
        thread.join()


def view(store: Store, session_id: str) -> dict[str, Any]:
    """What a person sees of a session: transcript, usage, state."""
    with store.read() as conn:
        row = get_session(conn, session_id)
        entries = [(e.seq, e.kind, e.data) for e in read_entries(conn, session_id)]
        usage = [(u.agent_path, u.model, u.usage, u.cost_usd) for u in usage_rows(conn)]
    assert row is not None
    return {
        "transcript": entries,
        "usage": usage,
        "state": (row.state, row.reason, row.summary),
        "pending": row.meta.pending,
    }


def _main(node_db: str, session_id: str, epoch: str, host_id: str, prompt: str) -> None:
    """The node side as a process of its own (to be killed with SIGKILL)."""
    with Store.open(Path(node_db)) as node_store:
        asyncio.run(run_on_node(node_store, session_id, int(epoch), host_id, prompt))


if __name__ == "__main__":
    _main(*sys.argv[1:])
