"""A team as `covey team` and the agent view show it: members with their state, owned globs,
current task and cost, and the task board. Pure reads of the store."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from covey.sessions.listing import AgentRow, agent_row
from covey.store.sessions import get_session
from covey.store.team_tasks import TaskRow
from covey.store.teams import LEAD, TeamRow, list_members, list_tasks, member_of_session
from covey.store.usage import session_usage

__all__ = ["Teammate", "task_board", "team_of", "team_view", "teammates_of"]


@dataclass(frozen=True, slots=True)
class Teammate:
    """A teammate as the agent view shows it beneath its lead."""

    name: str
    id: str
    state: str
    """As the agent view shows states (a live one whose host is gone: `interrupted`)."""
    task: TaskRow | None = None
    """The task it works on now (in progress, owned by it)."""
    row: AgentRow | None = None
    """Its own row, for the cursor to select (peek, reply, stop); None when its session is
    gone."""


def teammates_of(conn: sqlite3.Connection, lead_ids: Collection[str]) -> dict[str, list[Teammate]]:
    """Lead session id → its teammates in the order they joined, for the leads among
    `lead_ids` that have a team (one query for the members, one for the tasks in progress)."""
    found = conn.execute(
        "SELECT t.lead_session_id, t.id, m.name, m.session_id FROM team_members m "
        "JOIN teams t ON t.id = m.team_id WHERE m.name != ? ORDER BY m.joined_at, m.name",
        (LEAD,),
    ).fetchall()
    wanted = set(lead_ids)
    members = [r for r in found if r[0] in wanted]
    if not members:
        return {}
    working = {
        (t.team_id, t.owner): t
        for team_id in {r[1] for r in members}
        for t in list_tasks(conn, team_id)
        if t.status == "in_progress" and t.owner
    }
    out: dict[str, list[Teammate]] = {}
    now = time.time()
    for lead_id, team_id, name, session_id in members:
        session = get_session(conn, session_id)
        row = None
        if session is not None:
            row = agent_row(session, session_usage(conn, session_id)[1], now)
        task = working.get((team_id, name))
        state = row.state if row is not None else "gone"
        out.setdefault(lead_id, []).append(Teammate(name, session_id, state, task, row))
    return out


def task_board(conn: sqlite3.Connection, lead_id: str) -> list[TaskRow] | None:
    """The task board of the team `lead_id` leads, in id order; None when it leads none (or
    a team that never had a task or a teammate: every lead's session has one)."""
    team = conn.execute("SELECT id FROM teams WHERE lead_session_id = ?", (lead_id,)).fetchone()
    if team is None:
        return None
    tasks = list_tasks(conn, team[0])
    if tasks or any(m.name != LEAD for m in list_members(conn, team[0])):
        return tasks
    return None


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
