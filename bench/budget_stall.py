"""How long the budget check and its give-back stall a session's event loop when other
processes hammer the store with theirs.

    .venv/bin/python bench/budget_stall.py [--processes 12] [--seconds 10] [--ledger 20000]

The check (`SessionBudget._check`: read the ledger and every live reservation, reserve the
request's estimate) and the give-back (`_publish`) are synchronous write transactions run on
the session's event loop. Here `--processes` processes each run one session under a daily
budget, checking and giving back in a tight loop (no model: each request answers at once),
so the store's write lock is always wanted. One more session, in this process, checks every
50 ms like a busy agent while a ticker on the same loop sleeps 1 ms at a time: the ticker's
lateness is the loop's stall. The ledger holds `--ledger` usage rows of today (what the daily
check sums).

Figures: per check and per give-back of the measured session, p50 / p99 / max of the time
spent in it (the loop does nothing else meanwhile); the ticker's p99 and max lateness; and
the checks per second all processes made together. `--spin`: the processes only keep the
CPUs busy (the stall a loaded machine causes without the store); `--processes 0`: alone.

Measured (2026-12-03, 2 shared cores, 20,000 ledger rows, 10 s runs; others' checks 250-350/s,
each with its give-back, so 500-700 write transactions a second: far beyond real sessions,
which check once per model request):

| the 12 processes | check p50 / p99 / max | give-back p99 | loop stall p99 / max |
| --- | --- | --- | --- |
| none | 3.5 / 16 / 31 ms | 0.9 ms | 5 / 30 ms |
| spinning the CPU | 3.7 / 100 / 274 ms | 16 ms | 32 / 345 ms |
| hammering the store | 140-175 / 650-730 / 650-730 ms | 350 ms | 180-350 / 650-840 ms |

The stall is real under that contention (the lock waits, in 50 ms busy slices), bounded by
the store's retry window (`RETRY_FOR_S`), but the checks stayed below a second. Not moved off
the loop: a check in a worker thread needs its estimate kept consistent with the loop's
give-backs (a lock around the requests in flight), a cancelled request whose check still runs
must give back what the thread reserved, and the shared rate limiter's reserve and settle
transactions (`budget/rate_limiter.py`) stall the loop the same way, so both want one answer.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path

from covey.agent.events import BudgetWarning
from covey.budget.spend_limits import BudgetLimits, SessionBudget
from covey.config import BudgetSettings
from covey.errors import BudgetExceeded
from covey.messages import Message, Usage
from covey.models.base import ModelRequest
from covey.models.script import Script
from covey.models.scripted import ScriptedModel
from covey.store import Store
from covey.store.sessions import SessionRow, acquire_lease, insert_session, new_session_id
from covey.store.usage import record_usage

MODEL = ScriptedModel(Script(turns=[]), name="anthropic:claude-sonnet-4-5")
REQUEST = ModelRequest(system="be brief", messages=[Message.user("hello " * 200)])
LIMITS = BudgetLimits.of(BudgetSettings(dailyUsd=1e9))


def _session(store: Store, cwd: str) -> str:
    """A session held by a live lease of this process (its reservations count)."""
    with store.write() as conn:
        sid = new_session_id(conn)
        insert_session(conn, SessionRow.new(id=sid, kind="print", cwd=cwd, model=MODEL.name))
        acquire_lease(conn, sid, f"bench:{os.getpid()}:{sid}", 3600.0, time.time())
    return sid


async def _one_request(budget: SessionBudget) -> None:
    try:
        async with budget(REQUEST, MODEL):
            pass
    except BudgetExceeded:
        pass
    await asyncio.sleep(0)  # the give-back runs after the agent's next await


def _hammer(path: str, seconds: float, spin: bool, start: Barrier, counts: mp.Queue[int]) -> None:
    if spin:  # the same CPU load, without the store
        start.wait()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        counts.put(0)
        return
    with Store.open(Path(path)) as store:
        budget = SessionBudget(store, _session(store, path), LIMITS)
        start.wait()

        async def run() -> int:
            done, end = 0, time.monotonic() + seconds
            while time.monotonic() < end:
                await _one_request(budget)
                done += 1
            return done

        counts.put(asyncio.run(run()))


class TimedBudget(SessionBudget):
    """A session's budget that records how long each check and give-back took."""

    checks: list[float]
    publishes: list[float]

    def _check(self, estimate: float) -> tuple[list[BudgetWarning], BudgetExceeded | None]:
        began = time.perf_counter()
        try:
            return super()._check(estimate)
        finally:
            self.checks.append(time.perf_counter() - began)

    def _publish(self) -> None:
        began = time.perf_counter()
        super()._publish()
        self.publishes.append(time.perf_counter() - began)


async def _measure(budget: TimedBudget, seconds: float) -> list[float]:
    """Check every 50 ms for `seconds`; the ticker's lateness meanwhile."""
    lateness: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            began = loop.time()
            await asyncio.sleep(0.001)
            lateness.append(loop.time() - began - 0.001)

    tick = asyncio.create_task(ticker())
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await _one_request(budget)
        await asyncio.sleep(0.05)
    stop.set()
    await tick
    return lateness


def _seed_ledger(store: Store, rows: int) -> None:
    with store.write() as conn:
        for _ in range(rows):
            usage = Usage(input=1000, output=100)
            record_usage(conn, "ledger", "", MODEL.name, usage, 0.001)


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"p50 {statistics.median(ordered) * 1e3:6.2f} ms  p99 {p99 * 1e3:6.2f} ms  "
        f"max {ordered[-1] * 1e3:6.2f} ms  (n={len(ordered)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ledger", type=int, default=20_000)
    parser.add_argument(
        "--spin", action="store_true", help="the processes only spin the CPU (the baseline)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "covey.db"
        with Store.open(path) as store:
            _seed_ledger(store, args.ledger)
            budget = TimedBudget(store, _session(store, tmp), LIMITS)
            budget.checks, budget.publishes = [], []
            ctx = mp.get_context("spawn")
            start, counts = ctx.Barrier(args.processes + 1), ctx.Queue()
            procs = [
                ctx.Process(
                    target=_hammer, args=(str(path), args.seconds, args.spin, start, counts)
                )
                for _ in range(args.processes)
            ]
            for proc in procs:
                proc.start()
            start.wait()
            lateness = asyncio.run(_measure(budget, args.seconds))
            total = sum(counts.get() for _ in procs)
            for proc in procs:
                proc.join()
    doing = "spinning the CPU" if args.spin else "hammering the store"
    print(f"{args.processes} processes {doing}, {args.ledger} ledger rows, {os.cpu_count()} cores")
    print(f"others' checks: {total / args.seconds:.0f}/s")
    print(f"check:     {_ms(budget.checks)}")
    print(f"give-back: {_ms(budget.publishes)}")
    print(f"ticker:    {_ms(lateness)}")


if __name__ == "__main__":
    main()
