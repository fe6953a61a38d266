"""The commit a new worktree starts from, `worktree.baseRef`:
- `fresh`: the remote's default branch (`<remote>/HEAD`, the remote being `origin` or the only
  one). The remote is fetched first when it was last fetched over a day ago, capped at
  `FETCH_TIMEOUT_S`; a failed fetch (offline) is not retried for a day and the last known
  state is used. Without a remote, or when its HEAD is unknown: local HEAD.
- `head`: local HEAD, unpushed commits included.

A module of its own: a `covey --bg` dispatch resolves the base without loading what makes a
worktree (checkout, include, pool).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from covey.errors import UserError
from covey.git.layout import common_dir
from covey.git.repo import GitError, git, git_result

__all__ = ["FETCH_MAX_AGE_S", "FETCH_TIMEOUT_S", "resolve_base"]

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
