"""Session states, and the one function that changes them.

    queued ─▶ working ⇄ needs_input      (a question, a permission to grant)
                 │  ╲
                 │   ▶ idle              (turn ended, waiting for the next prompt)
                 ▼
          completed | failed | stopped
    interrupted: the host died while the session was live; it resumes from its last step

Every change writes the session row and a `state` event in one transaction, fenced by the
writer's lease epoch: a host that lost its lease changes nothing and learns it (`LeaseLost`).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from covey.errors import LeaseLost
from covey.sessions.lease import LEASE_TTL_S, new_host_id
from covey.store import Store
from covey.store.events import append_event
from covey.store.sessions import SessionState, acquire_lease, release_lease, update_session

__all__ = [
    "LIVE_STATES",
    "STATES",
    "TERMINAL_STATES",
    "replay_state",
    "set_state",
    "take_over_state",
    "write_state",
]

LIVE_STATES = ("queued", "working", "needs_input", "idle")
TERMINAL_STATES = ("completed", "failed", "stopped")
STATES = (*LIVE_STATES, *TERMINAL_STATES, "interrupted")


def set_state(
    store: Store,
    session_id: str,
    epoch: int,
    state: SessionState,
    reason: str | None = None,
    **fields: Any,
) -> None:
    if state not in STATES:
        raise ValueError(f"unknown session state {state!r}")
    with store.write() as conn:
        if not _write(conn, session_id, epoch, state, reason, fields):
            raise LeaseLost(f"session {session_id} is now held by another host (epoch > {epoch})")


def write_state(
    conn: sqlite3.Connection,
    session_id: str,
    epoch: int,
    state: SessionState,
    reason: str | None = None,
    **fields: Any,
) -> bool:
    """`set_state` inside the caller's write transaction, with writes that must commit with
    it (a node's answered question: `covey.executors.replica_ask`). False: a stale epoch,
    nothing written."""
    if state not in STATES:
        raise ValueError(f"unknown session state {state!r}")
    return _write(conn, session_id, epoch, state, reason, fields)


def take_over_state(
    conn: sqlite3.Connection,
    session_id: str,
    state: SessionState,
    reason: str | None,
    *,
    force: bool = False,
    **fields: Any,
) -> bool:
    """Change the state of a session no live host runs, inside the caller's write
    transaction: take its lease (a new epoch, so a host that wakes up later writes nothing),
    write, let go. `force` takes it even from a holder whose lease has not expired. False
    (nothing written) when the lease could not be taken."""
    if state not in STATES:
        raise ValueError(f"unknown session state {state!r}")
    host = new_host_id()
    epoch = acquire_lease(conn, session_id, host, LEASE_TTL_S, time.time(), force=force)
    if epoch is None:
        return False
    _write(conn, session_id, epoch, state, reason, fields)
    release_lease(conn, session_id, host, epoch)
    return True


def replay_state(
    conn: sqlite3.Connection,
    session_id: str,
    epoch: int,
    state: SessionState,
    reason: str | None,
    **fields: Any,
) -> bool:
    """Write a state change another store made already (a node's, `covey.executors.replica`)
    inside the caller's write transaction, fenced by `epoch`: the row only, since its `state`
    event is replayed from the same journal in the same transaction. False: stale epoch."""
    if state not in STATES:
        raise ValueError(f"unknown session state {state!r}")
    return update_session(conn, session_id, epoch, state=state, reason=reason, **fields)


def _write(
    conn: sqlite3.Connection,
    session_id: str,
    epoch: int,
    state: SessionState,
    reason: str | None,
    fields: dict[str, Any],
) -> bool:
    if not update_session(conn, session_id, epoch, state=state, reason=reason, **fields):
        return False
    append_event(conn, session_id, "state", {"state": state, "reason": reason})
    return True
