"""The `usage` table: the ledger of tokens and cost, one row per model response.

An agent path names who spent it inside a session: `main`, `main/reviewer-1`… Roll-ups count
a session together with its descendants (subagent and teammate sessions, by `parent_id`).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the store opens (a listing, a dispatch) without the message models
    from covey.messages import Usage

__all__ = [
    "GROUPINGS",
    "UsageRow",
    "UsageTotal",
    "cost_since",
    "last_usage_id",
    "record_usage",
    "root_costs",
    "session_tokens",
    "session_usage",
    "usage_rows",
    "usage_totals",
]


@dataclass(frozen=True, slots=True)
class UsageRow:
    id: int
    session_id: str
    agent_path: str
    model: str
    usage: Usage
    cost_usd: float
    ts: float


_TREE = """WITH RECURSIVE tree(id) AS (
    SELECT ? UNION SELECT s.id FROM sessions s JOIN tree ON s.parent_id = tree.id
)"""


def record_usage(
    conn: sqlite3.Connection,
    session_id: str,
    agent_path: str,
    model: str,
    usage: Usage,
    cost_usd: float,
    *,
    now: float | None = None,
) -> int:
    """Add one response's usage; returns the row id."""
    cursor = conn.execute(
        "INSERT INTO usage (session_id, agent_path, model, input, output, cache_read,"
        " cache_write, cost_usd, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            session_id,
            agent_path,
            model,
            usage.input,
            usage.output,
            usage.cache_read,
            usage.cache_write,
            cost_usd,
            time.time() if now is None else now,
        ),
    )
    return int(cursor.lastrowid or 0)


def last_usage_id(conn: sqlite3.Connection) -> int:
    """The newest ledger row's id (0 when empty): what a host has seen before it runs."""
    row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM usage").fetchone()
    return int(row[0])


def session_usage(
    conn: sqlite3.Connection, session_id: str, *, since_id: int = 0
) -> tuple[Usage, float]:
    """Tokens and USD of a session: every agent path, plus all its descendant sessions;
    only rows after `since_id` (a run's own spending, see `last_usage_id`)."""
    from covey.messages import Usage

    row = _session_sums(conn, session_id, since_id)
    usage = Usage(input=row[0], output=row[1], cache_read=row[2], cache_write=row[3])
    return usage, float(row[4])


def session_tokens(conn: sqlite3.Connection, session_id: str) -> tuple[int, float]:
    """All tokens (input, cached or not, and output) and USD of a session and its
    descendants, as `session_usage` counts them, without the message models (a listing)."""
    row = _session_sums(conn, session_id, 0)
    return sum(row[:4]), float(row[4])


def _session_sums(conn: sqlite3.Connection, session_id: str, since_id: int) -> tuple[Any, ...]:
    """input, output, cache_read, cache_write, cost_usd summed over the session's tree."""
    return tuple(
        conn.execute(
            f"""{_TREE} SELECT COALESCE(SUM(input), 0), COALESCE(SUM(output), 0),
                COALESCE(SUM(cache_read), 0), COALESCE(SUM(cache_write), 0),
                COALESCE(SUM(cost_usd), 0.0)
                FROM usage WHERE session_id IN (SELECT id FROM tree) AND id > ?""",
            (session_id, since_id),
        ).fetchone()
    )


def cost_since(conn: sqlite3.Connection, since: float) -> float:
    """USD of every row with `ts >= since`, all sessions (a day's spending)."""
    row = conn.execute("SELECT COALESCE(SUM(cost_usd), 0.0) FROM usage WHERE ts >= ?", (since,))
    return float(row.fetchone()[0])


def root_costs(conn: sqlite3.Connection) -> dict[str, float]:
    """USD per top-level session, its descendants' usage included, in one query."""
    rows = conn.execute(
        """WITH RECURSIVE roots(id, root) AS (
            SELECT id, id FROM sessions WHERE parent_id IS NULL
            UNION ALL SELECT s.id, roots.root FROM sessions s JOIN roots ON s.parent_id = roots.id
        )
        SELECT roots.root, SUM(u.cost_usd) FROM usage u JOIN roots ON u.session_id = roots.id
        GROUP BY roots.root"""
    ).fetchall()
    return {r[0]: float(r[1]) for r in rows}


def usage_rows(
    conn: sqlite3.Connection,
    *,
    session_id: str | None = None,
    include_descendants: bool = False,
    since: float | None = None,
    until: float | None = None,
) -> list[UsageRow]:
    """Ledger rows, oldest first: of one session (with its descendants if asked) or all,
    with `since <= ts < until`."""
    from covey.messages import Usage

    sql = ""
    where: list[str] = []
    args: list[Any] = []
    if session_id is not None and include_descendants:
        sql = _TREE + " "
        where.append("session_id IN (SELECT id FROM tree)")
        args.append(session_id)
    elif session_id is not None:
        where.append("session_id = ?")
        args.append(session_id)
    if since is not None:
        where.append("ts >= ?")
        args.append(since)
    if until is not None:
        where.append("ts < ?")
        args.append(until)
    sql += "SELECT id, session_id, agent_path, model, input, output, cache_read, cache_write,"
    sql += " cost_usd, ts FROM usage"
    sql += (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
    return [
        UsageRow(
            id=r[0],
            session_id=r[1],
            agent_path=r[2],
            model=r[3],
            usage=Usage(input=r[4], output=r[5], cache_read=r[6], cache_write=r[7]),
            cost_usd=r[8],
            ts=r[9],
        )
        for r in conn.execute(sql, args)
    ]


@dataclass(frozen=True, slots=True)
class UsageTotal:
    key: str
    usage: Usage
    requests: int
    cost_usd: float


_GROUP_KEY = {
    "session": "roots.root",
    "agent": "u.agent_path",
    "model": "u.model",
    "day": "date(u.ts, 'unixepoch', 'localtime')",
}
GROUPINGS = tuple(_GROUP_KEY)
"""What `usage_totals` groups by: the top-level session (its descendants' rows included), the
agent path, the model, or the local day."""


def usage_totals(
    conn: sqlite3.Connection, by: str, *, since: float | None = None
) -> list[UsageTotal]:
    """Ledger sums per `by` key (one of `GROUPINGS`), rows with `ts >= since`, largest cost
    first (days: oldest first)."""
    from covey.messages import Usage

    key = _GROUP_KEY[by]
    order = "key" if by == "day" else "SUM(u.cost_usd) DESC, key"
    rows = conn.execute(
        f"""WITH RECURSIVE roots(id, root) AS (
            SELECT id, id FROM sessions WHERE parent_id IS NULL
            UNION ALL SELECT s.id, roots.root FROM sessions s JOIN roots ON s.parent_id = roots.id
        )
        SELECT COALESCE({key}, u.session_id) AS key, SUM(u.input), SUM(u.output),
            SUM(u.cache_read), SUM(u.cache_write), COUNT(*), SUM(u.cost_usd)
        FROM usage u LEFT JOIN roots ON u.session_id = roots.id
        WHERE u.ts >= ? GROUP BY key ORDER BY {order}""",
        (since if since is not None else float("-inf"),),
    ).fetchall()
    return [
        UsageTotal(
            key=str(r[0]),
            usage=Usage(input=r[1], output=r[2], cache_read=r[3], cache_write=r[4]),
            requests=r[5],
            cost_usd=float(r[6]),
        )
        for r in rows
    ]
