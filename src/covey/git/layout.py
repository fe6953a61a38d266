"""Where covey's worktrees live and what is known about each of them.

<repo>/.covey/worktrees/NAME     a worktree on branch `worktree-NAME`
<repo>/.covey/worktrees/.pool/ID a warm, detached worktree waiting to be claimed
<admin>/covey-worktree.json      covey's notes on one worktree (`Meta`), kept in git's
                                 private directory for it (`.git/worktrees/ID/`), so
                                 they go away with the worktree's registration
<common>/covey/*.lock            advisory locks (pool claims, refills)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from covey.git.repo import git

__all__ = [
    "META_FILE",
    "Meta",
    "Registered",
    "Worktree",
    "WorktreeHooks",
    "admin_dir",
    "common_dir",
    "file_lock",
    "lock_reason",
    "not_work",
    "pool_dir",
    "read_meta",
    "registered",
    "worktree_path",
    "worktrees_dir",
    "write_meta",
]

META_FILE = "covey-worktree.json"


def worktrees_dir(root: Path) -> Path:
    return root / ".covey" / "worktrees"


def worktree_path(root: Path, name: str) -> Path:
    return worktrees_dir(root) / name


def pool_dir(root: Path) -> Path:
    return worktrees_dir(root) / ".pool"


def common_dir(root: Path) -> Path:
    """The repository's shared git directory (`<root>/.git` unless it lives elsewhere)."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    out = git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=root)
    return Path(out.strip())


def admin_dir(worktree: Path) -> Path | None:
    """git's private directory for a linked worktree, read from its `.git` file."""
    try:
        text = (worktree / ".git").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir:"):
        return None
    path = Path(text.removeprefix("gitdir:").strip())
    return path if path.is_absolute() else (worktree / path).resolve()


def lock_reason(worktree: Path) -> str | None:
    """Why a linked worktree is locked (git's `locked` file: "" when no reason was given);
    None when it is not locked."""
    admin = admin_dir(worktree)
    try:
        return (admin / "locked").read_text(encoding="utf-8").strip() if admin else None
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class Worktree:
    """A worktree ready to work in."""

    name: str
    path: Path
    branch: str
    """The branch checked out there (`worktree-NAME`); "" when a hook made it outside git."""
    base: str
    """The commit it started from ("" when unknown, e.g. made by a WorktreeCreate hook)."""
    repo_root: Path
    """The main checkout of the repository."""
    created: bool
    """True when this call made the directory; False when it reopened an existing one."""
    pooled: bool = False
    """True when it was claimed from the warm pool (no checkout happened)."""


class WorktreeHooks(Protocol):
    """The WorktreeCreate / WorktreeRemove hooks, as the host runs them."""

    def create(self, name: str) -> Path | None:
        """Run WorktreeCreate; the path it printed, or None when no hook is configured.
        A failing hook raises (creation fails, as in Claude Code)."""
        ...

    def remove(self, path: Path) -> None:
        """Run WorktreeRemove; it cannot block and its failures are the host's to log."""
        ...


@dataclass
class Registered:
    """One entry of `git worktree list`."""

    path: Path
    head: str | None = None
    branch: str | None = None
    """The short branch name; None when detached."""
    locked: str | None = None
    """The lock's reason ("" when locked without one); None when not locked."""
    prunable: bool = False
    """git lost the directory (it was deleted or moved by hand)."""


def registered(root: Path) -> list[Registered]:
    """Every worktree git knows in this repository, the main checkout first."""
    out = git("worktree", "list", "--porcelain", "-z", cwd=root)
    entries: list[Registered] = []
    for record in out.split("\0\0"):
        fields = [f for f in record.split("\0") if f]
        if not fields or not fields[0].startswith("worktree "):
            continue
        entry = Registered(Path(fields[0].removeprefix("worktree ")))
        for f in fields[1:]:
            key, _, value = f.partition(" ")
            if key == "HEAD":
                entry.head = value
            elif key == "branch":
                entry.branch = value.removeprefix("refs/heads/")
            elif key == "locked":
                entry.locked = value
            elif key == "prunable":
                entry.prunable = True
        entries.append(entry)
    return entries


@dataclass
class Meta:
    """covey's notes on one worktree."""

    base: str
    """The commit the worktree started from."""
    name: str | None = None
    """The worktree's name; None while it waits in the pool."""
    base_ref: str = "head"
    """The `worktree.baseRef` mode the base was resolved with."""
    settings_key: str = ""
    """The symlink and sparse settings it was made with (a pooled tree must match)."""
    symlinks: list[str] = field(default_factory=list)
    """Directories linked to the main checkout; never snapshotted, unlinked before removal."""
    copied: dict[str, list[int]] = field(default_factory=dict)
    """Files copied from the main checkout → [mtime_ns, size] of the source when copied."""
    include_stamp: list[int] | None = None
    """[mtime_ns, size] of `.worktreeinclude` when the files were copied."""
    ready: bool = True
    """False while a pooled tree is being made or recycled."""
    created_at: float = field(default_factory=time.time)


PERSONAL_SETTINGS = ".covey/settings.local.json"


def not_work(meta: Meta | None) -> list[str]:
    """Paths in a worktree that are covey's doing, not the agent's work: linked directories,
    files copied from the main checkout, and the personal `settings.local.json` (whoever wrote
    it). Dirty checks skip them and snapshots never hold them."""
    if meta is None:
        return [PERSONAL_SETTINGS]
    return list(dict.fromkeys([*meta.symlinks, *meta.copied, PERSONAL_SETTINGS]))


def read_meta(worktree: Path) -> Meta | None:
    admin = admin_dir(worktree)
    if admin is None:
        return None
    try:
        data = json.loads((admin / META_FILE).read_text(encoding="utf-8"))
        return Meta(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_meta(worktree: Path, meta: Meta) -> None:
    admin = admin_dir(worktree)
    if admin is None:
        raise FileNotFoundError(f"{worktree} is not a linked git worktree")
    tmp = admin / f"{META_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(meta)), encoding="utf-8")
    os.replace(tmp, admin / META_FILE)


@contextlib.contextmanager
def file_lock(root: Path, name: str, *, wait: bool = True) -> Iterator[bool]:
    """Hold `<common>/covey/NAME.lock`; yields False at once when `wait` is False and another
    process (or thread) holds it."""
    path = common_dir(root) / "covey" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
