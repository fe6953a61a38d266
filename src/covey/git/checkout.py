"""Making one worktree: `git worktree add`, sparse paths, include; from the base commit
that `covey.git.base` resolves (`worktree.baseRef`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from covey.config import WorktreeSettings
from covey.git import include
from covey.git.base import FETCH_MAX_AGE_S, FETCH_TIMEOUT_S, resolve_base
from covey.git.layout import Meta, write_meta
from covey.git.quickadd import add_quick
from covey.git.repo import GitError, git, git_result

__all__ = [
    "FETCH_MAX_AGE_S",
    "FETCH_TIMEOUT_S",
    "add_checkout",
    "discard_checkout",
    "resolve_base",
    "settings_key",
]


def settings_key(settings: WorktreeSettings) -> str:
    """What a worktree's layout depends on; pooled trees made with other settings are redone."""
    return json.dumps([settings.symlinkDirectories, settings.sparsePaths])


def add_checkout(
    root: Path,
    path: Path,
    *,
    base: str,
    settings: WorktreeSettings,
    branch: str | None,
    new_branch: bool = True,
    name: str | None = None,
    ready: bool = True,
) -> Meta:
    """`git worktree add` at `path` (for a plain new branch, `add_quick`'s one process), then
    sparse paths, links and copies, then covey's notes.

    `branch` None makes a detached tree at `base` (the pool); `new_branch` False checks out
    an existing branch. A failure leaves nothing behind but an existing branch.
    """
    plain = branch is not None and new_branch and not settings.sparsePaths
    if not (plain and add_quick(root, path, base=base, branch=branch or "")):
        _worktree_add(root, path, base=base, settings=settings, branch=branch, new=new_branch)
    try:
        if settings.sparsePaths:
            git("sparse-checkout", "set", "--cone", *settings.sparsePaths, cwd=path)
            git("read-tree", "-mu", "HEAD", cwd=path)
        done = include.populate(root, path, settings)
        meta = Meta(
            base=base,
            name=name,
            base_ref=settings.baseRef,
            settings_key=settings_key(settings),
            symlinks=done.symlinks,
            copied=done.copied,
            include_stamp=done.include_stamp,
            ready=ready,
        )
        write_meta(path, meta)
    except BaseException:
        discard_checkout(root, path, symlinks=settings.symlinkDirectories)
        if branch is not None and new_branch:
            git_result("branch", "-D", branch, cwd=root)
        raise
    return meta


def _worktree_add(
    root: Path, path: Path, *, base: str, settings: WorktreeSettings, branch: str | None, new: bool
) -> None:
    args = ["worktree", "add", "--quiet"]
    if settings.sparsePaths:
        args.append("--no-checkout")
    if branch is None:
        args += ["--detach", str(path), base]
    elif new:
        args += ["--no-track", "-b", branch, str(path), base]
    else:
        args += [str(path), branch]
    path.parent.mkdir(parents=True, exist_ok=True)
    git(*args, cwd=root)


def discard_checkout(root: Path, path: Path, *, symlinks: list[str]) -> None:
    """Remove a worktree that holds no work (a pooled or half-made one): unlink the linked
    directories first, so nothing is deleted through them."""
    for rel in symlinks:
        link = path / rel
        if link.is_symlink():
            link.unlink()
    result = git_result("worktree", "remove", "--force", "--force", str(path), cwd=root)
    if not result.ok and path.exists():
        raise GitError(f"cannot remove worktree {path}: {result.stderr.strip()}")
    git_result("worktree", "prune", cwd=root)
    if os.path.lexists(path) and not any(path.iterdir()):
        path.rmdir()
