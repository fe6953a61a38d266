"""The `sessions` table: one row per session, its lease and its fencing epoch.

Fencing: a host holds a session by a lease `(host_id, epoch, lease_expires_at)`. Every write a
host makes for the session (`update_session`, `transcript.append_entry`) carries the epoch it
got from `acquire_lease` and changes nothing once another host has taken the lease over (which
increments the epoch). Which state changes are allowed is decided in `covey.sessions`, not here.
"""

from __future__ import annotations

import random
import re
import sqlite3
import string
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from types import EllipsisType
from typing import Any, Literal, TypedDict, Unpack

import msgspec

from covey.store._json import dump_json, load_json_object
from covey.store._tx import require_transaction
from covey.store.session_meta import SessionMeta

__all__ = [
    "SessionFields",
    "SessionKind",
    "SessionMeta",
    "SessionRow",
    "SessionState",
    "acquire_lease",
    "adopt_lease",
    "find_session",
    "get_session",
    "insert_session",
    "list_sessions",
    "mark_deleted",
    "new_session_id",
    "release_lease",
    "renew_lease",
    "update_session",
]

SessionKind = Literal["print", "interactive", "background", "subagent", "teammate"]
SessionState = Literal[
    "queued", "working", "needs_input", "idle", "completed", "failed", "stopped", "interrupted"
]

_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_LENGTH = 8
_MIN_PREFIX = 4


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    kind: SessionKind
    cwd: str
    model: str
    state: SessionState
    name: str | None = None
    parent_id: str | None = None
    agent: str | None = None
    permission_mode: str | None = None
    reason: str | None = None
    summary: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    host_id: str | None = None
    epoch: int = 0
    lease_expires_at: float | None = None
    meta: SessionMeta = field(default_factory=SessionMeta)
    deleted_at: float | None = None
    """Set by `covey rm`: hidden from listings; the transcript stays."""

    @classmethod
    def new(
        cls,
        *,
        id: str,
        kind: SessionKind,
        cwd: str,
        model: str,
        state: SessionState = "queued",
        name: str | None = None,
        parent_id: str | None = None,
        agent: str | None = None,
        permission_mode: str | None = None,
        meta: SessionMeta | None = None,
        now: float | None = None,
    ) -> SessionRow:
        """A row for a session created `now` (default: the current time), not leased yet."""
        at = time.time() if now is None else now
        return cls(
            id=id, kind=kind, cwd=cwd, model=model, state=state, name=name, parent_id=parent_id,
            agent=agent, permission_mode=permission_mode, created_at=at, updated_at=at,
            meta=meta or SessionMeta(),
        )  # fmt: skip


class SessionFields(TypedDict, total=False):
    """What `update_session` may change. The lease columns belong to the lease functions."""

    name: str | None
    kind: SessionKind
    parent_id: str | None
    cwd: str
    model: str
    agent: str | None
    permission_mode: str | None
    state: SessionState
    reason: str | None
    summary: str | None
    meta: SessionMeta
    deleted_at: float | None
    updated_at: float
    """Defaults to now."""


_COLUMNS = (
    "id, kind, cwd, model, state, name, parent_id, agent, permission_mode, reason, summary, "
    "created_at, updated_at, host_id, epoch, lease_expires_at, meta, deleted_at"
)
_SELECT = f"SELECT {_COLUMNS} FROM sessions"
_META = [c.strip() for c in _COLUMNS.split(",")].index("meta")


def _row(r: tuple[Any, ...]) -> SessionRow:
    values = list(r)
    values[_META] = _meta(load_json_object(r[_META]))
    return SessionRow(*values)


_BAD_KEY = re.compile(r" - at `\$\.([^.\[`]+)")
"""The top-level key in a msgspec validation error (`... - at `$.pending.text``)."""


