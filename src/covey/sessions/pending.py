"""A session's pending question: what a host stores while it waits for its person.

Both hosts (the supervisor for background sessions, the session screen for a foreground one)
ask the same way: the question or the tool call waiting for permission goes into
`meta.pending` in the same transaction that sets `needs_input`, and is cleared in the one
that sets `working` again. Readers (`covey agents`, the agent view) see it as `Pending`.
"""

from __future__ import annotations

from covey.sessions.state import set_state
from covey.store import Store
from covey.store.session_meta import Pending, SessionMeta, call_text, with_meta
from covey.store.sessions import get_session

__all__ = [
    "ALWAYS",
    "YES",
    "Pending",
    "call_text",
    "is_always",
    "is_yes",
    "set_waiting",
    "with_meta",
]

YES = frozenset({"y", "yes", "allow", "ok", "approve", "approved", "go", "sure"})
"""Answers that allow a tool call; anything else denies it."""


ALWAYS = frozenset({"always", "always allow", "allow always", "yes always", "yes, always"})
"""Answers that allow a tool call and the same call (tool and input) for the rest of the
session (a background session's; `covey.supervisor.asking`)."""


def is_yes(text: str) -> bool:
    return text.strip().lower().rstrip(".!") in YES


def is_always(text: str) -> bool:
    return text.strip().lower().rstrip(".!") in ALWAYS


def set_waiting(store: Store, session_id: str, epoch: int, pending: Pending | None) -> None:
    """`needs_input` with `pending` stored, or (None) back to `working` with it cleared."""
    with store.read() as conn:
        row = get_session(conn, session_id)
    meta = with_meta(row.meta if row else SessionMeta(), pending=pending)
    if pending is None:
        set_state(store, session_id, epoch, "working", None, meta=meta)
    else:
        reason = f"{pending.kind}: {pending.text}"[:200]
        set_state(store, session_id, epoch, "needs_input", reason, meta=meta)
