"""What sessions under a spend limit have reserved for their model requests in flight.

Each hosted session with a limit publishes in its own row (the `budget_reserved_usd` column,
migration `m0008_budget_reserved`) what its requests sent and not yet in the usage ledger may
cost, so that a budget check in any process counts them (`covey.budget.spend_limits`). Only
the SQL here reads and writes that column: a host's read-then-write of the row's `meta` cannot
overwrite a reservation published in between. A reservation counts only while its session's
lease is live (a host that let go, or died, holds nothing), and taking a lease clears it
(`store.sessions.acquire_lease`, `adopt_lease`: the new host has nothing in flight). Call these
inside `store.write()`, the check and the reservation in one transaction.
"""

from __future__ import annotations

import sqlite3

__all__ = ["held_by", "reserved_usd", "set_reserved"]

_TREE = """WITH RECURSIVE tree(id) AS (
    SELECT ? UNION SELECT s.id FROM sessions s JOIN tree ON s.parent_id = tree.id
)"""


def reserved_usd(
    conn: sqlite3.Connection, now: float, *, excluding: str, tree_of: str | None = None
) -> float:
    """USD reserved by live sessions other than `excluding`: every session's, or (`tree_of`)
    the sessions under that root only (a lead's teammates)."""
    where = "budget_reserved_usd > 0 AND lease_expires_at >= ? AND id != ?"
    sql = f"SELECT SUM(budget_reserved_usd) FROM sessions WHERE {where}"
    args: tuple[str | float, ...] = (now, excluding)
    if tree_of is not None:
        sql = f"{_TREE} {sql} AND id IN (SELECT id FROM tree)"
        args = (tree_of, *args)
    row = conn.execute(sql, args).fetchone()
    return float(row[0] or 0.0)


def held_by(conn: sqlite3.Connection, session_id: str) -> float:
    """What `session_id`'s row holds reserved (0: nothing, or no such session), live or not."""
    row = conn.execute(
        "SELECT budget_reserved_usd FROM sessions WHERE id = ?", (session_id,)
    ).fetchone()
    return float(row[0]) if row is not None else 0.0


def set_reserved(conn: sqlite3.Connection, session_id: str, usd: float) -> None:
    """Publish what `session_id`'s requests in flight may cost (0: nothing)."""
    conn.execute(
        "UPDATE sessions SET budget_reserved_usd = ? WHERE id = ? AND budget_reserved_usd != ?",
        (max(usd, 0.0), session_id, max(usd, 0.0)),
    )
