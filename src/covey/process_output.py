"""A child's output, captured while it arrives and capped: the head and the tail of each
stream are kept, the middle is replaced by a note saying how much was elided.

    capture = Capture(limit); capture.feed(chunk); capture.text()
    elide(data, limit)            # the same for data already whole
    collector_class()(out, err, merged)   # the asyncio protocol feeding two captures
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["Capture", "collector_class", "elide"]


def elide(data: bytes | str, limit: int | None) -> str:
    """`data` as text, or its head and tail around a note when it has over `limit` bytes."""
    capture = Capture(limit)
    capture.feed(data.encode() if isinstance(data, str) else data)
    return capture.text()


class Capture:
    """Keeps the first and last `limit // 2` bytes of a stream and counts the rest."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.limit is None:
            self.head += chunk
            return
        room = self.limit - self.limit // 2 - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            excess = len(self.tail) - self.limit // 2
            if excess > 0:
                del self.tail[:excess]

    def text(self) -> str:
        elided = self.total - len(self.head) - len(self.tail)
        if elided <= 0:
            return (self.head + self.tail).decode(errors="replace")
        head, tail = self.head.decode(errors="replace"), self.tail.decode(errors="replace")
        return f"{head}\n... [{elided:,} bytes elided] ...\n{tail}"


@functools.cache
def collector_class() -> Any:
    """The asyncio protocol feeding the captures, made on first use: `asyncio` is imported only
    by what runs a process asynchronously (a dispatch or a listing runs git, blocking)."""
    import asyncio

    class _Collector(asyncio.SubprocessProtocol):
        """Feeds pipe data into the captures as it arrives; signals exit and end of output."""

        def __init__(self, out: Capture, err: Capture, merged: bool) -> None:
            loop = asyncio.get_running_loop()
            self.exited: asyncio.Future[None] = loop.create_future()
            self.drained: asyncio.Future[None] = loop.create_future()
            self._captures = {1: out, 2: err}
            self._open = {1} if merged else {1, 2}

        def pipe_data_received(self, fd: int, data: bytes) -> None:
            self._captures[fd].feed(data)

        def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
            self._open.discard(fd)
            if not self._open and not self.drained.done():
                self.drained.set_result(None)

        def process_exited(self) -> None:
            if not self.exited.done():
                self.exited.set_result(None)

    return _Collector
