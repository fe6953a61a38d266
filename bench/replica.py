"""What replicating a session costs: the node's journal, the supervisor's apply, the gate.

    .venv/bin/python bench/replica.py [--steps 1000]

(a) One agent step as the persister writes it (a ~1.5 KB assistant message, its usage row, an
event and a fenced summary update, one transaction) on a plain store and on a node store
whose triggers journal the session: ms per step, and the ratio.
(b) `collect` + `apply` + `acknowledge` of those steps into a user's store, in batches of
500 records: records per second and ms per step.
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


def _message(i: int) -> dict[str, object]:
    text = f"Step {i}: the failing test expects the parser to keep trailing whitespace. " * 10
    edit = ToolUseBlock(
        id=f"toolu_{i:06d}",
        name="Edit",
        input={"file_path": "src/parser.py", "old_string": "x.strip()", "new_string": "x"},
    )
    return dump_message(Message(role="assistant", content=[TextBlock(text=text), edit]))


def _session(store: Store) -> int:
    with store.write() as conn:
        insert_session(conn, SessionRow.new(id=SID, kind="print", cwd="/tmp", model="m"))
        epoch = acquire_lease(conn, SID, "bench", 30.0, time.time())
    assert epoch is not None
    return epoch


def _steps(store: Store, epoch: int, n: int) -> float:
    """ms per step."""
    usage = Usage(input=1000, output=50)
    started = time.perf_counter()
    for i in range(n):
        with store.write() as conn:
            append_entry(conn, SID, epoch, "message", _message(i))
            record_usage(conn, SID, "main", "m", usage, 0.01)
            append_event(conn, SID, "assistant", {"summary": f"step {i}", "tools": ["Edit"]})
            update_session(conn, SID, epoch, summary=f"step {i}")
    return (time.perf_counter() - started) * 1000 / n


def _journal(tmp: Path, n: int) -> None:
    with Store.open(tmp / "plain.db") as plain:
        plain_ms = _steps(plain, _session(plain), n)
    with Store.open(tmp / "user.db") as user, Store.open(tmp / "node.db") as node:
        epoch = _session(user)
        seed_node_store(node, export_session(user, SID), epoch, host_id="bench")
        node_ms = _steps(node, epoch, n)
        print(f"(a) one step, plain store      {plain_ms:8.3f} ms")
        print(f"    one step, journaled (node) {node_ms:8.3f} ms   x{node_ms / plain_ms:.2f}")
        started = time.perf_counter()
        records = pump(user, node, SID, epoch, lambda _s: None)
        took = time.perf_counter() - started
        print(f"(b) apply {records} records       {took * 1000:8.1f} ms   ", end="")
        print(f"{records / took:,.0f} records/s, {took * 1000 / n:.3f} ms per step")


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
