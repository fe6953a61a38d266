"""What sessions under a spend limit have reserved for their model requests in flight.

Each hosted session with a limit publishes in its own row (`meta.budget_reserved_usd`) what its
requests sent and not yet in the usage ledger may cost, so that a budget check in any process
counts them (`covey.budget.spend_limits`). A reservation counts only while its session's lease
is live: a host that let go, or died, holds nothing. Call these inside `store.write()`, the
check and the reservation in one transaction.
"""

from __future__ import annotations

import sqlite3

__all__ = ["RESERVED_KEY", "reserved_usd", "set_reserved"]

RESERVED_KEY = "budget_reserved_usd"
"""`SessionMeta.budget_reserved_usd`, written here in SQL (no read-modify-write of the row)."""
_PATH = f"$.{RESERVED_KEY}"
_TREE = """WITH RECURSIVE tree(id) AS (
    SELECT ? UNION SELECT s.id FROM sessions s JOIN tree ON s.parent_id = tree.id
)"""


def reserved_usd(
    conn: sqlite3.Connection, now: float, *, excluding: str, tree_of: str | None = None
) -> float:
    """USD reserved by live sessions other than `excluding`: every session's, or (`tree_of`)
    the sessions under that root only (a lead's teammates)."""
    where = "lease_expires_at >= ? AND id != ? AND json_extract(meta, ?) > 0"
    args: tuple[str, ...] = ()
    if tree_of is None:
        sql = f"SELECT SUM(json_extract(meta, ?)) FROM sessions WHERE {where}"
    else:
        sql = f"{_TREE} SELECT SUM(json_extract(meta, ?)) FROM sessions WHERE {where} "
        sql += "AND id IN (SELECT id FROM tree)"
        args = (tree_of,)
    row = conn.execute(sql, (*args, _PATH, now, excluding, _PATH)).fetchone()
    return float(row[0] or 0.0)


def set_reserved(conn: sqlite3.Connection, session_id: str, usd: float) -> None:
    """Publish what `session_id`'s requests in flight may cost (0: nothing; the key goes)."""
    if usd > 0:
        conn.execute(
            "UPDATE sessions SET meta = json_set(meta, ?, ?) WHERE id = ?",
            (_PATH, usd, session_id),
        )
    else:
        conn.execute(
            "UPDATE sessions SET meta = json_remove(meta, ?) WHERE id = ? "
            "AND json_extract(meta, ?) IS NOT NULL",
            (_PATH, session_id, _PATH),
        )
