"""Repository basics: run git, make a repository, commit, show a diff."""

from __future__ import annotations

from pathlib import Path

from covey import proc
from covey.errors import CoveyError

__all__ = ["GitError", "commit_all", "diff", "git", "init_repo"]

_IDENTITY = ("-c", "user.name=covey", "-c", "user.email=covey@localhost")


class GitError(CoveyError):
    """A git command failed; the message carries git's own words."""


def git(*args: str, cwd: Path, timeout_s: float = 60.0) -> str:
    result = proc.run(["git", *args], cwd=cwd, timeout_s=timeout_s)
    if not result.ok:
        said = (result.stderr or result.stdout).strip().splitlines()
        raise GitError(f"git {' '.join(args)} failed in {cwd}: {said[-1] if said else '?'}")
    return result.stdout


def init_repo(path: Path, branch: str = "main") -> None:
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", branch, cwd=path)


def commit_all(path: Path, message: str) -> None:
    """Stage everything and commit, with covey's identity if the user has none."""
    git("add", "-A", cwd=path)
    has_identity = proc.run(["git", "config", "user.email"], cwd=path).ok
    identity = () if has_identity else _IDENTITY
    git(*identity, "commit", "-q", "--allow-empty", "-m", message, cwd=path)


def diff(path: Path, *args: str) -> str:
    """`git diff` of the working tree, untracked files included (as intent-to-add)."""
    git("add", "-A", "--intent-to-add", cwd=path)
    return git("diff", *args, cwd=path)
