"""Agent teams' task list under contention: many claimers, one store, no double claims.

    .venv/bin/python bench/teams.py [--claimers 32] [--tasks 2000]

(a) `--claimers` processes race to claim `--tasks` tasks of one team, each walking the ids in
its own random order and calling `update_task(owner=me)` in one write transaction per try
(the TaskUpdate tool's path); a refusal ("owned by …") moves on. Prints claims per second,
tries per second, and double claims: tasks two processes both believe they won, or whose
final owner is not the process that won it (must be 0).

Not measured yet (issue #14 asks for them): message delivery latency with the recipient
mid-turn, and the token overhead of a team against one agent on the same scripted job.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import sys
import tempfile
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path

from covey.store import Store, teams


def _claimer(path: str, team_id: str, name: str, tasks: int, gate: Barrier, out: mp.Queue) -> None:  # type: ignore[type-arg]
    store = Store.open(Path(path))
    order = list(range(1, tasks + 1))
    random.Random(name).shuffle(order)
    won, tries = [], 0
    gate.wait()
    started = time.perf_counter()
    for task in order:
        tries += 1
        try:
            with store.write() as conn:
                teams.update_task(conn, team_id, str(task), by=name, owner=name)
            won.append(task)
        except teams.TeamRefused:
            pass
    out.put((name, won, tries, time.perf_counter() - started))
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claimers", type=int, default=32)
    parser.add_argument("--tasks", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "covey.db"
        names = [f"c{i:02d}" for i in range(args.claimers)]
        with Store.open(path) as store, store.write() as conn:
            team_id = teams.ensure_team(conn, "lead0001").id
            for i, name in enumerate(names):
                teams.add_member(conn, team_id, name, f"sid{i:05d}")
            for i in range(args.tasks):
                teams.create_task(conn, team_id, f"task {i + 1}", "benchmark task")
        ctx = mp.get_context("spawn")
        gate, out = ctx.Barrier(len(names) + 1), ctx.Queue()
        procs = [
            ctx.Process(target=_claimer, args=(str(path), team_id, n, args.tasks, gate, out))
            for n in names
        ]
        for p in procs:
            p.start()
        gate.wait()
        started = time.perf_counter()
        results = [out.get(timeout=600) for _ in procs]
        elapsed = time.perf_counter() - started
        for p in procs:
            p.join()
        with Store.open(path) as store, store.read() as conn:
            owners = {int(t.id): t.owner for t in teams.list_tasks(conn, team_id)}
    winners: dict[int, list[str]] = {}
    for name, won, _, _ in results:
        for task in won:
            winners.setdefault(task, []).append(name)
    doubles = sum(1 for w in winners.values() if len(w) > 1)
    doubles += sum(1 for task, w in winners.items() if owners.get(task) != w[0])
    unclaimed = sum(1 for o in owners.values() if o is None)
    tries = sum(r[2] for r in results)
    print(f"{'claimers':<22}{args.claimers:>12}")
    print(f"{'tasks':<22}{args.tasks:>12}")
    print(f"{'wall time (s)':<22}{elapsed:>12.2f}")
    print(f"{'claims / s':<22}{len(winners) / elapsed:>12.0f}")
    print(f"{'tries / s':<22}{tries / elapsed:>12.0f}")
    print(f"{'double claims':<22}{doubles:>12}")
    print(f"{'unclaimed tasks':<22}{unclaimed:>12}")
    return 1 if doubles or unclaimed else 0


if __name__ == "__main__":
    sys.exit(main())
