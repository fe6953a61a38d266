"""What it costs to ship a workspace to a cluster node by git, and its work back.

    .venv/bin/python bench/cluster_ship.py [--files 20000] [--repeat 3] [--fresh]

Prints a markdown table for a generated repository of `--files` files with a few commits of
history: `pack_workspace` (bundling the base; then again, from the supervisor's cache),
`unpack_workspace` on a "node" (a fresh node cache; then a second session of the same base),
against `git clone --no-local file://…` (objects really copied, files checked out); then the
snapshot round trip of a typical step (3 files edited): `snapshot_for_shipping` on the node and
`receive_snapshot` into the user's repository. Times are medians of `--repeat` runs, wall
clock, spawning git included. The repository is cached under the temp directory (`--fresh`
remakes it); everything else is made in a temporary directory and removed.
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

from covey.git.bundles import (
    pack_workspace,
    receive_snapshot,
    snapshot_for_shipping,
    unpack_workspace,
)

FILES_PER_DIR = 100
HISTORY = 4
"""Commits in the generated repository: the initial one, then edits to a tenth of the files."""


def sh(*args: str, cwd: Path) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout


def generate(files: int, fresh: bool) -> tuple[Path, str]:
    """The cached repository of `files` files, and a line saying how it was obtained."""
    repo = Path(tempfile.gettempdir()) / f"covey-bench-cluster-ship-{files}"
    stamp = repo / ".git" / "covey-bench.json"
    if stamp.exists() and not fresh:
        took = json.loads(stamp.read_text())["seconds"]
        return repo, f"reused the cached repository {repo} (generated in {took:.1f} s)"
    shutil.rmtree(repo, ignore_errors=True)
    started = time.perf_counter()
    repo.mkdir(parents=True)
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("git", "config", "user.email", "bench@covey.invalid", cwd=repo)
    sh("git", "config", "user.name", "covey bench", cwd=repo)
    (repo / ".gitignore").write_text(".env\n.covey/\n")
    (repo / ".worktreeinclude").write_text(".env\n")
    (repo / ".env").write_text("SECRET_FOR_TESTS=1\n")
    for commit in range(HISTORY):
        for i in range(0 if commit == 0 else commit, files, 1 if commit == 0 else 10):
            folder = repo / "src" / f"pkg{i // FILES_PER_DIR:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            body = f"VALUE = {i}\nREVISION = {commit}\n" + "".join(
                f"def f{k}(x):\n    return x * {i + k}\n" for k in range(6)
            )
            (folder / f"mod{i % FILES_PER_DIR:03d}.py").write_text(body)
        sh("git", "add", "-A", cwd=repo)
        sh("git", "commit", "-q", "-m", f"revision {commit}", cwd=repo)
    took = time.perf_counter() - started
    stamp.write_text(json.dumps({"seconds": took}))
    return repo, f"generated {files:,} files, {HISTORY} commits, in {repo} in {took:.1f} s"


def median_time(repeat: int, run: Callable[[int], object]) -> float:
    """Median seconds of `run(i)` for i in range(repeat)."""
    times = []
    for i in range(repeat):
        started = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def ms(s: float) -> str:
    return f"{s * 1000:,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="regenerate the repository")
    args = parser.parse_args()
    repo, how = generate(args.files, args.fresh)
    base = sh("git", "rev-parse", "HEAD", cwd=repo).strip()
    bundles = repo / ".git" / "covey" / "bundles"
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="covey-bench-ship.") as tmp:
        work = Path(tmp)

        def clone(i: int) -> None:
            dest = work / f"clone{i}"
            sh("git", "clone", "-q", "--no-local", f"file://{repo}", str(dest), cwd=work)

        clone_s = median_time(args.repeat, clone)
        clone_bytes = du(work / "clone0" / ".git" / "objects")
        rows.append(("`git clone --no-local file://…`", ms(clone_s), mib(clone_bytes), "1×"))

        def pack_cold(i: int) -> None:
            shutil.rmtree(bundles, ignore_errors=True)
            pack_workspace(repo, base)

        pack_s = median_time(args.repeat, pack_cold)
        pack = pack_workspace(repo, base)
        size = mib(len(pack.bundle))
        ratio = f"{pack_s / clone_s:.2f}× clone"
        rows.append(("pack_workspace, bundle made", ms(pack_s), size, ratio))
        warm_s = median_time(args.repeat, lambda i: pack_workspace(repo, base))
        rows.append(("pack_workspace again (supervisor cache)", ms(warm_s), size, ""))

        def unpack_cold(i: int) -> None:
            unpack_workspace(pack, work / f"node{i}" / "s0", "s0", cache_dir=work / f"node{i}")

        unpack_s = median_time(args.repeat, unpack_cold)
        unpack_bytes = du(work / "node0" / f"{base}.git" / "objects")
        ratio = f"{unpack_s / clone_s:.2f}× clone"
        rows.append(("unpack_workspace, new node", ms(unpack_s), mib(unpack_bytes), ratio))
        total = pack_s + unpack_s
        rows.append(
            ("pack + unpack, first session", ms(total), "", f"{total / clone_s:.2f}× clone")
        )

        def unpack_warm(i: int) -> None:
            unpack_workspace(
                pack, work / "node0" / f"s{i + 1}", f"s{i + 1}", cache_dir=work / "node0"
            )

        again_s = median_time(args.repeat, unpack_warm)
        ratio = f"{again_s / clone_s:.2f}× clone"
        rows.append(("unpack_workspace, same base again (node cache)", ms(again_s), "", ratio))

        worktree = work / "node0" / "s0"
        sh("git", "branch", "-f", "s0", base, cwd=repo)
        parent = base
        snaps = []
        bundle_sizes = []

        def snapshot(i: int) -> None:
            nonlocal parent
            for n in range(3):
                path = worktree / "src" / f"pkg{n:03d}" / f"mod{i:03d}.py"
                path.write_text(path.read_text() + f"# step {i}\n")
            snap = snapshot_for_shipping(worktree, parent, f"step {i}")
            assert snap is not None
            snaps.append(snap)
            bundle_sizes.append(len(snap.bundle))
            parent = snap.sha

        snap_s = median_time(args.repeat, snapshot)
        queue = iter(snaps)
        recv_s = median_time(args.repeat, lambda i: receive_snapshot(repo, "s0", next(queue)))
        size = mib(int(statistics.median(bundle_sizes)))
        rows.append(("snapshot_for_shipping, 3 files edited", ms(snap_s), size, ""))
        rows.append(("receive_snapshot", ms(recv_s), "", ""))
        rows.append(("snapshot round trip", ms(snap_s + recv_s), size, ""))
        sh("git", "branch", "-D", "s0", cwd=repo)

    load = os.getloadavg()[0]
    print(f"{how}; load average {load:.2f}; medians of {args.repeat}\n")
    head = ("measure", "time", "size", "ratio")
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(4)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    sys.exit(main())
