"""What replicating a session costs: the node's journal, the supervisor's apply, the gate.

    .venv/bin/python bench/replica.py [--steps 1000]

(a) One agent step as the persister writes it (a ~1.5 KB assistant message, its usage row, an
event and a fenced summary update, one transaction) on a plain store and on a node store
whose triggers journal the session: ms per step, and the ratio; then the same steps of a
subagent of the replicated session (journaled in its root's stream through the tree table).
(b) `collect` + `apply` + `acknowledge` of all those steps into a user's store, in batches
of 500 records: records per second and ms per step.
(a) and (b) count this process's CPU time, steadier than wall time on a shared machine (the
stores are in WAL mode: a commit does not wait for the disk).
(c) The gate before a tool batch: from `ToolGate.before_tools` to its return while a pump
thread polls every 50 ms (what a supervisor does), over 20 batches: median and worst.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

from covey.executors.replica import export_session, pump, seed_node_store
from covey.executors.replica_node import ToolGate
from covey.messages import Message, TextBlock, ToolUseBlock, Usage, dump_message
from covey.store import (
    SessionRow,
    Store,
    acquire_lease,
    append_entry,
    append_event,
    insert_session,
    record_usage,
    update_session,
)

SID = "benchsid"
CHILD = "benchkid"


def _message(i: int) -> dict[str, object]:
    text = f"Step {i}: the failing test expects the parser to keep trailing whitespace. " * 10
    edit = ToolUseBlock(
        id=f"toolu_{i:06d}",
        name="Edit",
        input={"file_path": "src/parser.py", "old_string": "x.strip()", "new_string": "x"},
    )
    return dump_message(Message(role="assistant", content=[TextBlock(text=text), edit]))


def _session(store: Store, sid: str = SID, parent: str | None = None) -> int:
    kind = "print" if parent is None else "subagent"
    row = SessionRow.new(id=sid, kind=kind, cwd="/tmp", model="m", parent_id=parent)
    with store.write() as conn:
        insert_session(conn, row)
        epoch = acquire_lease(conn, sid, "bench", 30.0, time.time())
    assert epoch is not None
    return epoch


def _steps(store: Store, epoch: int, n: int, sid: str = SID) -> float:
    """ms per step."""
    usage = Usage(input=1000, output=50)
    started = time.process_time()
    for i in range(n):
        with store.write() as conn:
            append_entry(conn, sid, epoch, "message", _message(i))
            record_usage(conn, sid, "main", "m", usage, 0.01)
            append_event(conn, sid, "assistant", {"summary": f"step {i}", "tools": ["Edit"]})
            update_session(conn, sid, epoch, summary=f"step {i}")
    return (time.process_time() - started) * 1000 / n


def _journal(tmp: Path, n: int) -> None:
    with Store.open(tmp / "plain.db") as plain:
        plain_ms = _steps(plain, _session(plain), n)
    with Store.open(tmp / "user.db") as user, Store.open(tmp / "node.db") as node:
        epoch = _session(user)
        seed_node_store(node, export_session(user, SID), epoch, host_id="bench")
        node_ms = _steps(node, epoch, n)
        child_ms = _steps(node, _session(node, CHILD, SID), n, CHILD)
        print(f"(a) one step, plain store      {plain_ms:8.3f} ms")
        print(f"    one step, journaled (node) {node_ms:8.3f} ms   x{node_ms / plain_ms:.2f}")
        print(f"    a subagent's step (node)   {child_ms:8.3f} ms   x{child_ms / plain_ms:.2f}")
        started = time.process_time()
        records = pump(user, node, SID, epoch, lambda _s: None)
        took = time.process_time() - started
        print(f"(b) apply {records} records       {took * 1000:8.1f} ms   ", end="")
        print(f"{records / took:,.0f} records/s, {took * 1000 / (2 * n):.3f} ms per step")


def _gate(tmp: Path, batches: int) -> None:
    with Store.open(tmp / "user2.db") as user, Store.open(tmp / "node2.db") as node:
        epoch = _session(user)
        seed_node_store(node, export_session(user, SID), epoch, host_id="bench")
        done = threading.Event()

        def supervisor() -> None:
            while not done.is_set():
                pump(user, node, SID, epoch, lambda _s: None)
                time.sleep(0.05)

        thread = threading.Thread(target=supervisor)
        thread.start()
        gate = ToolGate(node, SID, lambda: None)
        waits: list[float] = []

        async def run() -> None:
            for i in range(batches):
                with node.write() as conn:
                    append_entry(conn, SID, epoch, "message", _message(i))
                started = time.perf_counter()
                await gate.before_tools()
                waits.append((time.perf_counter() - started) * 1000)
                await gate.after_tools()

        try:
            asyncio.run(run())
        finally:
            done.set()
            thread.join()
    print(
        f"(c) gate before a tool batch, pump every 50 ms: median {statistics.median(waits):.0f}",
        end="",
    )
    print(f" ms, worst {max(waits):.0f} ms ({batches} batches)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _journal(Path(tmp), args.steps)
        _gate(Path(tmp), 20)


if __name__ == "__main__":
    main()
