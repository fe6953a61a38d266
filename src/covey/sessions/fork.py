"""`--fork-session`: a new session that starts from another one's conversation.

The fork gets a row of its own (a new id, or the caller's `--session-id`) and a copy of the
other session's transcript, so it resumes like any session and the original stays as it was.
"""

from __future__ import annotations

from covey.store import Store
from covey.store.sessions import SessionRow, insert_session, new_session_id
from covey.store.transcript import append_entry, read_entries

__all__ = ["fork_session"]


def fork_session(store: Store, source: SessionRow, session_id: str | None = None) -> SessionRow:
    """Create the fork of `source` (its transcript copied, in one transaction)."""
    with store.write() as conn:
        row = SessionRow.new(
            id=session_id or new_session_id(conn),
            kind=source.kind if source.kind in ("print", "interactive") else "print",
            cwd=source.cwd,
            model=source.model,
            state="idle",
            agent=source.agent,
            permission_mode=source.permission_mode,
            meta=source.meta.model_copy(update={"pending": None}),
        )
        insert_session(conn, row)
        for entry in read_entries(conn, source.id):
            append_entry(conn, row.id, row.epoch, entry.kind, entry.data, now=entry.created_at)
    return row
