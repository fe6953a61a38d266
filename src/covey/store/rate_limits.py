"""The shared rate limiter's tables: buckets per provider endpoint, how long a 429 blocks an
endpoint, and the queue of requests waiting for it or in flight (first come, first served:
the smallest id goes first).

Plain reads and writes; the arithmetic is `covey.models.ratelimit`'s, the waiting
`covey.budget.rate_limiter`'s. Call them inside `store.write()`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "BucketRow",
    "QueueRow",
    "answered_before",
    "any_in_flight",
    "block_until",
    "blocked_until",
    "drop_stale",
    "enqueue",
    "grant",
    "in_flight",
    "mark_answered",
    "queue_of",
    "read_buckets",
    "remove",
    "touch",
    "waiting_ahead",
    "write_bucket",
]


@dataclass(frozen=True)
class BucketRow:
    kind: str
    limit: int
    remaining: float
    reset_at: float | None
    window_s: float | None


@dataclass(frozen=True)
class QueueRow:
    id: int
    holder: str
    """The host id of the process that queued it (`hostname:pid:nonce`)."""
    session_id: str | None
    tokens: int
    granted_at: float | None
    """None: waiting; else in flight since then."""
    seen_at: float


def read_buckets(conn: sqlite3.Connection, endpoint: str) -> list[BucketRow]:
    rows = conn.execute(
        "SELECT kind, lim, remaining, reset_at, window_s FROM rate_buckets "
        "WHERE endpoint = ? ORDER BY kind",
        (endpoint,),
    )
    return [BucketRow(str(r[0]), int(r[1]), float(r[2]), r[3], r[4]) for r in rows]


def write_bucket(conn: sqlite3.Connection, endpoint: str, bucket: BucketRow, now: float) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO rate_buckets "
        "(endpoint, kind, lim, remaining, reset_at, window_s, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            endpoint,
            bucket.kind,
            bucket.limit,
            bucket.remaining,
            bucket.reset_at,
            bucket.window_s,
            now,
        ),
    )


def blocked_until(conn: sqlite3.Connection, endpoint: str) -> float:
    row = conn.execute(
        "SELECT blocked_until FROM rate_endpoints WHERE endpoint = ?", (endpoint,)
    ).fetchone()
    return float(row[0]) if row else 0.0


def answered_before(conn: sqlite3.Connection, endpoint: str) -> bool:
    """Whether any response from `endpoint` was ever reported."""
    row = conn.execute(
        "SELECT answered_at FROM rate_endpoints WHERE endpoint = ?", (endpoint,)
    ).fetchone()
    return bool(row and row[0] is not None)


def mark_answered(conn: sqlite3.Connection, endpoint: str, now: float) -> None:
    conn.execute(
        "INSERT INTO rate_endpoints (endpoint, answered_at) VALUES (?, ?) "
        "ON CONFLICT (endpoint) DO UPDATE SET answered_at = excluded.answered_at",
        (endpoint, now),
    )


def block_until(conn: sqlite3.Connection, endpoint: str, until: float) -> None:
    """No request goes to `endpoint` before `until` (a later block is kept)."""
    conn.execute(
        "INSERT INTO rate_endpoints (endpoint, blocked_until) VALUES (?, ?) "
        "ON CONFLICT (endpoint) DO UPDATE "
        "SET blocked_until = max(blocked_until, excluded.blocked_until)",
        (endpoint, until),
    )


def enqueue(
    conn: sqlite3.Connection,
    endpoint: str,
    holder: str,
    session_id: str | None,
    tokens: int,
    now: float,
) -> int:
    cursor = conn.execute(
        "INSERT INTO rate_queue (endpoint, holder, session_id, tokens, seen_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (endpoint, holder, session_id, tokens, now),
    )
    return int(cursor.lastrowid or 0)


def queue_of(conn: sqlite3.Connection, endpoint: str) -> list[QueueRow]:
    """Every request waiting for `endpoint` or in flight there, oldest first."""
    rows = conn.execute(
        "SELECT id, holder, session_id, tokens, granted_at, seen_at FROM rate_queue "
        "WHERE endpoint = ? ORDER BY id",
        (endpoint,),
    )
    return [QueueRow(int(r[0]), str(r[1]), r[2], int(r[3]), r[4], float(r[5])) for r in rows]


def touch(conn: sqlite3.Connection, row_id: int, now: float) -> None:
    conn.execute("UPDATE rate_queue SET seen_at = ? WHERE id = ?", (now, row_id))


def grant(conn: sqlite3.Connection, row_id: int, now: float) -> None:
    conn.execute(
        "UPDATE rate_queue SET granted_at = ?, seen_at = ? WHERE id = ?", (now, now, row_id)
    )


def remove(conn: sqlite3.Connection, row_id: int) -> None:
    conn.execute("DELETE FROM rate_queue WHERE id = ?", (row_id,))


def drop_stale(
    conn: sqlite3.Connection,
    endpoint: str,
    now: float,
    *,
    alive: Callable[[str], bool],
    waiting_ttl_s: float,
    flight_ttl_s: float,
) -> None:
    """Forget rows whose process is gone, waiting rows not looked at for `waiting_ttl_s`
    and requests in flight for longer than `flight_ttl_s` (asked of each holder once: a
    process has many rows)."""
    conn.execute(
        "DELETE FROM rate_queue WHERE endpoint = ? AND seen_at < ? - CASE WHEN granted_at IS "
        "NULL THEN ? ELSE ? END",
        (endpoint, now, waiting_ttl_s, flight_ttl_s),
    )
    holders = conn.execute("SELECT DISTINCT holder FROM rate_queue WHERE endpoint = ?", (endpoint,))
    for (holder,) in holders.fetchall():
        if not alive(str(holder)):
            conn.execute(
                "DELETE FROM rate_queue WHERE endpoint = ? AND holder = ?", (endpoint, holder)
            )


def waiting_ahead(conn: sqlite3.Connection, endpoint: str, row_id: int) -> tuple[int, ...]:
    """The tokens of each request queued for `endpoint` before `row_id` and not yet sent."""
    rows = conn.execute(
        "SELECT tokens FROM rate_queue WHERE endpoint = ? AND id < ? AND granted_at IS NULL "
        "ORDER BY id",
        (endpoint, row_id),
    )
    return tuple(int(r[0]) for r in rows)


def in_flight(conn: sqlite3.Connection, endpoint: str) -> int:
    """How many requests to `endpoint` were let go and are not answered yet."""
    row = conn.execute(
        "SELECT COUNT(*) FROM rate_queue WHERE endpoint = ? AND granted_at IS NOT NULL",
        (endpoint,),
    ).fetchone()
    return int(row[0])


def any_in_flight(conn: sqlite3.Connection, endpoint: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM rate_queue WHERE endpoint = ? AND granted_at IS NOT NULL)",
        (endpoint,),
    ).fetchone()
    return bool(row[0])
