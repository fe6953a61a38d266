"""Worktree costs on a generated repository of 20,000 files.

    .venv/bin/python bench/worktrees.py [--files 20000] [--worktrees 50] [--repeat 5] [--fresh]

Prints a markdown table: plain `git worktree add`, `covey -w` cold and from the warm pool,
removing a dirty worktree (with its snapshot), and the overlap radar over N live worktrees,
with ratios to the plain `git worktree add` or to the target. The radar is timed without
its file watcher (full `git status` scans), then with it (`covey.git.fsmonitor`), idle and
with one file edited in every worktree before each scan; the watcher is stopped at the end.
The repository and the radar's N worktrees are made once and cached under the temp directory
(`--fresh` remakes them, and `--drop-cache` just deletes them); the other worktrees the bench
makes are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from covey.git.fsmonitor import fsmonitor_dir, stop_watcher, watcher_pid
from covey.git.overlaps import find_overlaps

try:
    from covey.config import WorktreeSettings
    from covey.git.pool import refill_pool
    from covey.git.worktrees import open_worktree, remove_worktree

    WORKTREE_API: str | None = None
except ImportError as e:  # the worktree engine has not landed yet
    WORKTREE_API = f"not available: {e}"

POOL_TARGET = 0.1
"""`covey -w` from the pool should cost at most this fraction of a plain `git worktree add`."""
OVERLAPS_TARGET_S = 1.0
FILES_PER_DIR = 100
RADAR = "radar-"


def sh(*args: str, cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


def generate(files: int, fresh: bool) -> tuple[Path, str]:
    """The cached repository of `files` files, and a line saying how it was obtained."""
    repo = Path(tempfile.gettempdir()) / f"covey-bench-worktrees-{files}"
    stamp = repo / ".git" / "covey-bench.json"
    if stamp.exists() and not fresh:
        took = json.loads(stamp.read_text())["seconds"]
        return repo, f"reused the cached repository {repo} (generated in {took:.1f} s)"
    shutil.rmtree(repo, ignore_errors=True)
    started = time.perf_counter()
    for i in range(files):
        folder = repo / "src" / f"pkg{i // FILES_PER_DIR:03d}"
        if i % FILES_PER_DIR == 0:
            folder.mkdir(parents=True)
        (folder / f"mod{i % FILES_PER_DIR:03d}.py").write_text(f"VALUE = {i}\n" + "x = 1\n" * 8)
    (repo / ".gitignore").write_text(".covey/worktrees/\n")
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("git", "config", "user.email", "bench@covey.invalid", cwd=repo)
    sh("git", "config", "user.name", "covey bench", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", "generated", cwd=repo)
    took = time.perf_counter() - started
    stamp.write_text(json.dumps({"seconds": took}))
    return (
        repo,
        f"generated {files:,} files in {repo} in {took:.1f} s (written, one add, one commit)",
    )


def clean(repo: Path) -> None:
    """Remove the linked worktrees (but the radar's), their branches and the snapshot refs."""
    home = repo / ".covey" / "worktrees"
    for child in home.iterdir() if home.is_dir() else []:
        if not child.name.startswith(RADAR):
            shutil.rmtree(child, ignore_errors=True)
    sh("git", "worktree", "prune", cwd=repo)
    refs = sh("git", "for-each-ref", "--format=%(refname)", "refs/heads/", "refs/covey/", cwd=repo)
    for ref in refs.split():
        if ref != "refs/heads/main" and not ref.startswith(f"refs/heads/worktree-{RADAR}"):
            sh("git", "update-ref", "-d", ref, cwd=repo)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def plain_add(repo: Path, repeat: int) -> list[float]:
    def add(i: int) -> None:
        sh(
            "git",
            "worktree",
            "add",
            "-q",
            "-b",
            f"plain-{i}",
            f".covey/worktrees/plain-{i}",
            cwd=repo,
        )

    return [timed(lambda i=i: add(i)) for i in range(repeat)]


def covey_cold(repo: Path, repeat: int) -> list[float]:
    settings = WorktreeSettings(baseRef="head", pool=0)
    return [timed(lambda i=i: open_worktree(repo, f"cold-{i}", settings)) for i in range(repeat)]


def covey_pooled(repo: Path, repeat: int) -> tuple[list[float], int]:
    """Claim times, and how many claims really came from the pool."""
    settings = WorktreeSettings(baseRef="head", pool=repeat)
    refill_pool(repo, settings)  # the host does this in the background
    times, pooled = [], 0
    for i in range(repeat):
        started = time.perf_counter()
        wt = open_worktree(repo, f"pooled-{i}", settings)
        times.append(time.perf_counter() - started)
        pooled += bool(wt.pooled)
    return times, pooled


def remove_dirty(repo: Path, repeat: int, files: int) -> list[float]:
    settings = WorktreeSettings(baseRef="head", pool=0)
    times, dirs = [], max(1, files // FILES_PER_DIR)
    for i in range(repeat):
        wt = open_worktree(repo, f"gone-{i}", settings)
        for j in range(10):
            (wt.path / "src" / f"pkg{j % dirs:03d}" / "mod000.py").write_text(f"edited {i}\n")
        (wt.path / f"new-{i}.txt").write_text("untracked work\n")
        times.append(timed(lambda n=wt.name: remove_worktree(repo, n, force=True)))
    return times


def radar_setup(repo: Path, count: int, files: int) -> int:
    """`count` worktrees (made once, then cached), each with a commit, an uncommitted edit and
    an untracked file; pairs share a committed file, tens an uncommitted one. Returns how many
    were made now."""
    made, dirs = [], max(1, files // FILES_PER_DIR)
    for i in range(count):
        path = repo / ".covey" / "worktrees" / f"{RADAR}{i:02d}"
        if not (path / ".git").exists():
            shutil.rmtree(path, ignore_errors=True)
            sh("git", "worktree", "prune", cwd=repo)
            sh("git", "branch", "-f", f"worktree-{RADAR}{i:02d}", "main", cwd=repo)
            sh("git", "worktree", "add", "-q", str(path), f"worktree-{RADAR}{i:02d}", cwd=repo)
            (path / "src" / f"pkg{i // 2 % dirs:03d}" / "mod001.py").write_text(f"committed {i}\n")
            sh("git", "commit", "-q", "-am", f"radar {i}", cwd=path)
            made.append(path)
        (path / "src" / f"pkg{i % 10 % dirs:03d}" / "mod002.py").write_text(f"uncommitted {i}\n")
        (path / f"notes-{i}.txt").write_text("untracked\n")
    if made:  # rewrite each new index a second after its checkout, as any git command an agent
        time.sleep(1.1)  # runs there would: a "racily clean" index makes git re-read every file
        for path in made:
            sh("git", "update-index", "-q", "--refresh", cwd=path)
    return len(made)


def lstat_cost(repo: Path) -> float:
    """Seconds per lstat(2) of a checked-out file on this machine (what a scan is made of)."""
    paths = list((repo / "src").glob("pkg00*/*.py"))
    started = time.perf_counter()
    for _ in range(5):
        for p in paths:
            os.lstat(p)
    return (time.perf_counter() - started) / (5 * len(paths))


def wait_for_watcher(repo: Path) -> None:
    """Start the repository's file watcher (a scan does) and wait until it watches all."""
    find_overlaps(repo)
    deadline = time.monotonic() + 120
    while not (fsmonitor_dir(repo) / "ready").exists() or watcher_pid(repo) is None:
        if time.monotonic() > deadline:
            raise SystemExit("the fsmonitor watcher did not get ready in 120 s")
        time.sleep(0.05)
    find_overlaps(repo)  # the first scan with it is a full one (new tokens)


def edit_each(repo: Path, count: int, round_: int) -> None:
    """Change one more file in every radar worktree (what agents at work do between scans)."""
    for i in range(count):
        path = repo / ".covey" / "worktrees" / f"{RADAR}{i:02d}" / "src" / "pkg001" / "mod009.py"
        path.write_text(f"edited {round_}\n")


def radar(repo: Path, args: argparse.Namespace) -> dict[str, list[float] | str]:
    """Times of each radar measure, by label; the number of overlaps under "found"."""
    repeat = args.repeat
    stop_watcher(repo)
    times: dict[str, list[float] | str] = {}
    find_overlaps(repo, watch=False)
    times["find_overlaps(), no watcher (full scans)"] = [
        timed(lambda: find_overlaps(repo, watch=False)) for _ in range(repeat)
    ]
    wait_for_watcher(repo)
    try:
        times["found"] = str(len(find_overlaps(repo)))
        times["find_overlaps(), watcher running"] = [
            timed(lambda: find_overlaps(repo)) for _ in range(repeat)
        ]
        edited = []
        for r in range(repeat):
            edit_each(repo, args.worktrees, r)
            edited.append(timed(lambda: find_overlaps(repo)))
        times["find_overlaps(), watcher running, a file edited in each worktree before each"] = (
            edited
        )
        cmd = [sys.executable, "-m", "covey", "overlaps", "--json"]
        probe = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
        label = "`covey overlaps --json`, new process, watcher running"
        if probe.returncode != 0:
            tail = (probe.stderr.strip().splitlines() or ["?"])[-1]
            times[label] = f"not available: the covey command failed ({tail})"
        else:
            times[label] = [
                timed(lambda: subprocess.run(cmd, cwd=repo, stdout=subprocess.DEVNULL, check=True))
                for _ in range(repeat)
            ]
    finally:
        for i in range(args.worktrees):  # undo the edits, so the cached setup stays as made
            wt = repo / ".covey" / "worktrees" / f"{RADAR}{i:02d}"
            sh("git", "checkout", "-q", "--", "src/pkg001/mod009.py", cwd=wt)
        stop_watcher(repo)
    return times


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def worktree_rows(repo: Path, args: argparse.Namespace) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    git_add = statistics.median(plain_add(repo, args.repeat))
    rows.append((f"`git worktree add` alone (median of {args.repeat})", ms(git_add), "1×", ""))
    n = max(3, args.repeat // 2)
    if WORKTREE_API is not None:
        return [*rows, ("`covey -w` cold, from the pool; remove", WORKTREE_API, "", "")]
    cold = statistics.median(covey_cold(repo, n))
    rows.append((f"`covey -w` cold (median of {n})", ms(cold), f"{cold / git_add:.2f}×", ""))
    pooled_times, hits = covey_pooled(repo, n)
    pool = statistics.median(pooled_times)
    verdict = "met" if pool <= POOL_TARGET * git_add else "MISSED"
    title = f"`covey -w` from the pool (median of {n}, {hits}/{n} claimed from it)"
    rows.append((title, ms(pool), f"{pool / git_add:.3f}×", f"≤ {POOL_TARGET}×: {verdict}"))
    gone = statistics.median(remove_dirty(repo, n, args.files))
    title = f"remove a dirty worktree, snapshot first (median of {n})"
    rows.append((title, ms(gone), f"{gone / git_add:.2f}×", ""))
    return rows


def radar_rows(repo: Path, args: argparse.Namespace) -> list[tuple[str, str, str, str]]:
    made = radar_setup(repo, args.worktrees, args.files)
    print(f"radar: {args.worktrees} worktrees ({made} made now, the rest cached)", file=sys.stderr)
    os.sync()  # let the writes of a fresh setup settle before timing
    measured = radar(repo, args)
    found = measured.pop("found")
    rows: list[tuple[str, str, str, str]] = []
    total = args.worktrees * args.files
    for label, times in measured.items():
        title = f"{label}, {args.worktrees} worktrees, {found} overlaps (median of {args.repeat})"
        if isinstance(times, str):
            rows.append((title, times, "", ""))
            continue
        took = statistics.median(times)
        verdict = "met" if took <= OVERLAPS_TARGET_S else "MISSED"
        ratio = f"{took / OVERLAPS_TARGET_S:.2f}× target; {took / total * 1e6:.2f} µs per file"
        rows.append((title, ms(took), ratio, f"≤ {OVERLAPS_TARGET_S:.0f} s: {verdict}"))
    cost = lstat_cost(repo)
    floor = total * cost / (os.cpu_count() or 1)
    title = f"lstat(2) per file, from Python; × {total:,} files ÷ {os.cpu_count()} cores"
    rows.append((title, f"{cost * 1e6:.2f} µs", f"floor ≈ {ms(floor)} per scan", ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--worktrees", type=int, default=50, help="live worktrees for the radar")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="remake the cached repository")
    parser.add_argument("--drop-cache", action="store_true", help="delete the cache and exit")
    args = parser.parse_args()
    if args.drop_cache:
        shutil.rmtree(Path(tempfile.gettempdir()) / f"covey-bench-worktrees-{args.files}", True)
        return
    repo, how = generate(args.files, args.fresh)
    print(how, file=sys.stderr)
    clean(repo)
    try:
        scan = radar_rows(repo, args)  # first, before the other rows churn the disk
        rows = worktree_rows(repo, args) + scan
    finally:
        clean(repo)
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(width)} | time | ratio | target |")
    print(f"|{'-' * (width + 2)}|---|---|---|")
    for name, value, ratio, target in rows:
        print(f"| {name.ljust(width)} | {value} | {ratio} | {target} |")


if __name__ == "__main__":
    main()
