"""Making one worktree: resolve the base commit, `git worktree add`, sparse paths, include.

`worktree.baseRef`:
- `fresh`: the remote's default branch (`<remote>/HEAD`, the remote being `origin` or the only
  one). The remote is fetched first when it was last fetched over a day ago, capped at
  `FETCH_TIMEOUT_S`; a failed fetch (offline) is not retried for a day and the last known
  state is used. Without a remote, or when its HEAD is unknown: local HEAD.
- `head`: local HEAD, unpushed commits included.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from covey.config import WorktreeSettings
from covey.errors import UserError
from covey.git import include
from covey.git.layout import Meta, common_dir, write_meta
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

FETCH_MAX_AGE_S = 24 * 3600.0
FETCH_TIMEOUT_S = 5.0
_NO_PROMPT = {"GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes"}


def resolve_base(root: Path, mode: str) -> str:
    """The commit a new worktree starts from, as a full sha."""
    if mode == "fresh":
        remote = _default_remote(root)
        if remote is not None:
            fetched = _fetch_if_stale(root, remote)
            sha = _commit(root, f"refs/remotes/{remote}/HEAD")
            if sha is None and fetched:
                with contextlib.suppress(GitError):
                    git(
                        "remote",
                        "set-head",
                        remote,
                        "--auto",
                        cwd=root,
                        timeout_s=FETCH_TIMEOUT_S,
                        env=_NO_PROMPT,
                    )
                sha = _commit(root, f"refs/remotes/{remote}/HEAD")
            if sha is not None:
                return sha
    sha = _commit(root, "HEAD")
    if sha is None:
        raise UserError(f"{root}: the repository has no commit yet; commit once, then covey -w")
    return sha


def _commit(root: Path, ref: str) -> str | None:
    result = git_result("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=root)
    return result.stdout.strip() if result.ok else None


def _default_remote(root: Path) -> str | None:
    remotes = git("remote", cwd=root).split()
    if "origin" in remotes:
        return "origin"
    return remotes[0] if len(remotes) == 1 else None


def _fetch_if_stale(root: Path, remote: str) -> bool:
    common = common_dir(root)
    stamp = common / "covey" / "last-fetch"
    ages = []
    for path in (common / "FETCH_HEAD", stamp):
        with contextlib.suppress(OSError):
            ages.append(time.time() - path.stat().st_mtime)
    if ages and min(ages) < FETCH_MAX_AGE_S:
        return False
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.touch()
    result = git_result(
        "fetch", "--quiet", "--no-tags", remote, cwd=root, timeout_s=FETCH_TIMEOUT_S, env=_NO_PROMPT
    )
    return result.ok


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
