"""Background sessions on a real 2-node Ray cluster on loopback, end to end.

    .venv/bin/python bench/cluster.py [--sessions 200] [--turns 10] [--delay 1.0] [--nodes 2]
                                      [--writes] [--count-git]

Starts a loopback cluster (`covey.executors.ray_loopback`), queues `--sessions` background
sessions in a fresh `$COVEY_HOME` (as `covey --bg` does, in this process, so 200 dispatches
do not cost 200 processes), each a scripted model of `--turns` model calls of `--delay`
seconds (every call but the last asks for one Glob tool call, so each turn is a tool batch
the node gates; read-only, it needs no snapshot; with `--writes` a Write instead, so each
batch is also snapshotted, shipped and received), then starts the supervisor with
`background.executor: ray` and times it until every session has ended. Ideal wall = turns ×
delay. Memory: the PSS of every process of the cluster (host actors, raylets, GCS…) sampled
while the sessions run, against the idle cluster, per session; and the supervisor's. Prints
a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from covey.executors.ray_loopback import LoopbackCluster, start_loopback_cluster

POLL_S = 0.5


def pss(pid: int) -> int:
    """Proportional set size in bytes (0 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cluster_pss(cluster: LoopbackCluster) -> tuple[int, int]:
    """(every process of the cluster, the host actors alone), PSS bytes."""
    total = hosts = 0
    for node in cluster.nodes:
        for pid in node.pids():
            got = pss(pid)
            total += got
            try:
                if "SessionHost" in Path(f"/proc/{pid}/cmdline").read_text():
                    hosts += got
            except OSError:
                pass
    return total, hosts


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "b@covey.invalid"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    subprocess.run(["git", "config", "user.name", "bench"], cwd=repo, check=True)
    for i in range(20):
        (repo / f"f{i}.md").write_text(f"file {i}\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "init"], cwd=repo, check=True)
    return repo


def script(path: Path, turns: int, delay: float, writes: bool = False) -> str:
    def call(i: int) -> dict[str, object]:
        if writes:  # a batch that changes the worktree: snapshotted, shipped, received
            return {"name": "Write", "input": {"file_path": f"step{i}.txt", "content": f"{i}\n"}}
        return {"name": "Glob", "input": {"pattern": "*.md"}}  # read-only: no snapshot

    steps = [{"tool_calls": [call(i)], "delay_s": delay} for i in range(turns - 1)]
    steps.append({"text": "done", "delay_s": delay})
    path.write_text(json.dumps({"turns": steps}))
    return f"scripted:{path}"


def queue(repo: Path, model: str, sessions: int) -> float:
    """Queue the sessions as `covey --bg` does; seconds per dispatch."""
    from covey.sessions.background import BackgroundRequest, create_background_session
    from covey.store import Store

    started = time.perf_counter()
    with Store.open() as store:
        for i in range(sessions):
            create_background_session(store, BackgroundRequest(repo, f"work {i}", model=model))
    return (time.perf_counter() - started) / sessions


def states(home: Path) -> dict[str, int]:
    db = sqlite3.connect(home / "covey.db")
    try:
        rows = db.execute("select state, count(*) from sessions group by state").fetchall()
    finally:
        db.close()
    return dict(rows)


def count_git(root: Path) -> Path:
    """A `git` first on PATH (for the cluster and the supervisor, which inherit it) that logs
    each run before it runs the real one; the log. The processes git starts itself
    (`pack-objects` under `bundle create`, `index-pack`…) are not counted."""
    real = shutil.which("git")
    assert real is not None
    shim_dir = root / "git-shim"
    shim_dir.mkdir()
    log = root / "git.log"
    log.touch()
    shim = shim_dir / "git"
    shim.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    shim.chmod(0o755)
    os.environ["PATH"] = f"{shim_dir}:{os.environ['PATH']}"
    return log


def run(args: argparse.Namespace, root: Path) -> list[tuple[str, str]]:
    git_log = count_git(root) if args.count_git else None
    t0 = time.perf_counter()
    cluster = start_loopback_cluster(root / "cluster", nodes=args.nodes)
    started_s = time.perf_counter() - t0
    try:
        time.sleep(3)  # let the idle cluster settle before its memory is read
        idle_total, _ = cluster_pss(cluster)
        home = root / "home"
        home.mkdir()
        os.environ.update(cluster.env)
        os.environ["COVEY_HOME"] = str(home)
        settings = {
            "background": {
                "executor": "ray",
                "idleExitMinutes": 0,
                "ray": {"address": cluster.address, "maxSessionsPerNode": args.sessions},
            }
        }
        (home / "settings.json").write_text(json.dumps(settings))
        repo = make_repo(root)
        model = script(root / "script.json", args.turns, args.delay, args.writes)
        per_dispatch = queue(repo, model, args.sessions)
        logged = len(git_log.read_text().splitlines()) if git_log else 0
        t1 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "covey", "daemon", "start"], cwd=repo, check=True)
        pid = json.loads(
            subprocess.run(
                [sys.executable, "-m", "covey", "daemon", "status", "--json"],
                cwd=repo,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )["pid"]
        peak_total = peak_hosts = peak_sup = 0
        counts: dict[str, int] = {}
        while time.perf_counter() - t1 < args.timeout:
            counts = states(home)
            total, hosts = cluster_pss(cluster)
            peak_total, peak_hosts = max(peak_total, total), max(peak_hosts, hosts)
            peak_sup = max(peak_sup, pss(int(pid)))
            if sum(counts.get(s, 0) for s in ("completed", "failed", "stopped")) >= args.sessions:
                break
            time.sleep(POLL_S)
        wall = time.perf_counter() - t1
        gits = len(git_log.read_text().splitlines()) - logged if git_log else 0
        subprocess.run([sys.executable, "-m", "covey", "daemon", "stop"], cwd=repo, check=False)
    finally:
        cluster.stop()
    ideal = args.turns * args.delay
    mib = 2**20
    n = args.sessions
    return [
        ("sessions × model calls × delay", f"{n} × {args.turns} × {args.delay:g} s"),
        ("nodes (1 CPU each, loopback)", str(args.nodes)),
        ("cluster start-up", f"{started_s:.1f} s"),
        ("dispatch, per session (in process)", f"{per_dispatch * 1000:.0f} ms"),
        ("ended: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), ""),
        ("wall, supervisor start → all ended", f"{wall:.1f} s"),
        ("ideal (turns × delay)", f"{ideal:.1f} s"),
        ("wall / ideal", f"{wall / ideal:.2f}"),
        ("cluster PSS idle → peak", f"{idle_total / mib:.0f} → {peak_total / mib:.0f} MiB"),
        ("host actors' PSS at peak", f"{peak_hosts / mib:.0f} MiB"),
        ("cluster memory per session", f"{(peak_total - idle_total) / n / mib:.2f} MiB"),
        ("supervisor PSS at peak", f"{peak_sup / mib:.0f} MiB"),
        *(
            [("git processes (logged), supervisor start → all ended", f"{gits:,}")]
            if git_log
            else []
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--writes", action="store_true", help="each tool call a Write, not a Glob")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument(
        "--count-git", action="store_true", help="count git processes (a logging git on PATH)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="covey-bench-cluster.") as tmp:
        rows = run(args, Path(tmp))
    print("| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
