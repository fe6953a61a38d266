"""Holding a session: a lease with an epoch, renewed by a heartbeat while the host runs it.

A lease whose holder is a dead process on this machine is taken over at once (no need to wait
for it to expire): that is how `--resume` works right after a crash.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator

from covey.errors import LeaseLost, UserError
from covey.store import Store
from covey.store.sessions import acquire_lease, get_session, release_lease, renew_lease

__all__ = [
    "LEASE_TTL_S",
    "SUPERVISOR_ROLE",
    "HostLease",
    "holder_alive",
    "is_supervisor",
    "local_pid",
    "new_host_id",
]

LEASE_TTL_S = 30.0


SUPERVISOR_ROLE = "supervisor"


def new_host_id(role: str | None = None) -> str:
    """`hostname:pid:nonce[:role]`: which machine and process holds a lease; the supervisor
    marks its own (`is_supervisor`), since whoever holds the supervisor lock knows every
    other supervisor is gone."""
    host = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    return f"{host}:{role}" if role else host


def is_supervisor(host_id: str | None) -> bool:
    return bool(host_id) and str(host_id).endswith(f":{SUPERVISOR_ROLE}")


def local_pid(host_id: str) -> int | None:
    """The pid of a holder that is a process of this machine, else None."""
    host, _, rest = host_id.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    return int(pid_text)


def holder_alive(host_id: str | None) -> bool:
    """False when the holder is provably dead: a process of this machine that is gone.
    Holders on other machines are presumed alive (their lease expires instead)."""
    if not host_id:
        return False
    if host_id.startswith(_own_prefix(os.getpid())):
        return True  # this very process (the rate limiter asks for every queued request)
    pid = local_pid(host_id)
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


@functools.cache
def _own_prefix(pid: int) -> str:
    """What the ids `new_host_id` makes in process `pid` start with."""
    return f"{socket.gethostname()}:{pid}:"


def _zombie(pid: int) -> bool:
    """A process that has exited but was not reaped yet (its parent, or an init that reaps
    slowly, has not waited for it): dead, though `kill(pid, 0)` still finds it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False  # no /proc here: trust kill()
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state in (b"Z", b"X")


class HostLease:
    def __init__(self, store: Store, session_id: str, host_id: str | None = None):
        self.store = store
        self.session_id = session_id
        self.host_id = host_id or new_host_id()
        self.epoch = -1

    def acquire(self) -> int:
        """Take the session, or raise `UserError` naming the live host that has it."""
        with self.store.write() as conn:
            row = get_session(conn, self.session_id)
            if row is None:
                raise UserError(f"no session {self.session_id!r}: see covey sessions")
            force = not holder_alive(row.host_id)
            epoch = acquire_lease(
                conn, self.session_id, self.host_id, LEASE_TTL_S, time.time(), force=force
            )
        if epoch is None:
            raise UserError(
                f"session {self.session_id} is being run by another process ({row.host_id}); "
                "wait for it to finish or stop it first"
            )
        self.epoch = epoch
        return epoch

    def adopt(self, epoch: int) -> int:
        """Hold the lease the caller took already under this host id, at `epoch`."""
        self.epoch = epoch
        return epoch

    def release(self) -> None:
        with self.store.write() as conn:
            release_lease(conn, self.session_id, self.host_id, self.epoch)

    def renew(self) -> None:
        with self.store.write() as conn:
            ok = renew_lease(
                conn, self.session_id, self.host_id, self.epoch, LEASE_TTL_S, time.time()
            )
        if not ok:
            raise LeaseLost(f"lost the lease on session {self.session_id}")

    @contextlib.asynccontextmanager
    async def heartbeat(self) -> AsyncIterator[None]:
        """Renew the lease every third of its lifetime while the body runs."""
        import asyncio  # here: listing sessions reads leases and needs no event loop

        async def beat() -> None:
            while True:
                await asyncio.sleep(LEASE_TTL_S / 3)
                await asyncio.to_thread(self.renew)

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
