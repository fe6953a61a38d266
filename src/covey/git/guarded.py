"""What a sandboxed command must not change in a repository it may otherwise write to.

Files in a git directory can make git run programs: hooks, and configuration (`core.fsmonitor`,
`core.hooksPath`, filter and diff drivers, `gpg.program`, …). A sandboxed Bash that could
write them would have the next git command outside the sandbox — the person's, or covey's —
run what it planted. So inside the sandbox, for every repository whose git directory lies in
a writable directory:

- `config` and `hooks/` of the shared git directory are read-only (`hooks/` is made first when
  missing, so nothing can be planted there either), and so is any `config.worktree`;
- each linked worktree's `.git` file and its `commondir` (which say where its git directory and
  its configuration are) are read-only;
- the git directory itself is bound onto itself: a mount point cannot be renamed or replaced,
  so the agent cannot swap in a copy with another configuration;
- `commondir` must not appear in the main git directory (it would point git at another
  configuration); a file cannot be made read-only before it exists, so the sandbox removes
  one that a command created (`must_not_appear`).

Everything else (objects, refs, the index) stays writable, so the agent can still commit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["GitGuard", "guard_repositories"]


@dataclass
class GitGuard:
    """Paths of the repositories under the writable directories, as the sandbox binds them."""

    pinned: list[Path] = field(default_factory=list)
    """Directories bound onto themselves (still writable), before the read-only binds."""
    read_only: list[Path] = field(default_factory=list)
    must_not_appear: list[Path] = field(default_factory=list)
    """Files that do not exist now and must not exist after the command."""


def guard_repositories(writable: Iterable[Path]) -> GitGuard:
    """The guard for the repositories holding (or held by) the `writable` directories: only
    paths inside one of them are listed, since everything else is read-only already."""
    roots = [Path(os.path.realpath(r)) for r in writable]
    inside = _inside(roots)
    guard = GitGuard()
    seen: set[Path] = set()
    for root in roots:
        dot_git = _enclosing_git(root)
        if dot_git is None:
            continue
        own = _git_dir(dot_git)
        common = _common_dir(own) if own is not None else None
        if common is None or common in seen:
            continue
        seen.add(common)
        if inside(common):
            with contextlib.suppress(OSError):
                (common / "hooks").mkdir(exist_ok=True)
        _guard_common(guard, common, dot_git if dot_git.is_file() else None)
    return GitGuard(
        pinned=[p for p in _unique(guard.pinned) if inside(p)],
        read_only=[p for p in _unique(guard.read_only) if inside(p) and os.path.lexists(p)],
        must_not_appear=[p for p in guard.must_not_appear if inside(p)],
    )


def _guard_common(guard: GitGuard, common: Path, gitfile: Path | None) -> None:
    guard.pinned.append(common)
    guard.read_only += [common / "config", common / "hooks", common / "config.worktree"]
    if gitfile is not None:
        guard.read_only.append(gitfile)
    if not os.path.lexists(common / "commondir"):
        guard.must_not_appear.append(common / "commondir")
    with contextlib.suppress(OSError):
        for admin in sorted((common / "worktrees").iterdir()):
            guard.read_only += [admin / "commondir", admin / "config.worktree"]
            with contextlib.suppress(OSError, UnicodeDecodeError):
                where = (admin / "gitdir").read_text(encoding="utf-8").strip()
                guard.read_only.append(Path(os.path.realpath(where)))


def _enclosing_git(start: Path) -> Path | None:
    """The `.git` of the nearest directory at or above `start` that has one."""
    for d in (start, *start.parents):
        if os.path.lexists(d / ".git"):
            return d / ".git"
    return None


def _git_dir(dot_git: Path) -> Path | None:
    """The git directory `.git` is (a directory) or names (a `gitdir:` file)."""
    if dot_git.is_dir():
        return Path(os.path.realpath(dot_git))
    try:
        text = dot_git.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir:"):
        return None
    named = Path(text.removeprefix("gitdir:").strip())
    return Path(os.path.realpath(dot_git.parent / named))


def _common_dir(git_dir: Path) -> Path | None:
    try:
        named = (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return git_dir
    except (OSError, UnicodeDecodeError):
        return None
    return Path(os.path.realpath(git_dir / named))


def _inside(roots: list[Path]) -> Callable[[Path], bool]:
    def check(path: Path) -> bool:
        real = Path(os.path.realpath(path))
        return any(real == r or real.is_relative_to(r) for r in roots)

    return check


def _unique(paths: list[Path]) -> list[Path]:
    return list(dict.fromkeys(Path(os.path.realpath(p)) for p in paths))
