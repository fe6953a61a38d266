"""Opening a checked path without a race: Read, Write and Edit run outside any sandbox, while a
(sandboxed) Bash may swap a folder for a symlink at any moment.

`resolve_in_workspace` gives a real path, free of symlinks when it was resolved. These
functions walk it from its root (the workspace or an added dir) one component at a time with
directory file descriptors: every folder is opened with `O_NOFOLLOW|O_DIRECTORY` relative to
the previous one, and the file itself with `O_NOFOLLOW` (Write: `O_CREAT|O_EXCL` first). A
symlink that appeared since the check is never followed: the call fails and changes nothing
outside. Only regular files are opened (`O_NONBLOCK`, then `fstat`), so a FIFO, socket or
device is refused instead of hanging the run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from covey.errors import ToolError
from covey.tools.base import ToolContext
from covey.tools.paths import allowed_roots

__all__ = ["create_or_truncate", "open_regular"]

_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def open_regular(ctx: ToolContext, real: Path, path: str, *, write: bool = False) -> int:
    """A descriptor of the existing regular file `real` (read, or read-write with `write`)."""
    parent, name = _parent(ctx, real, path, create=False)
    try:
        fd = os.open(name, (os.O_RDWR if write else os.O_RDONLY) | _FILE_FLAGS, dir_fd=parent)
    except OSError as e:
        raise _error(e, path, parent, name) from None
    finally:
        os.close(parent)
    return _regular(fd, path)


def create_or_truncate(ctx: ToolContext, real: Path, path: str) -> tuple[int, bool]:
    """A descriptor to write `real` from the start, creating it and its missing parent
    folders; and whether it existed."""
    parent, name = _parent(ctx, real, path, create=True)
    try:
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _FILE_FLAGS
            return os.open(name, flags, 0o666, dir_fd=parent), False
        except FileExistsError:
            fd = _regular(os.open(name, os.O_WRONLY | _FILE_FLAGS, dir_fd=parent), path)
            os.ftruncate(fd, 0)
            return fd, True
    except OSError as e:
        raise _error(e, path, parent, name) from None
    finally:
        os.close(parent)


def _parent(ctx: ToolContext, real: Path, path: str, *, create: bool) -> tuple[int, str]:
    """An open descriptor of the folder holding `real`, reached without following links,
    and the file's name in it."""
    root = max(
        (r for r in allowed_roots(ctx) if real == r or real.is_relative_to(r)),
        key=lambda r: len(r.parts),
        default=None,
    )
    if root is None or real == root:
        raise ToolError(f"{path} is a directory, not a file")
    *folders, name = real.relative_to(root).parts
    fd = os.open(root, _DIR_FLAGS)
    try:
        for folder in folders:
            fd = _enter(fd, folder, path, create)
    except BaseException:
        os.close(fd)
        raise
    return fd, name


def _enter(fd: int, folder: str, path: str, create: bool) -> int:
    """The descriptor of `folder` inside `fd` (which is closed), made first with `create`."""
    try:
        try:
            child = os.open(folder, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
            with contextlib.suppress(FileExistsError):  # made meanwhile: opened like any
                os.mkdir(folder, 0o777, dir_fd=fd)
            child = os.open(folder, _DIR_FLAGS, dir_fd=fd)
    except OSError as e:
        raise _error(e, path, fd, folder) from None
    os.close(fd)
    return child


def _regular(fd: int, path: str) -> int:
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        return fd
    os.close(fd)
    if stat.S_ISDIR(mode):
        raise ToolError(f"{path} is a directory, not a file; use Glob or Bash ls to list it")
    raise ToolError(f"{path} is not a regular file ({_kind(mode)}); only regular files are used")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _error(e: OSError, path: str, dir_fd: int, name: str) -> ToolError:
    if e.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(dir_fd, name):
        return ToolError(
            f"{path}: {name} became a symbolic link after the path was checked; "
            "it is not followed (try again)"
        )
    if e.errno == errno.ENOENT:
        return ToolError(f"{path} does not exist")
    if e.errno == errno.EISDIR:
        return ToolError(f"{path} is a directory, not a file; use Glob or Bash ls to list it")
    if e.errno == errno.ENXIO:  # a socket, or a FIFO with no reader
        try:
            kind = _kind(os.lstat(name, dir_fd=dir_fd).st_mode)
        except OSError:
            kind = "a special file"
        return ToolError(f"{path} is not a regular file ({kind}); only regular files are used")
    return ToolError(f"cannot open {path}: {e.strerror or e}")


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False
