"""What a new worktree gets from the main checkout besides the commit it starts from.

- `.worktreeinclude` (gitignore syntax, read with `pathspec`, so `**/`, `!negation` and
  `/anchors` behave as in git): files that match it *and* are gitignored are copied in.
  Untracked files that are not ignored are not: they are the user's work in progress.
- The project's `.covey/` config (settings, agents; never `worktrees/`): files missing in the
  worktree are copied, so settings.local.json and uncommitted agents apply there too. They are
  listed in the worktree's own `.covey/.gitignore` (`IGNORE_FILE`, which covey writes and which
  ignores itself; a `.covey/.gitignore` of the project's is left alone), so that git — covey's
  dirty checks and snapshots, and the agent's own `git add -A` — never takes them for work:
  a personal key in settings.local.json never lands in a commit or a snapshot.
- `worktree.symlinkDirectories`: directories linked to the main checkout's copy (node_modules).

Candidates come from one `git ls-files --others --ignored` walk, which skips the symlinked
directories and `.covey/`, so a big repository costs one git process, not a Python walk.
Symlinks are copied as symlinks.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from covey.config import WorktreeSettings
from covey.git.repo import git

if TYPE_CHECKING:
    import pathspec

__all__ = [
    "IGNORE_FILE",
    "INCLUDE_FILE",
    "Populated",
    "include_stamp",
    "matching_ignored_files",
    "populate",
    "resync",
]

INCLUDE_FILE = ".worktreeinclude"
IGNORE_FILE = ".covey/.gitignore"
_IGNORE_HEADER = "# covey: files copied from the main checkout; not work of this worktree\n"


@dataclass
class Populated:
    symlinks: list[str] = field(default_factory=list)
    copied: dict[str, list[int]] = field(default_factory=dict)
    include_stamp: list[int] | None = None


def include_stamp(root: Path) -> list[int] | None:
    """[mtime_ns, size] of `.worktreeinclude`, or None when there is none."""
    try:
        st = (root / INCLUDE_FILE).stat()
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


def _spec(root: Path) -> pathspec.GitIgnoreSpec | None:
    try:
        lines = (root / INCLUDE_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    import pathspec  # here: dispatching a session imports this module but copies nothing

    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    return spec if len(spec.patterns) else None


def matching_ignored_files(root: Path, skip: list[str]) -> list[str]:
    """Gitignored, untracked files of the main checkout that `.worktreeinclude` matches.

    `skip` names directories (relative to `root`) not to look into.
    """
    spec = _spec(root)
    if spec is None:
        return []
    excludes = [f":(exclude,literal){d}" for d in (".covey", *skip)]
    out = git(
        "ls-files",
        "-z",
        "--others",
        "--ignored",
        "--exclude-standard",
        "--",
        ".",
        *excludes,
        cwd=root,
    )
    files = [p for p in out.split("\0") if p and not p.endswith("/")]
    return [p for p in files if spec.match_file(p)]


def _config_files(root: Path) -> list[str]:
    base = root / ".covey"
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(base):
        here = Path(dirpath)
        if here == base:
            dirnames[:] = [d for d in dirnames if d != "worktrees"]
        found += [(here / f).relative_to(root).as_posix() for f in filenames]
    return found


def _stamp(path: Path) -> list[int] | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


def _copy(root: Path, worktree: Path, rel: str, *, overwrite: bool) -> list[int] | None:
    src, dst = root / rel, worktree / rel
    stamp = _stamp(src)
    if stamp is None or (os.path.lexists(dst) and not overwrite):
        return None
    dst.parent.mkdir(parents=True, exist_ok=True)
    if overwrite and os.path.lexists(dst):
        dst.unlink()
    shutil.copy2(src, dst, follow_symlinks=False)
    return stamp


def _link_directories(root: Path, worktree: Path, dirs: list[str]) -> list[str]:
    linked: list[str] = []
    for rel in dirs:
        src, dst = root / rel, worktree / rel
        if not src.is_dir() or os.path.lexists(dst):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(src, dst, target_is_directory=True)
        linked.append(rel)
    return linked


def populate(root: Path, worktree: Path, settings: WorktreeSettings) -> Populated:
    """Link, then copy, what the worktree needs from the main checkout; files the worktree
    already has (tracked ones) are never overwritten."""
    done = Populated(include_stamp=include_stamp(root))
    done.symlinks = _link_directories(root, worktree, settings.symlinkDirectories)
    wanted = _config_files(root) + matching_ignored_files(root, settings.symlinkDirectories)
    for rel in wanted:
        stamp = _copy(root, worktree, rel, overwrite=False)
        if stamp is not None:
            done.copied[rel] = stamp
    _ignore_copies(worktree, done.copied)
    return done


def _ignore_copies(worktree: Path, copied: Iterable[str]) -> None:
    """Add the copied files under `.covey/` to the worktree's `IGNORE_FILE` (see module)."""
    names = [rel.removeprefix(".covey/") for rel in copied if rel.startswith(".covey/")]
    if not names:
        return
    path = worktree / IGNORE_FILE
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = _IGNORE_HEADER
    except (OSError, UnicodeDecodeError):
        return
    if not old.startswith(_IGNORE_HEADER) or path.is_symlink():
        return  # the project's own
    lines = dict.fromkeys([*old.splitlines()[1:], "/.gitignore", *map(_pattern, names)])
    path.write_text(_IGNORE_HEADER + "".join(f"{line}\n" for line in lines), encoding="utf-8")


def _pattern(name: str) -> str:
    """A gitignore line matching exactly the file `name` (relative to the ignore file)."""
    escaped = re.sub(r"([\\*?\[])", r"\\\1", name)
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return "/" + escaped


def resync(root: Path, worktree: Path, copied: dict[str, list[int]]) -> dict[str, list[int]]:
    """Copy again the files whose source changed since they were copied (a pooled tree made a
    while ago); return the updated stamps. Only for trees nobody has worked in yet."""
    updated = dict(copied)
    for rel, stamp in copied.items():
        now = _stamp(root / rel)
        if now is not None and now != stamp:
            new = _copy(root, worktree, rel, overwrite=True)
            if new is not None:
                updated[rel] = new
    return updated
