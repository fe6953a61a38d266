"""The overlap radar: files changed in two or more live worktrees of one repository.

A worktree's changes are every path that differs from its base, committed or not, untracked
files included. The base is the commit the worktree started from (as covey recorded it), or
the last point its branch was merged into the main checkout's HEAD when that is later (see
`base_args`). One scan costs one `git worktree list` plus, per worktree and concurrently,
`git status --porcelain` (uncommitted and untracked) and, for a branch with commits since its
base, `git diff --name-only <main>...HEAD` (a `merge-base` first when the recorded base is not
the main HEAD; cached by commit ids). A plain `git status` lstats every checked-out file; the
radar's runs on its own copy of each index, with git's fsmonitor hook fed by covey's file
watcher and the untracked cache, so it looks only at what changed since the last scan (see
`covey.git.fsmonitor`, and docs/benchmarks.md for the figures). No git call here takes a lock
of the agent's: they run with `--no-optional-locks`, but for `git status` on the radar's copy.

This module also finds the repository's covey worktrees (`.covey/worktrees/<NAME>`) for
`covey diff` and `covey merge`.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from covey import proc
from covey.errors import UserError
from covey.git.fsmonitor import Monitor, open_monitor
from covey.git.layout import read_meta, registered, worktrees_dir
from covey.git.repo import GitError, git_argv, repo_root

__all__ = [
    "Checkout",
    "LiveWorktrees",
    "Overlap",
    "base_args",
    "find_overlaps",
    "live_worktrees",
    "overlaps_of",
    "scan_changes",
    "scan_overlaps",
    "worktree_changes",
]

_TIMEOUT_S = 30.0
_COMMITTED: dict[tuple[str, ...], frozenset[str]] = {}
"""Committed changes by (worktree HEAD, main HEAD, recorded base), for repeated scans."""
_COMMITTED_LIMIT = 4096
_NO_COMMIT = "0" * 40


@dataclass(frozen=True)
class Checkout:
    """One checkout of the repository: the main one or a linked worktree."""

    path: Path
    head: str | None
    """The commit checked out; None on an unborn branch."""
    branch: str | None
    """The branch's short name (`worktree-NAME`); None on a detached HEAD."""
    recorded_base: str | None = None
    """The base covey recorded when it made the worktree (None: unknown, or the main one)."""
    symlinks: tuple[str, ...] = ()
    """Directories covey linked into the worktree: never the agent's work."""


@dataclass(frozen=True)
class LiveWorktrees:
    """The main checkout and the covey worktrees (by name) that exist on disk."""

    main: Checkout
    worktrees: dict[str, Checkout]

    def get(self, name: str) -> Checkout:
        """The worktree called `name`, or a UserError naming it and listing the others."""
        try:
            return self.worktrees[name]
        except KeyError:
            known = ", ".join(sorted(self.worktrees)) or "(none)"
            raise UserError(
                f"no worktree named {name!r} in {self.main.path}; existing worktrees: {known}"
            ) from None


@dataclass(frozen=True)
class Overlap:
    """A path changed in two or more worktrees, and those worktrees' names (sorted)."""

    path: str
    worktrees: list[str]


def live_worktrees(cwd: Path) -> LiveWorktrees:
    """The repository around `cwd` (its main checkout or any worktree) and its covey worktrees
    (pooled ones, under `.covey/worktrees/.pool/`, are not). Raises UserError outside a git
    repository or in a bare one."""
    root = repo_root(cwd)
    if root is None:
        raise UserError(
            f"not inside a git repository: {cwd} (run covey from the repository or a worktree)"
        )
    main, *others = registered(root)
    home = worktrees_dir(main.path)
    worktrees = {}
    for e in others:
        if e.prunable or e.path.parent != home or e.path.name.startswith("."):
            continue
        meta = read_meta(e.path)
        worktrees[e.path.name] = Checkout(
            path=e.path,
            head=_commit_or_none(e.head),
            branch=e.branch,
            recorded_base=meta.base or None if meta else None,
            symlinks=tuple(meta.symlinks) if meta else (),
        )
    return LiveWorktrees(Checkout(main.path, _commit_or_none(main.head), main.branch), worktrees)


def _commit_or_none(head: str | None) -> str | None:
    return None if not head or head == _NO_COMMIT else head


def base_args(checkout: Checkout, main_head: str) -> list[str]:
    """Arguments to `git merge-base` that name the worktree's base: the best common ancestor of
    its HEAD and (the main HEAD or the recorded base), so a worktree started from a fetched
    origin/HEAD ahead of the main branch, or one merged since, gets the right base."""
    recorded = checkout.recorded_base
    extra = [recorded] if recorded and recorded != main_head else []
    return [checkout.head or "HEAD", main_head, *extra]


async def _git_async(
    *args: str, cwd: Path, env: dict[str, str] | None = None, optional_locks: bool = False
) -> str:
    locks = [] if optional_locks else ["--no-optional-locks"]
    environ = {**proc.without_credentials(), **(env or {})}
    result = await proc.run_process(
        git_argv(*locks, *args), cwd=cwd, env=environ, timeout_s=_TIMEOUT_S
    )
    if not result.ok:
        said = (result.stderr or result.stdout).strip().splitlines()
        raise GitError(f"git {' '.join(args)} failed in {cwd}: {said[-1] if said else '?'}")
    return result.stdout


