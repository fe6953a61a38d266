"""What the store costs per agent step, and how many writes per second it sustains.

    .venv/bin/python bench/store.py [--steps 2000] [--writers 16] [--seconds 5]

(a) One agent step as the session runner persists it after each model response: a transcript
entry (a realistic ~1.5 KB assistant message), a usage row, an event and a fenced session
update. Measured both as one write transaction per step (what the runner should do: atomic,
one commit) and as four transactions, over `--steps` steps of one session.
(b) `--writers` processes each appending events, one per write transaction, for `--seconds`:
events per second in total and per process, and the busy errors seen (retried) or raised.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path

from covey.messages import Message, TextBlock, ToolUseBlock, Usage, dump_message
from covey.store import (
    SessionRow,
    Store,
    StoreBusy,
    acquire_lease,
    append_entry,
    append_event,
    insert_session,
    record_usage,
    update_session,
)

TARGET_STEP_MS = 1.0
SLOW_S = 0.002


def _message(i: int) -> dict[str, object]:
    """An assistant message of about 1.5 KB as JSON: some prose and an Edit call."""
    text = f"Step {i}: the failing test expects the parser to keep trailing whitespace. " * 10
    edit = ToolUseBlock(
        id=f"toolu_{i:020d}",
        name="Edit",
        input={
            "file_path": "/home/user/project/src/parser/tokenize.py",
            "old_string": "    return line.rstrip()\n" * 8,
            "new_string": "    return line.rstrip('\\n')\n" * 8,
        },
    )
    return dump_message(Message(role="assistant", content=[TextBlock(text=text), edit]))


def _steps(store: Store, steps: int, batched: bool) -> list[float]:
    """Seconds per step."""
    with store.write() as conn:
        sid = f"b{'one' if batched else 'four'}"
        insert_session(conn, SessionRow(id=sid, kind="print", cwd="/r", model="m", state="queued"))
        epoch = acquire_lease(conn, sid, "bench", 300, now=time.time())
    assert epoch is not None
    usage = Usage(input=1200, output=350, cache_read=40_000, cache_write=900)
    messages = [_message(i) for i in range(steps)]
    parts: list[Callable[[sqlite3.Connection, int], object]] = [
        lambda c, i: append_entry(c, sid, epoch, "message", messages[i]),
        lambda c, i: record_usage(c, sid, "main", "claude-sonnet-4-5", usage, 0.0123),
        lambda c, i: append_event(c, sid, "assistant", {"seq": i, "tokens": 350}),
        lambda c, i: update_session(c, sid, epoch, state="working"),
    ]
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        if batched:
            with store.write() as conn:
                for part in parts:
                    part(conn, i)
        else:
            for part in parts:
                with store.write() as conn:
                    part(conn, i)
        times.append(time.perf_counter() - t0)
    return times


@dataclass
class WriterResult:
    latencies: list[float]
    """Seconds per successful write transaction."""
    retried: int
    raised: int


def _writer(path: str, seconds: float, start: Barrier, results: mp.Queue[WriterResult]) -> None:
    store = Store.open(Path(path))
    latencies: list[float] = []
    raised = 0
    start.wait()
    deadline = time.monotonic() + seconds
    while (t0 := time.monotonic()) < deadline:
        try:
            with store.write() as conn:
                append_event(conn, None, "tick", {"pid": os.getpid(), "n": len(latencies)})
            latencies.append(time.monotonic() - t0)
        except (StoreBusy, sqlite3.OperationalError):
            raised += 1
    results.put(WriterResult(latencies, store.statistics().busy_retries, raised))
    store.close()


def _sustained(path: Path, writers: int, seconds: float) -> list[WriterResult]:
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(writers)
    results: mp.Queue[WriterResult] = ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(str(path), seconds, start, results))
        for _ in range(writers)
    ]
    for p in procs:
        p.start()
    out: list[WriterResult] = []
    while len(out) < writers:
        try:
            out.append(results.get(timeout=1.0))
        except queue.Empty:
            if any(p.exitcode for p in procs):
                sys.exit("a writer process failed; see its traceback above")
    for p in procs:
        p.join()
    return out


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())  # before we add to it

    with tempfile.TemporaryDirectory() as tmp:
        with Store.open(Path(tmp) / "covey.db") as store:
            one = _steps(store, args.steps, batched=True)
            four = _steps(store, args.steps, batched=False)
        rows = _sustained(Path(tmp) / "sustained.db", args.writers, args.seconds)

    size = len(json.dumps(_message(0)).encode())
    print(f"```sh\n.venv/bin/python {' '.join(sys.argv)}\n```\n")
    print(
        f"{os.cpu_count()} cores (load average {load} at start), Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}, WAL, synchronous=NORMAL; "
        f"message ≈ {size:,} B of JSON\n"
    )
    table: list[tuple[str, str, str]] = []
    for label, times in (("1 transaction", one), ("4 transactions", four)):
        med = statistics.median(times)
        met = "met" if med * 1000 <= TARGET_STEP_MS else "NOT met"
        target = f"target ≤ {TARGET_STEP_MS:g} ms: {met}" if label == "1 transaction" else ""
        slow = sum(t > SLOW_S for t in times)
        table += [
            (f"step cost, {label}, median ({len(times)} steps)", _ms(med), target),
            (f"step cost, {label}, p99", _ms(_p99(times)), ""),
            (f"steps over {SLOW_S * 1000:g} ms, {label}", f"{slow} of {len(times)}", ""),
        ]
    counts = [len(r.latencies) for r in rows]
    total = sum(counts)
    waits = sorted(x for r in rows for x in r.latencies)
    per_process = (min(counts), statistics.median(counts), max(counts))
    table += [
        (f"events written by {len(rows)} processes in {args.seconds:g} s", f"{total:,}", ""),
        ("sustained events / s, total", f"{total / args.seconds:,.0f}", ""),
        (
            "events / s per process, min / median / max",
            " / ".join(f"{c / args.seconds:,.0f}" for c in per_process),
            "",
        ),
        (
            "write latency under contention, median / p99 / max",
            " / ".join(_ms(x) for x in (statistics.median(waits), _p99(waits), waits[-1])),
            "",
        ),
        ("busy errors retried (after SQLite's own wait)", str(sum(r.retried for r in rows)), ""),
        ("busy errors raised", str(sum(r.raised for r in rows)), "expected 0"),
    ]
    width = max(len(r[0]) for r in table)
    print(f"| {'measure':<{width}} | value | target |")
    print(f"|{'-' * (width + 2)}|---|---|")
    for name, value, target in table:
        print(f"| {name:<{width}} | {value} | {target} |")


if __name__ == "__main__":
    main()
