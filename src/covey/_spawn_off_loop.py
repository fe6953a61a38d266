"""Starting a child process without holding up the event loop (`covey.proc.run_process`).

asyncio's `subprocess_exec` calls `subprocess.Popen` on the loop, and Popen returns only once
the child has exec'd (CPython vforks: the calling thread is suspended until then). On a busy
machine that is milliseconds of a stopped loop per command, and a supervisor whose hundred
sessions each run a Bash command at the same moment serialized them all (py-spy: a fifth of
its loop's time). Here Popen runs on a thread of its own, the pipes are read by the loop
(`connect_read_pipe`) and the exit is seen through a pidfd on the loop's selector, so the
loop goes on while the kernel starts the child.

`available()` is False without `os.pidfd_open` (not Linux, or a sandbox's seccomp refuses
it): callers then keep asyncio's own spawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["ChildTransport", "available", "spawn"]

_SPAWN_THREADS = 4
"""Threads that start children (each is busy only until its child has exec'd)."""


@functools.cache
def available() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


@functools.cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_SPAWN_THREADS, thread_name_prefix="covey-spawn")


async def spawn(
    argv: list[str], options: dict[str, Any], collector: Any, stdin: bool
) -> ChildTransport:
    """Start `argv` with Popen `options` on a spawn thread; its output goes to `collector`
    (an `asyncio.SubprocessProtocol`: `pipe_data_received`, `pipe_connection_lost`,
    `process_exited`). Raises OSError when it cannot start."""
    loop = asyncio.get_running_loop()
    popen = await loop.run_in_executor(_executor(), _popen, argv, options)
    child: ChildTransport | None = None
    try:
        child = ChildTransport(loop, popen, collector)
        await child.connect(stdin)
    except BaseException:
        _abandon(popen, child)
        raise
    return child


def _abandon(popen: subprocess.Popen[bytes], child: ChildTransport | None) -> None:
    """A child started but not watched (its pidfd or a pipe could not be set up, e.g. no file
    descriptor left): its group killed and reaped, its pipes and pidfd closed, so nothing it
    started runs on unsupervised."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)  # its own group: `start_new_session`
    if child is not None:
        child.close()
        child._forget_pidfd()
    popen.wait()
    for pipe in (popen.stdin, popen.stdout, popen.stderr):
        if pipe is not None:
            pipe.close()


def _popen(argv: list[str], options: dict[str, Any]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, **options)


class _PipeReader(asyncio.Protocol):
    def __init__(self, collector: Any, fd: int) -> None:
        self.collector, self.fd = collector, fd

    def data_received(self, data: bytes) -> None:
        self.collector.pipe_data_received(self.fd, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.collector.pipe_connection_lost(self.fd, exc)


class ChildTransport:
    """What `run_process` uses of an `asyncio.SubprocessTransport`, for a child started by
    `spawn`: its pid, its stdin pipe, its exit code, `close`."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, popen: subprocess.Popen[bytes], collector: Any
    ) -> None:
        self._loop = loop
        self._popen = popen
        self._collector = collector
        self._pipes: dict[int, asyncio.BaseTransport] = {}
        self._pidfd: int | None = os.pidfd_open(popen.pid)
        loop.add_reader(self._pidfd, self._reap)

    async def connect(self, stdin: bool) -> None:
        popen = self._popen
        for fd, pipe in ((1, popen.stdout), (2, popen.stderr)):
            if pipe is not None:
                transport, _ = await self._loop.connect_read_pipe(
                    functools.partial(_PipeReader, self._collector, fd), pipe
                )
                self._pipes[fd] = transport
        if stdin and popen.stdin is not None:
            writer, _ = await self._loop.connect_write_pipe(asyncio.Protocol, popen.stdin)
            self._pipes[0] = writer

    def _reap(self) -> None:
        try:
            pid, status = os.waitpid(self._popen.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: its status is lost
            pid, status = self._popen.pid, 255 << 8
        if pid == 0:
            return
        self._popen.returncode = os.waitstatus_to_exitcode(status)
        self._forget_pidfd()
        self._collector.process_exited()

    def _forget_pidfd(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    def get_pid(self) -> int:
        return self._popen.pid

    def get_returncode(self) -> int | None:
        return self._popen.returncode

    def get_pipe_transport(self, fd: int) -> asyncio.BaseTransport | None:
        return self._pipes.get(fd)

    def close(self) -> None:
        """Close the pipes; a child still running is killed (and reaped once it is gone)."""
        for transport in self._pipes.values():
            transport.close()
        if self._popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._popen.pid, signal.SIGKILL)
