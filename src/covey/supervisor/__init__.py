"""The supervisor: one daemon per user (per `$COVEY_HOME`) that hosts background sessions.

`ensure_supervisor()` starts it on demand. Only one ever runs: it holds an exclusive `flock`
on `$COVEY_HOME/supervisor.lock` for its whole life (the kernel drops the lock when it dies,
however it dies) and writes its pid to `$COVEY_HOME/supervisor.pid`; a second one finds the lock
taken and exits 0 quietly. Its output goes to `$COVEY_HOME/logs/supervisor.log`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import time
from pathlib import Path

from covey import proc
from covey.home import covey_home, private_home

__all__ = [
    "ensure_supervisor",
    "lock_path",
    "log_path",
    "pid_path",
    "stop_supervisor",
    "supervisor_pid",
    "try_lock",
]

START_WAIT_S = 15.0


def pid_path() -> Path:
    return covey_home() / "supervisor.pid"


def lock_path() -> Path:
    return covey_home() / "supervisor.lock"


def log_path() -> Path:
    return covey_home() / "logs" / "supervisor.log"


def try_lock() -> int | None:
    """Take the supervisor lock: the descriptor holding it (closing it lets go), or None
    when another process holds it."""
    private_home()  # 0700, and the files covey keeps there 0600
    fd = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _lock_held() -> bool:
    """True while some process holds the supervisor lock (that is, a supervisor runs)."""
    fd = try_lock()
    if fd is None:
        return True
    os.close(fd)  # closing drops the lock we got
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def supervisor_pid() -> int | None:
    """The running supervisor's pid, or None when none runs (a stale pid file is ignored)."""
    if not _lock_held():
        return None
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_path().read_text().strip())
        if _pid_alive(pid):
            return pid
    return None


def ensure_supervisor() -> int:
    """Start the supervisor unless one runs; its pid (after it has written its pid file)."""
    deadline = time.monotonic() + START_WAIT_S
    if not _lock_held():
        proc.spawn_detached(
            [sys.executable, "-m", "covey.supervisor"],
            cwd=covey_home(),
            env={"COVEY_HOME": str(covey_home())},
            log_path=log_path(),
        )
    while time.monotonic() < deadline:
        pid = supervisor_pid()
        if pid is not None:
            return pid
        time.sleep(0.05)
    raise proc.ProcessStartError(f"the supervisor did not start: see {log_path()}")


def stop_supervisor(timeout_s: float = 60.0) -> int | None:
    """SIGTERM the supervisor and wait until it has exited; its pid, or None if none ran."""
    pid = supervisor_pid()
    if pid is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pid
