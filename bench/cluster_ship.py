"""What it costs to ship a workspace to a cluster node by git, and its work back.

    .venv/bin/python bench/cluster_ship.py [--files 20000] [--repeat 3] [--fresh]

Prints a markdown table for a generated repository of `--files` files with a few commits of
history: `pack_workspace` (bundling the base; then again, from the supervisor's cache),
`unpack_workspace` on a "node" (a fresh node cache; then a second session of the same base),
against `git clone --no-local file://…` (objects really copied, files checked out), split into
its two halves (a bare clone: objects only; `git worktree add`: checkout only), and the
unpack's objects-only half (`git bundle unbundle`); then the
snapshot round trip of a typical step (3 files edited): `snapshot_for_shipping` on the node and
`receive_snapshot` into the user's repository. Times are medians of `--repeat` runs, wall
clock and CPU (this process and the git processes it waited for: far steadier than the wall
clock on a shared machine; the ratio column compares CPU), spawning git included. The
repository is cached under the temp directory (`--fresh` remakes it); everything else is made
in a temporary directory and removed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from covey.git.bundles import (
    ShippedSnapshot,
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


@dataclass(frozen=True)
class Cost:
    wall: float
    cpu: float
    """User + system seconds of this process and the git processes it waited for."""

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.wall + other.wall, self.cpu + other.cpu)


def cpu_seconds() -> float:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(repeat: int, run: Callable[[int], object]) -> Cost:
    """Median wall and CPU seconds of `run(i)` for i in range(repeat)."""
    walls, cpus = [], []
    for i in range(repeat):
        wall, cpu = time.perf_counter(), cpu_seconds()
        run(i)
        walls.append(time.perf_counter() - wall)
        cpus.append(cpu_seconds() - cpu)
    return Cost(statistics.median(walls), statistics.median(cpus))


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def ms(s: float) -> str:
    return f"{s * 1000:,.0f} ms"


class Table:
    HEAD = ("measure", "wall", "CPU", "size", "CPU ratio to the clone")

    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []
        self.clone: Cost | None = None

    def add(self, name: str, cost: Cost, size: str = "", *, ratio: bool = True) -> None:
        if self.clone is None:
            self.clone = cost
        shown = f"{cost.cpu / self.clone.cpu:.2f}×" if ratio else ""
        self.rows.append((name, ms(cost.wall), ms(cost.cpu), size, shown))

    def print(self) -> None:
        widths = [max(len(r[c]) for r in [self.HEAD, *self.rows]) for c in range(5)]
        for row in [self.HEAD, tuple("-" * w for w in widths), *self.rows]:
            print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="regenerate the repository")
    args = parser.parse_args()
    repo, how = generate(args.files, args.fresh)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="covey-bench-ship.") as tmp:
        table = ship(repo, Path(tmp), args.repeat)
    print(f"{how}; load average {load:.2f} → {os.getloadavg()[0]:.2f}; medians of {args.repeat}")
    print()
    table.print()


def ship(repo: Path, work: Path, repeat: int) -> Table:
    base = sh("git", "rev-parse", "HEAD", cwd=repo).strip()
    url = f"file://{repo}"
    table = Table()
    clone = measure(
        repeat, lambda i: sh("git", "clone", "-q", "--no-local", url, f"c{i}", cwd=work)
    )
    table.add("`git clone --no-local file://…`", clone, mib(du(work / "c0" / ".git" / "objects")))
    bare = measure(
        repeat, lambda i: sh("git", "clone", "-q", "--bare", "--no-local", url, f"b{i}", cwd=work)
    )
    table.add("`git clone --bare --no-local …` (objects only)", bare)
    checkout = measure(
        repeat,
        lambda i: sh(
            "git", "worktree", "add", "-q", "--detach", str(work / f"w{i}"), base, cwd=repo
        ),
    )
    for i in range(repeat):
        sh("git", "worktree", "remove", "--force", str(work / f"w{i}"), cwd=repo)
    table.add("`git worktree add` (checkout only)", checkout)

    bundles = repo / ".git" / "covey" / "bundles"

    def pack_cold(i: int) -> None:
        shutil.rmtree(bundles, ignore_errors=True)
        pack_workspace(repo, base)

    pack_cost = measure(repeat, pack_cold)
    pack = pack_workspace(repo, base)
    table.add("pack_workspace, bundle made", pack_cost, mib(len(pack.bundle)))
    table.add(
        "pack_workspace again (supervisor cache)",
        measure(repeat, lambda i: pack_workspace(repo, base)),
    )

    (work / "pack.bundle").write_bytes(pack.bundle)

    def unbundle(i: int) -> None:
        sh("git", "init", "-q", "--bare", f"u{i}.git", cwd=work)
        sh("git", "bundle", "unbundle", str(work / "pack.bundle"), cwd=work / f"u{i}.git")

    table.add("`git bundle unbundle` of it alone (objects only)", measure(repeat, unbundle))

    def unpack(node: str, i: int) -> None:
        unpack_workspace(pack, work / node / f"s{i}", f"s{i}", cache_dir=work / node)

    unpack_cost = measure(repeat, lambda i: unpack(f"node{i}", 0))
    objects = mib(du(work / "node0" / f"{base}.git" / ".git" / "objects"))
    table.add("unpack_workspace, new node", unpack_cost, objects)
    table.add("pack + unpack, the first session of a base", pack_cost + unpack_cost)
    table.add(
        "unpack_workspace, same base again (node cache)",
        measure(repeat, lambda i: unpack("node0", i + 1)),
    )

    worktree = work / "node0" / "s0"
    sh("git", "branch", "-f", "s0", base, cwd=repo)
    snaps: list[ShippedSnapshot] = []

    def snapshot(i: int) -> None:
        for n in range(3):
            path = worktree / "src" / f"pkg{n:03d}" / f"mod{i:03d}.py"
            path.write_text(path.read_text() + f"# step {i}\n")
        snap = snapshot_for_shipping(worktree, snaps[-1].sha if snaps else base, f"step {i}")
        assert snap is not None
        snaps.append(snap)

    snap_cost = measure(repeat, snapshot)
    queue = iter(snaps)
    receive_cost = measure(repeat, lambda i: receive_snapshot(repo, "s0", next(queue)))
    size = mib(int(statistics.median(len(s.bundle) for s in snaps)))
    table.add("snapshot_for_shipping, 3 files edited", snap_cost, size, ratio=False)
    table.add("receive_snapshot", receive_cost, ratio=False)
    table.add("snapshot round trip", snap_cost + receive_cost, size, ratio=False)
    sh("git", "branch", "-D", "s0", cwd=repo)
    return table


if __name__ == "__main__":
    sys.exit(main())
