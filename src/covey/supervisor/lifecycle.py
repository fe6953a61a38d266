"""The supervisor process: its lock and pid file, the serve loop, and leaving when idle.

It holds `supervisor.lock` (flock) for its whole life and writes `supervisor.pid`. After
`background.idleExitMinutes` (user settings, `$COVEY_HOME/settings.json`; 0 = never) with
nothing to host, it gives the lock and pid file back *first* and only then looks at the store
once more: work queued before that look is seen (it takes the lock again and goes on serving,
unless a new supervisor took it meanwhile), and work queued after it finds no supervisor, so
the command that queued it (`covey --bg`, `reply`, `respawn`, the agent view) starts one. So
nothing queued is ever left without a supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from covey.config import user_settings
from covey.home import private_file
from covey.proc import watch_children_with_pidfds
from covey.store import Store
from covey.store.commands import pending_commands
from covey.store.sessions import list_sessions
from covey.supervisor import pid_path, try_lock

__all__ = ["main"]

log = logging.getLogger("covey.supervisor")


def _take_lock() -> int | None:
    """The locked file descriptor (pid file written), or None when another supervisor
    holds the lock."""
    fd = try_lock()
    if fd is not None:
        private_file(pid_path())  # 0600
        pid_path().write_text(f"{os.getpid()}\n")  # replaces a stale one
    return fd


def _give_back(fd: int) -> None:
    with contextlib.suppress(OSError, ValueError):
        if int(pid_path().read_text().strip()) == os.getpid():
            pid_path().unlink()
    os.close(fd)  # drops the flock


def _idle_exit_s() -> float:
    try:
        return max(0.0, user_settings().background.idleExitMinutes * 60)
    except Exception:  # a broken user settings file: `covey` commands report it; stay up
        log.exception("cannot read the user settings; not leaving when idle")
        return 0.0


def _work_waiting(store: Store) -> bool:
    with store.read() as conn:
        queued = list_sessions(conn, kinds=["background"], states=["queued"])
        commands = pending_commands(conn, types=["reply", "respawn", "refill_pool"])
    return bool(queued or commands)


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    fd = _take_lock()
    if fd is None:
        return  # another supervisor runs: nothing to do
    log.info("supervisor %d started", os.getpid())
    store = Store.open()
    store.checkpoint_in_background()  # not inside the event loop's commits
    watch_children_with_pidfds()
    try:
        # the session host loads after the lock and the store: `covey --bg` waits for the
        # lock and the pid file, not for the agent stack to import
        from covey.supervisor.daemon import Supervisor

        while True:
            supervisor = Supervisor(store, idle_exit_s=_idle_exit_s())
            asyncio.run(supervisor.serve())
            if not supervisor.went_idle:
                break
            log.info("nothing to host for %.0f s: leaving", supervisor.idle_exit_s)
            _give_back(fd)
            fd = _take_lock() if _work_waiting(store) else None
            if fd is None:
                break
            log.info("work arrived while leaving: serving on")
    finally:
        store.close()
        if fd is not None:
            _give_back(fd)
        log.info("supervisor %d exited", os.getpid())
