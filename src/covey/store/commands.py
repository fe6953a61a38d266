"""The `commands` table: the queue through which clients ask hosts to act (stop, reply,
dispatch, delete…). A command is a committed row, so it survives any crash.

Life of a command: `pending` → `claimed` by one host (atomically: two claimers never get the
same command) → `done` or `failed` with a JSON result the client may wait for.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from covey.store._json import dump_json, load_json, load_json_object
from covey.store._tx import require_transaction

__all__ = [
    "CommandRow",
    "CommandStatus",
    "claim_command",
    "claim_commands",
    "claimers",
    "enqueue_command",
    "finish_command",
    "get_command",
    "pending_commands",
    "requeue_claimed",
]

CommandStatus = Literal["pending", "claimed", "done", "failed"]


@dataclass(frozen=True, slots=True)
class CommandRow:
    id: int
    session_id: str | None
    ts: float
    type: str
    data: dict[str, Any]
    status: CommandStatus
    claimed_by: str | None
    handled_at: float | None
    result: dict[str, Any] | None


_SELECT = (
    "SELECT id, session_id, ts, type, data, status, claimed_by, handled_at, result FROM commands"
)


def _row(r: tuple[Any, ...]) -> CommandRow:
    id, session_id, ts, type_, data, status, claimed_by, handled_at, result = r
    return CommandRow(
        id,
        session_id,
        ts,
        type_,
        load_json_object(data),
        status,
        claimed_by,
        handled_at,
        load_json(result),
    )


def enqueue_command(
    conn: sqlite3.Connection,
    session_id: str | None,
    type: str,
    data: dict[str, Any] | None = None,
    *,
    now: float | None = None,
) -> int:
    """Queue a command for a session (or for whoever handles `type`, with None); its id."""
    cursor = conn.execute(
        "INSERT INTO commands (session_id, ts, type, data) VALUES (?, ?, ?, ?)",
        (session_id, time.time() if now is None else now, type, dump_json(data or {})),
    )
    return int(cursor.lastrowid or 0)


def _pending_query(
    session_id: str | None, types: Collection[str] | None, limit: int | None
) -> tuple[str, list[Any]]:
    sql = f"{_SELECT} WHERE status = 'pending'"
    args: list[Any] = []
    if session_id is not None:
        sql += " AND session_id = ?"
        args.append(session_id)
    if types is not None:
        sql += f" AND type IN ({', '.join('?' * len(types))})"
        args.extend(types)
    sql += " ORDER BY id"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return sql, args


def pending_commands(
    conn: sqlite3.Connection,
    *,
    session_id: str | None = None,
    types: Collection[str] | None = None,
    limit: int | None = None,
) -> list[CommandRow]:
    """Pending commands (of one session, or all; of some types, or all), oldest first."""
    sql, args = _pending_query(session_id, types, limit)
    return [_row(r) for r in conn.execute(sql, args)]


def claim_commands(
    conn: sqlite3.Connection,
    *,
    claimer: str,
    session_id: str | None = None,
    types: Collection[str] | None = None,
    limit: int | None = None,
) -> list[CommandRow]:
    """Mark matching pending commands claimed by `claimer` and return them, oldest first.
    Atomic under `store.write()` (required): a command is claimed by one claimer only."""
    require_transaction(conn, "claim_commands")
    rows = pending_commands(conn, session_id=session_id, types=types, limit=limit)
    if not rows:
        return []
    ids = [r.id for r in rows]
    conn.execute(
        f"UPDATE commands SET status = 'claimed', claimed_by = ?"
        f" WHERE status = 'pending' AND id IN ({', '.join('?' * len(ids))})",
        [claimer, *ids],
    )
    return [dataclasses.replace(r, status="claimed", claimed_by=claimer) for r in rows]


def claim_command(conn: sqlite3.Connection, command_id: int, *, claimer: str) -> bool:
    """Claim one pending command by id; False when it is not pending any more."""
    cursor = conn.execute(
        "UPDATE commands SET status = 'claimed', claimed_by = ?"
        " WHERE id = ? AND status = 'pending'",
        (claimer, command_id),
    )
    return cursor.rowcount == 1


def finish_command(
    conn: sqlite3.Connection,
    command_id: int,
    status: Literal["done", "failed"],
    result: dict[str, Any] | None = None,
    *,
    claimer: str | None = None,
    now: float | None = None,
) -> bool:
    """Record the outcome of a pending or claimed command (claimed by `claimer`, if given).
    False when it was finished already (or claimed by someone else)."""
    sql = (
        "UPDATE commands SET status = ?, result = ?, handled_at = ?"
        " WHERE id = ? AND status IN ('pending', 'claimed')"
    )
    args: list[Any] = [
        status,
        None if result is None else dump_json(result),
        time.time() if now is None else now,
        command_id,
    ]
    if claimer is not None:
        sql += " AND claimed_by = ?"
        args.append(claimer)
    return conn.execute(sql, args).rowcount == 1


def get_command(conn: sqlite3.Connection, command_id: int) -> CommandRow | None:
    r = conn.execute(f"{_SELECT} WHERE id = ?", (command_id,)).fetchone()
    return None if r is None else _row(r)


def claimers(conn: sqlite3.Connection) -> list[str]:
    """Who holds claimed, unfinished commands (to requeue those of the dead)."""
    rows = conn.execute(
        "SELECT DISTINCT claimed_by FROM commands"
        " WHERE status = 'claimed' AND claimed_by IS NOT NULL"
    )
    return [r[0] for r in rows]


def requeue_claimed(conn: sqlite3.Connection, claimer: str) -> int:
    """Put the unfinished commands `claimer` holds back to pending (say, after it died);
    returns how many."""
    cursor = conn.execute(
        "UPDATE commands SET status = 'pending', claimed_by = NULL"
        " WHERE status = 'claimed' AND claimed_by = ?",
        (claimer,),
    )
    return cursor.rowcount
