"""Process groups: whether one still has a live process, and ending it.

Every child `covey.proc` starts leads a group of its own (a new session); what it starts
stays in that group. `end_group` (async) and `end_group_sync` give the group SIGTERM, a
short grace, then SIGKILL; `kill_tagged_group` ends what a tool run left when its host died.
Nothing here starts a process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "KILL_GRACE_S",
    "end_group",
    "end_group_sync",
    "group_alive",
    "kill_tagged_group",
    "signal_group",
]

KILL_GRACE_S = 1.0
"""How long a process group gets between SIGTERM and SIGKILL."""


async def end_group(pgid: int, exited: asyncio.Future[None]) -> None:
    """TERM the group, wait up to the grace for it (and the main process) to go, then KILL."""
    import asyncio

    if exited.done() and not group_alive(pgid):
        return
    signal_group(pgid, signal.SIGTERM)
    try:
        deadline = time.monotonic() + KILL_GRACE_S
        while time.monotonic() < deadline:
            if exited.done() and not group_alive(pgid):
                return
            await asyncio.sleep(0.02)
        signal_group(pgid, signal.SIGKILL)
        await exited
    except BaseException:
        signal_group(pgid, signal.SIGKILL)
        raise


def end_group_sync(pgid: int, poll: Callable[[], int | None]) -> None:
    """`end_group`, blocking: `poll` says whether the main process has exited (its exit
    code, or None); the caller waits for it after."""
    if poll() is not None and not group_alive(pgid):
        return
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_S
    while time.monotonic() < deadline:
        if poll() is not None and not group_alive(pgid):
            return
        time.sleep(0.02)
    signal_group(pgid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    """True while a live (not zombie) process is in process group `pgid`."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc"):
        return True
    # killpg also succeeds for zombies, which an init that does not reap may keep around.
    with os.scandir("/proc") as entries:
        pids = [e.name for e in entries if e.name.isdigit()]
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def kill_tagged_group(pgid: int, tag: str) -> int:
    """SIGKILL the processes of group `pgid` whose environment holds `COVEY_TOOL_RUN=tag`
    (what a tool run left when its host died; the tag guards against a reused group id);
    how many were signalled."""
    if not os.path.isdir("/proc"):
        return 0
    marker = f"COVEY_TOOL_RUN={tag}".encode()
    killed = 0
    with os.scandir("/proc") as entries:
        pids = [int(e.name) for e in entries if e.name.isdigit()]
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker not in f.read().split(b"\0"):
                    continue
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except (OSError, IndexError, ValueError):
            continue
    return killed


def signal_group(pgid: int, sig: int) -> None:
    """Send `sig` to group `pgid`, if it is still there and ours to signal."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
