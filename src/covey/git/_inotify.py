"""A minimal binding of Linux inotify(7): three calls through ctypes and an event parser.

Only what the fsmonitor watcher needs; no third-party package, since the kernel interface is
three system calls and a fixed struct (`struct inotify_event`: wd, mask, cookie, len, name).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "IN_ATTRIB",
    "IN_CLOSE_WRITE",
    "IN_CREATE",
    "IN_DELETE",
    "IN_DELETE_SELF",
    "IN_DONT_FOLLOW",
    "IN_EXCL_UNLINK",
    "IN_IGNORED",
    "IN_ISDIR",
    "IN_MODIFY",
    "IN_MOVED_FROM",
    "IN_MOVED_TO",
    "IN_MOVE_SELF",
    "IN_ONLYDIR",
    "IN_Q_OVERFLOW",
    "Event",
    "Inotify",
]

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_HEADER = struct.Struct("iIII")


@dataclass(frozen=True)
class Event:
    wd: int
    """The watch descriptor (-1 with IN_Q_OVERFLOW)."""
    mask: int
    name: bytes
    """The entry's name inside the watched directory; b"" for events on the directory itself."""


class Inotify:
    """One inotify instance (a non-blocking file descriptor) and its watches."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd: int = self._check(self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC), b"")

    def _check(self, result: int, path: bytes) -> int:
        if result < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno), os.fsdecode(path))
        return result

    def add_watch(self, path: bytes, mask: int) -> int:
        """Watch `path`; the watch descriptor (the same one again for an already watched
        inode). Raises OSError (ENOSPC when the user's watch limit is reached)."""
        return self._check(self._libc.inotify_add_watch(self.fd, path, mask), path)

    def rm_watch(self, wd: int) -> None:
        """Stop a watch; a watch the kernel already dropped is ignored."""
        self._libc.inotify_rm_watch(self.fd, wd)

    def read(self) -> Iterator[Event]:
        """The events queued now (none when the queue is empty; never blocks)."""
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, size = _HEADER.unpack_from(data, offset)
                offset += _HEADER.size
                name = data[offset : offset + size].rstrip(b"\0")
                offset += size
                yield Event(wd, mask, name)

    def close(self) -> None:
        os.close(self.fd)
