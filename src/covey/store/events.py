"""The `events` table: an append-only log of what happened, for UIs to follow.

Ids only grow (AUTOINCREMENT) and, since SQLite serialises writers, a reader that remembers the
last id it saw and asks for `after_id` never misses a committed event.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from covey.store._json import dump_json, load_json_object

__all__ = ["EventRow", "append_event", "last_event_id", "read_events"]


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    session_id: str | None
    ts: float
    type: str
    data: dict[str, Any]


def append_event(
    conn: sqlite3.Connection,
    session_id: str | None,
    type: str,
    data: dict[str, Any],
    *,
    now: float | None = None,
) -> int:
    """Add an event; returns its id."""
    cursor = conn.execute(
        "INSERT INTO events (session_id, ts, type, data) VALUES (?, ?, ?, ?)",
        (session_id, time.time() if now is None else now, type, dump_json(data)),
    )
    return int(cursor.lastrowid or 0)


def read_events(
    conn: sqlite3.Connection,
    *,
    after_id: int = 0,
    session_id: str | None = None,
    limit: int | None = None,
) -> list[EventRow]:
    """Events with id > `after_id` (of one session, or all), oldest first."""
    sql = "SELECT id, session_id, ts, type, data FROM events WHERE id > ?"
    args: list[Any] = [after_id]
    if session_id is not None:
        sql += " AND session_id = ?"
        args.append(session_id)
    sql += " ORDER BY id"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return [
        EventRow(id, sid, ts, type_, load_json_object(data))
        for id, sid, ts, type_, data in conn.execute(sql, args)
    ]


def last_event_id(conn: sqlite3.Connection) -> int:
    """The id of the newest event, 0 when there is none (where a follower starts)."""
    row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
    return int(row[0])
