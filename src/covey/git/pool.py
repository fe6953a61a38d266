"""The warm pool: worktrees checked out ahead of time, so `covey -w` skips the checkout.

With `worktree.pool: N`, `refill_pool` keeps N detached worktrees under
`.covey/worktrees/.pool/` at the current base, already linked, copied and sparse as
configured. Claiming one (`claim_pooled`) is a rename and a branch, no checkout:
`git worktree move` to `.covey/worktrees/NAME`, `git branch worktree-NAME BASE`,
`git symbolic-ref HEAD refs/heads/worktree-NAME`; copied files whose source changed since
are copied again (files that newly match `.worktreeinclude` arrive when the tree is next
recycled; editing `.worktreeinclude` recycles every tree). A pooled tree whose base moved is
recycled with `git checkout --detach`
(only the changed files are written); one made with other settings, or half-made by a refill
that died, is removed.

Refilling runs in the background: after a worktree was opened with a pool configured, a
`refill_pool` command asks the supervisor, which runs `refill_pool` in a worker thread
(`covey.sessions.control.request_pool_refill`). From a shell or a cron job:
`python -m covey.git.pool refill [REPO] [--size N]`.
Two refills never run at once (the second returns at once, `skipped`); claims only wait
for the short moment a refill flips a tree's `ready` note.
"""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from covey.config import WorktreeSettings, load_settings
from covey.errors import CoveyError
from covey.git import include
from covey.git.checkout import add_checkout, discard_checkout, resolve_base, settings_key
from covey.git.layout import (
    Meta,
    Worktree,
    file_lock,
    pool_dir,
    read_meta,
    worktree_path,
    write_meta,
)
from covey.git.names import branch_for
from covey.git.repo import git, git_result, repo_root

__all__ = ["PoolReport", "claim_pooled", "pool_entries", "refill_pool"]

_CLAIM_LOCK = "pool"
_REFILL_LOCK = "pool-refill"


@dataclass
class PoolReport:
    ready: int = 0
    """Pooled trees ready at the current base after the refill."""
    made: int = 0
    recycled: int = 0
    removed: int = 0
    skipped: bool = False
    """Another refill was running; this one did nothing."""


def pool_entries(root: Path) -> list[tuple[Path, Meta | None]]:
    """The pooled trees on disk with their notes (None: half-made or foreign)."""
    where = pool_dir(root)
    if not where.is_dir():
        return []
    return [(p, read_meta(p)) for p in sorted(where.iterdir()) if p.is_dir()]


def _fits(meta: Meta | None, base: str, key: str, stamp: list[int] | None) -> bool:
    return (
        meta is not None
        and meta.ready
        and meta.base == base
        and meta.settings_key == key
        and meta.include_stamp == stamp
    )


def claim_pooled(
    root: Path, name: str, settings: WorktreeSettings, *, base: str | None = None
) -> Worktree | None:
    """Turn a ready pooled tree at the current base into worktree `name` on a new branch
    `worktree-NAME`; None when no pooled tree fits (the caller then checks out cold)."""
    base = base or resolve_base(root, settings.baseRef)
    key, stamp = settings_key(settings), include.include_stamp(root)
    dest = worktree_path(root, name)
    with file_lock(root, _CLAIM_LOCK):
        fitting = [(p, m) for p, m in pool_entries(root) if m and _fits(m, base, key, stamp)]
        if not fitting:
            return None
        path, meta = fitting[0]
        if not git_result("worktree", "move", str(path), str(dest), cwd=root).ok:
            meta.ready = False  # e.g. it has submodules, which git cannot move: a refill drops it
            write_meta(path, meta)
            return None
    branch = branch_for(name)
    try:
        git("branch", "--no-track", branch, base, cwd=root)
        git("symbolic-ref", "HEAD", f"refs/heads/{branch}", cwd=dest)
        meta.copied = include.resync(root, dest, meta.copied)
        meta.name, meta.created_at = name, time.time()
        write_meta(dest, meta)
    except BaseException:
        discard_checkout(root, dest, symlinks=meta.symlinks)
        raise
    return Worktree(name, dest, branch, base, root, created=True, pooled=True)


