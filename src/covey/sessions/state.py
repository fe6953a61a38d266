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

from typing import Any

from covey.errors import RunError
from covey.store import Store
from covey.store.events import append_event
from covey.store.sessions import SessionState, update_session

__all__ = ["LIVE_STATES", "STATES", "TERMINAL_STATES", "LeaseLost", "set_state"]

LIVE_STATES = ("queued", "working", "needs_input", "idle")
TERMINAL_STATES = ("completed", "failed", "stopped")
STATES = (*LIVE_STATES, *TERMINAL_STATES, "interrupted")


class LeaseLost(RunError):
    """Another host took this session over; this one must stop writing and let go."""

    reason = "lease_lost"


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
        if not update_session(conn, session_id, epoch, state=state, reason=reason, **fields):
            raise LeaseLost(f"session {session_id} is now held by another host (epoch > {epoch})")
        append_event(conn, session_id, "state", {"state": state, "reason": reason})
