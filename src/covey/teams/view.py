"""A team as `covey team` shows it: members with their state, owned globs, current task and
cost, and the task board. A pure read of the store."""

from __future__ import annotations

import sqlite3
from typing import Any

from covey.store.sessions import get_session
from covey.store.teams import LEAD, TeamRow, list_members, list_tasks, member_of_session
from covey.store.usage import session_usage

__all__ = ["team_of", "team_view"]


def team_of(conn: sqlite3.Connection, session_id: str) -> TeamRow | None:
    """The team a session leads or belongs to."""
    member = member_of_session(conn, session_id)
    if member is None:
        return None
    row = conn.execute(
        "SELECT id, lead_session_id, created_at, ended_at FROM teams WHERE id = ?",
        (member.team_id,),
    ).fetchone()
    return None if row is None else TeamRow(*row)


def team_view(conn: sqlite3.Connection, team: TeamRow) -> dict[str, Any]:
    """`{"team", "lead", "ended", "members": [{name, id, state, owns, task, cost_usd}],
    "tasks": [{id, subject, status, owner, blockedBy, blocks}]}`."""
    tasks = list_tasks(conn, team.id)
    members = []
    for m in list_members(conn, team.id):
        row = get_session(conn, m.session_id)
        current = next(
            (t.id for t in tasks if t.owner == m.name and t.status == "in_progress"), None
        )
        # a lead's own usage, without its teammates' (they have their own rows)
        cost = (
            _own_cost(conn, m.session_id)
            if m.name == LEAD
            else session_usage(conn, m.session_id)[1]
        )
        members.append(
            {
                "name": m.name,
                "id": m.session_id,
                "state": row.state if row else None,
                "owns": list(m.owns),
                "task": current,
                "cost_usd": round(cost, 6),
            }
        )
    return {
        "team": team.name,
        "lead": team.lead_session_id,
        "ended": team.ended_at is not None,
        "members": members,
        "tasks": [
            {
                "id": t.id,
                "subject": t.subject,
                "status": t.status,
                "owner": t.owner,
                "blockedBy": list(t.blocked_by),
                "blocks": list(t.blocks),
            }
            for t in tasks
        ],
    }


def _own_cost(conn: sqlite3.Connection, session_id: str) -> float:
    row = conn.execute(
        "SELECT COALESCE(SUM(cost_usd), 0.0) FROM usage WHERE session_id = ?", (session_id,)
    ).fetchone()
    return float(row[0])