def _meta(data: dict[str, Any]) -> SessionMeta:
    """The row's meta; a key whose value does not fit its field (written by hand, or by a
    future version) is left out rather than making the whole row unreadable."""
    while True:
        try:
            return SessionMeta.model_validate(data)
        except msgspec.ValidationError as e:
            bad = _BAD_KEY.search(str(e))
            if bad is None or bad[1] not in data:
                return SessionMeta()
            data = {k: v for k, v in data.items() if k != bad[1]}


_SYSTEM_RANDOM = random.SystemRandom()
"""`os.urandom` behind `random`'s API: what `secrets` uses, without its import (hmac)."""


def new_session_id(conn: sqlite3.Connection) -> str:
    """A fresh id: 8 lowercase letters and digits, not used by any session yet."""
    while True:
        sid = "".join(_SYSTEM_RANDOM.choices(_ID_ALPHABET, k=_ID_LENGTH))
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (sid,)).fetchone() is None:
            return sid


def insert_session(conn: sqlite3.Connection, row: SessionRow) -> None:
    """Add a session; an id that exists already raises sqlite3.IntegrityError."""
    values = [getattr(row, name.strip()) for name in _COLUMNS.split(",")]
    values[_META] = dump_json(row.meta.dump())
    marks = ", ".join("?" * len(values))
    conn.execute(f"INSERT INTO sessions ({_COLUMNS}) VALUES ({marks})", values)


def get_session(conn: sqlite3.Connection, session_id: str) -> SessionRow | None:
    r = conn.execute(f"{_SELECT} WHERE id = ?", (session_id,)).fetchone()
    return None if r is None else _row(r)


def find_session(conn: sqlite3.Connection, id_or_name: str) -> SessionRow | None:
    """The session with this exact id; else the one whose id starts with it (at least 4
    characters, and only if one matches); else the most recently updated one with this name."""
    if (row := get_session(conn, id_or_name)) is not None:
        return row
    if len(id_or_name) >= _MIN_PREFIX:
        rows = conn.execute(
            f"{_SELECT} WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
            (id_or_name, id_or_name + "\U0010ffff"),
        ).fetchall()
        if len(rows) == 1:
            return _row(rows[0])
    r = conn.execute(
        f"{_SELECT} WHERE name = ? ORDER BY updated_at DESC, created_at DESC LIMIT 1",
        (id_or_name,),
    ).fetchone()
    return None if r is None else _row(r)


def list_sessions(
    conn: sqlite3.Connection,
    *,
    cwd: str | Path | None = None,
    kinds: Collection[SessionKind] | None = None,
    states: Collection[SessionState] | None = None,
    parent_id: str | EllipsisType | None = ...,
    limit: int | None = None,
    include_deleted: bool = False,
) -> list[SessionRow]:
    """Sessions, most recently updated first. `parent_id`: `...` any, None top-level only,
    an id its children only. Sessions removed by `covey rm` only with `include_deleted`."""
    where: list[str] = [] if include_deleted else ["deleted_at IS NULL"]
    args: list[Any] = []
    if cwd is not None:
        where.append("cwd = ?")
        args.append(str(cwd))
    for column, values in (("kind", kinds), ("state", states)):
        if values is not None:
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            args.extend(values)
    if parent_id is None:
        where.append("parent_id IS NULL")
    elif isinstance(parent_id, str):
        where.append("parent_id = ?")
        args.append(parent_id)
    sql = _SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
    sql += " ORDER BY updated_at DESC, created_at DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return [_row(r) for r in conn.execute(sql, args)]


def mark_deleted(conn: sqlite3.Connection, session_id: str, now: float | None = None) -> bool:
    """Hide a session from listings (`covey rm`); its transcript and usage stay."""
    at = time.time() if now is None else now
    cursor = conn.execute("UPDATE sessions SET deleted_at = ? WHERE id = ?", (at, session_id))
    return cursor.rowcount == 1