def refill_pool(root: Path, settings: WorktreeSettings) -> PoolReport:
    """Bring the pool to `settings.pool` ready trees at the current base (blocking)."""
    report = PoolReport()
    with file_lock(root, _REFILL_LOCK, wait=False) as got:
        if not got:
            report.skipped = True
            return report
        base = resolve_base(root, settings.baseRef)
        key, stamp = settings_key(settings), include.include_stamp(root)
        keep, recycle, drop = _sort_entries(root, base, key, stamp, settings.pool)
        for path, meta in drop:
            discard_checkout(root, path, symlinks=meta.symlinks if meta else [])
            report.removed += 1
        for path, meta in recycle:
            if _recycle(root, path, meta, base, settings):
                report.recycled += 1
            else:
                discard_checkout(root, path, symlinks=meta.symlinks)
                report.removed += 1
        ready = len(keep) + report.recycled
        for _ in range(settings.pool - ready):
            path = pool_dir(root) / secrets.token_hex(4)
            meta = add_checkout(root, path, base=base, settings=settings, branch=None, ready=False)
            meta.ready = True
            write_meta(path, meta)
            report.made += 1
        report.ready = ready + report.made
    return report


def _sort_entries(
    root: Path, base: str, key: str, stamp: list[int] | None, size: int
) -> tuple[list[tuple[Path, Meta]], list[tuple[Path, Meta]], list[tuple[Path, Meta | None]]]:
    """Split the pool into trees to keep, to recycle and to remove; the latter two are marked
    not ready first, under the claim lock, so no claim takes them meanwhile."""
    keep: list[tuple[Path, Meta]] = []
    recycle: list[tuple[Path, Meta]] = []
    drop: list[tuple[Path, Meta | None]] = []
    with file_lock(root, _CLAIM_LOCK):
        for path, meta in pool_entries(root):
            if meta is None or not meta.ready or meta.settings_key != key:
                drop.append((path, meta))
            elif _fits(meta, base, key, stamp) and len(keep) < size:
                keep.append((path, meta))
            elif len(keep) + len(recycle) < size:
                recycle.append((path, meta))
            else:
                drop.append((path, meta))
        for path, meta in recycle + [(p, m) for p, m in drop if m is not None]:
            if meta is not None:
                meta.ready = False
                write_meta(path, meta)
    return keep, recycle, drop


def _top_up(root: Path, path: Path, meta: Meta, settings: WorktreeSettings) -> None:
    """Copy into a ready tree what changed or appeared in the main checkout since."""
    meta.copied = include.resync(root, path, meta.copied)
    meta.copied.update(include.populate(root, path, settings).copied)
    write_meta(path, meta)


def _recycle(root: Path, path: Path, meta: Meta, base: str, settings: WorktreeSettings) -> bool:
    moved = git_result("checkout", "--quiet", "--detach", base, cwd=path)
    if not moved.ok:
        return False
    meta.base = base
    meta.include_stamp = include.include_stamp(root)
    meta.ready = True
    _top_up(root, path, meta, settings)
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m covey.git.pool refill [REPO] [--size N]`: refill once and print a line."""
    import argparse  # here: only the pool's own command line parses arguments

    parser = argparse.ArgumentParser(prog="python -m covey.git.pool")
    parser.add_argument("action", choices=["refill"])
    parser.add_argument("repo", nargs="?", default=".")
    parser.add_argument("--size", type=int, help="pool size (default: worktree.pool)")
    args = parser.parse_args(argv)
    try:
        root = repo_root(Path(args.repo).resolve())
        if root is None:
            raise CoveyError(f"not a git repository: {args.repo}")
        settings = load_settings(root).settings.worktree
        if args.size is not None:
            settings = settings.model_copy(update={"pool": args.size})
        r = refill_pool(root, settings)
    except CoveyError as e:
        print(f"covey: error: {e}", file=sys.stderr)
        return 2
    print(
        f"pool: {r.ready} ready, {r.made} made, {r.recycled} recycled, {r.removed} removed"
        + (" (another refill is running)" if r.skipped else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
