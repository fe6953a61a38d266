"""The `transcript` table: every message and tool result of a session, in order, append-only.

Entries are numbered 1, 2, 3… per session. There is no update or delete: a compaction appends
a `compact_boundary` entry, and a reader that resumes starts from the last boundary.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from covey.store._json import dump_json, load_json_object
from covey.store._tx import require_transaction

__all__ = ["TranscriptEntry", "append_entry", "last_seq", "read_entries"]


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    session_id: str
    seq: int
    kind: str
    """`message`, `tool_result`, `compact_boundary`…"""
    data: dict[str, Any]
    """The entry itself, e.g. `covey.messages.dump_message(message)`."""
    created_at: float


def append_entry(
    conn: sqlite3.Connection,
    session_id: str,
    epoch: int,
    kind: str,
    data: dict[str, Any],
    *,
    now: float | None = None,
) -> int | None:
    """Append an entry, fenced: only while the session's epoch is `epoch`. Returns its seq,
    or None (nothing written) when the epoch is stale or the session does not exist.
    Must run inside `store.write()`."""
    require_transaction(conn, "append_entry")
    current, last = conn.execute(
        "SELECT (SELECT epoch FROM sessions WHERE id = :id),"
        " (SELECT COALESCE(MAX(seq), 0) FROM transcript WHERE session_id = :id)",
        {"id": session_id},
    ).fetchone()
    if current != epoch:
        return None
    seq = int(last) + 1
    conn.execute(
        "INSERT INTO transcript (session_id, seq, kind, data, created_at) VALUES (?, ?, ?, ?, ?)",
        (session_id, seq, kind, dump_json(data), time.time() if now is None else now),
    )
    return seq


def read_entries(
    conn: sqlite3.Connection, session_id: str, after_seq: int = 0
) -> list[TranscriptEntry]:
    """The session's entries with seq > `after_seq`, in order."""
    rows = conn.execute(
        "SELECT seq, kind, data, created_at FROM transcript"
        " WHERE session_id = ? AND seq > ? ORDER BY seq",
        (session_id, after_seq),
    )
    return [
        TranscriptEntry(session_id, seq, kind, load_json_object(data), created_at)
        for seq, kind, data, created_at in rows
    ]


def last_seq(conn: sqlite3.Connection, session_id: str) -> int:
    """The seq of the session's last entry, 0 when it has none."""
    row = conn.execute(
        "SELECT COALESCE(MAX(seq), 0) FROM transcript WHERE session_id = ?", (session_id,)
    ).fetchone()
    return int(row[0])