def update_session(
    conn: sqlite3.Connection, session_id: str, epoch: int, **fields: Unpack[SessionFields]
) -> bool:
    """Change columns of a session, fenced: only while its epoch is still `epoch`.

    Returns False and changes nothing when the epoch is stale (or the session is gone).
    `updated_at` is always set (to now unless given)."""
    unknown = set(fields) - set(SessionFields.__annotations__)
    if unknown:
        raise TypeError(f"update_session cannot set {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {"updated_at": time.time(), **fields}
    if "meta" in fields:
        values["meta"] = dump_json(fields["meta"].dump())
    assignments = ", ".join(f"{column} = ?" for column in values)
    cursor = conn.execute(
        f"UPDATE sessions SET {assignments} WHERE id = ? AND epoch = ?",
        [*values.values(), session_id, epoch],
    )
    return cursor.rowcount == 1


def acquire_lease(
    conn: sqlite3.Connection,
    session_id: str,
    host_id: str,
    ttl_s: float,
    now: float,
    *,
    force: bool = False,
) -> int | None:
    """Take the session's lease for `host_id` until `now + ttl_s`; return the epoch to write
    with, or None when another host holds a live lease (or the session does not exist).

    It succeeds when the lease is free (never taken or released), expired, already ours, or
    with `force`. Renewing our own live lease keeps the epoch (and the budget reservation);
    every other acquisition increments it, which fences out whoever wrote before, and clears
    the reservation a previous host left (`store.budget_holds`: a new host has nothing in
    flight). Must run inside `store.write()`."""
    require_transaction(conn, "acquire_lease")
    cursor = conn.execute(
        """UPDATE sessions SET
             epoch = CASE WHEN host_id = :host AND lease_expires_at > :now
                          THEN epoch ELSE epoch + 1 END,
             budget_reserved_usd = CASE WHEN host_id = :host AND lease_expires_at > :now
                                        THEN budget_reserved_usd ELSE 0 END,
             host_id = :host,
             lease_expires_at = :expires
           WHERE id = :id AND (:force OR host_id IS NULL OR host_id = :host
                               OR lease_expires_at IS NULL OR lease_expires_at <= :now)""",
        {"id": session_id, "host": host_id, "now": now, "expires": now + ttl_s, "force": force},
    )
    if cursor.rowcount != 1:
        return None
    row = conn.execute("SELECT epoch FROM sessions WHERE id = ?", (session_id,)).fetchone()
    return int(row[0])


def renew_lease(
    conn: sqlite3.Connection, session_id: str, host_id: str, epoch: int, ttl_s: float, now: float
) -> bool:
    """Extend our lease to `now + ttl_s` (the heartbeat). False once another host took it over;
    a lease that expired but was not taken over can still be renewed (the epoch is unchanged)."""
    cursor = conn.execute(
        "UPDATE sessions SET lease_expires_at = ? WHERE id = ? AND host_id = ? AND epoch = ?",
        (now + ttl_s, session_id, host_id, epoch),
    )
    return cursor.rowcount == 1


def adopt_lease(
    conn: sqlite3.Connection, session_id: str, host_id: str, epoch: int, ttl_s: float, now: float
) -> bool:
    """Take the lease for `host_id` at the same epoch, only while it is still `epoch`: a new
    supervisor carrying on what a Ray node still runs at that epoch (its writes stay valid).
    The budget reservation the previous host left is cleared (`store.budget_holds`). False
    when the epoch moved on."""
    cursor = conn.execute(
        "UPDATE sessions SET host_id = ?, lease_expires_at = ?, budget_reserved_usd = 0 "
        "WHERE id = ? AND epoch = ?",
        (host_id, now + ttl_s, session_id, epoch),
    )
    return cursor.rowcount == 1


def release_lease(conn: sqlite3.Connection, session_id: str, host_id: str, epoch: int) -> bool:
    """Give the lease up (the epoch stays; the next acquisition increments it). False when it
    is no longer ours."""
    cursor = conn.execute(
        "UPDATE sessions SET host_id = NULL, lease_expires_at = NULL "
        "WHERE id = ? AND host_id = ? AND epoch = ?",
        (session_id, host_id, epoch),
    )
    return cursor.rowcount == 1
