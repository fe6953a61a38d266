"""A child that started but could not be watched (its pidfd refused: no file descriptor
left) is killed with its group and reaped, and the caller gets ProcessStartError: nothing
it started runs on unsupervised."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import time
from pathlib import Path

import pytest

from covey import _spawn_off_loop
from covey.proc import ProcessStartError, run_process

TOKEN = f"30.{os.getpid()}4217"
"""A `sleep` argument no other process has (this pytest's pid in it: a test run beside this
one, on the same machine, has its own)."""


def _left() -> list[int]:
    """The pids whose command line holds TOKEN."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if TOKEN.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not _spawn_off_loop.available(), reason="no pidfd_open here")
def test_a_child_whose_pidfd_is_refused_is_killed_and_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(pid: int, flags: int = 0) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "pidfd_open", refuse)
    command = ["bash", "-c", f"sleep {TOKEN}; sleep {TOKEN}"]
    try:
        with pytest.raises(ProcessStartError):
            asyncio.run(run_process(command, cwd=tmp_path, timeout_s=60))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert _left() == []
            time.sleep(0.1)
    finally:
        for pid in _left():
            os.kill(pid, signal.SIGKILL)