async def _committed(checkout: Checkout, main_head: str) -> set[str]:
    """Paths changed by the commits on the worktree's branch since its base. What changed
    between fixed commits never changes, so the answer is kept (by commit ids) for later scans."""
    args = base_args(checkout, main_head)
    key = tuple(args)
    if (known := _COMMITTED.get(key)) is not None:
        return set(known)
    if len(args) == 2:  # the usual case: one process, `git diff MAIN...HEAD`
        since = [f"{main_head}...{args[0]}"]
    else:
        since = [(await _git_async("merge-base", *args, cwd=checkout.path)).strip(), args[0]]
    names = await _git_async("diff", "--name-only", "-z", "--no-renames", *since, cwd=checkout.path)
    paths = {p for p in names.split("\0") if p}
    if len(_COMMITTED) >= _COMMITTED_LIMIT:
        _COMMITTED.clear()
    _COMMITTED[key] = frozenset(paths)
    return paths


async def _uncommitted(checkout: Checkout, monitor: Monitor | None) -> set[str]:
    """Paths with uncommitted changes, untracked files included."""
    status = ["status", "--porcelain", "-z", "-uall", "--no-renames"]
    if monitor is None:
        out = await _git_async(*status, cwd=checkout.path)
        return _parse_status(out, checkout.symlinks)
    with monitor.status_run(checkout.path, checkout.path.name) as run:
        out = await _git_async(
            *run.options, *status, cwd=checkout.path, env=run.env, optional_locks=run.writes_index
        )
    return _parse_status(out, checkout.symlinks)


async def _changed_paths(
    checkout: Checkout, main_head: str | None, monitor: Monitor | None = None
) -> set[str]:
    """Paths that differ from the checkout's base: committed, uncommitted and untracked.
    Both git calls run to the end before a failure of either is raised."""
    jobs = [_uncommitted(checkout, monitor)]
    starts = (main_head, checkout.recorded_base)
    if main_head is not None and checkout.head is not None and checkout.head not in starts:
        jobs.append(_committed(checkout, main_head))  # there are commits since the base
    paths: set[str] = set()
    for result in await asyncio.gather(*jobs, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result
        paths |= result
    return paths


def _parse_status(out: str, symlinks: tuple[str, ...] = ()) -> set[str]:
    """Paths in `git status --porcelain -z` output, less what covey put there itself: untracked
    files under `.covey/` (copied project settings) and linked directories."""
    paths: set[str] = set()
    fields = iter(out.split("\0"))
    for entry in fields:
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":
            next(fields, None)  # the original path of a rename or copy
        if code == "??" and (path.startswith(".covey/") or path.rstrip("/") in symlinks):
            continue
        paths.add(path)
    return paths


async def scan_changes(
    repo: LiveWorktrees, concurrency: int | None = None, *, watch: bool = True
) -> dict[str, set[str]]:
    """Changed paths of every covey worktree, by name. At most `concurrency` (default: twice
    the CPU count) worktrees are scanned at once. A worktree that disappears mid-scan, or whose
    git fails, is left out: the radar is a live view, refreshed again a second later. With
    `watch`, the repository's file watcher is started when none runs, so that the next scans
    are quick (`covey.git.fsmonitor`); either way a running one is used."""
    limit = asyncio.Semaphore(concurrency or 2 * (os.cpu_count() or 1))
    main_head = repo.main.head
    monitor = None
    if repo.worktrees:
        monitor = await asyncio.to_thread(open_monitor, repo.main.path, start=watch)

    async def one(checkout: Checkout) -> set[str] | None:
        async with limit:
            try:
                return await _changed_paths(checkout, main_head, monitor)
            except (GitError, proc.ProcessStartError):
                return None

    names = sorted(repo.worktrees)
    results = await asyncio.gather(*(one(repo.worktrees[n]) for n in names))
    return {n: r for n, r in zip(names, results, strict=True) if r is not None}


def worktree_changes(repo: LiveWorktrees, *, watch: bool = True) -> dict[str, set[str]]:
    """Blocking form of `scan_changes`, for callers outside an event loop."""
    return asyncio.run(scan_changes(repo, watch=watch))


def overlaps_of(changes: dict[str, set[str]]) -> list[Overlap]:
    """Paths that appear in two or more of the change sets, sorted by path."""
    by_path: defaultdict[str, list[str]] = defaultdict(list)
    for name in sorted(changes):
        for path in changes[name]:
            by_path[path].append(name)
    return [Overlap(p, names) for p, names in sorted(by_path.items()) if len(names) > 1]


async def scan_overlaps(repo_root: Path, *, watch: bool = True) -> list[Overlap]:
    """Files changed in two or more live worktrees of the repository at `repo_root` (`watch`:
    see `scan_changes`)."""
    repo = await asyncio.to_thread(live_worktrees, repo_root)
    return overlaps_of(await scan_changes(repo, watch=watch))


def find_overlaps(repo_root: Path, *, watch: bool = True) -> list[Overlap]:
    """Blocking form of `scan_overlaps` (inside a running event loop, await that instead)."""
    return asyncio.run(scan_overlaps(repo_root, watch=watch))
