"""A team in the store for the agent-view tests: a background lead (working, held by this
process), teammates beneath it in several states, and a task board with an owner and a
blocker; all through the real store functions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from covey.sessions.lease import new_host_id
from covey.sessions.state import set_state
from covey.store import Store
from covey.store import teams as team_store
from covey.store.sessions import (
    SessionRow,
    SessionState,
    acquire_lease,
    insert_session,
    new_session_id,
)
from tui_seed import seed_session


@dataclass(frozen=True)
class SeededTeam:
    lead: str
    teammates: dict[str, str]
    """Name → session id."""
    epochs: dict[str, int]


def seed_teammate(
    store: Store, cwd: Path, lead: str, name: str, state: SessionState
) -> tuple[str, int]:
    with store.write() as conn:
        sid = new_session_id(conn)
        row = SessionRow.new(id=sid, kind="teammate", cwd=str(cwd), model="scripted:demo",
                             name=name, parent_id=lead)  # fmt: skip
        insert_session(conn, row)
        epoch = acquire_lease(conn, sid, new_host_id(), 3600.0, time.time()) or 0
    set_state(store, sid, epoch, state)
    return sid, epoch


def seed_team(store: Store, cwd: Path, *, lead_name: str = "team-lead-run") -> SeededTeam:
    lead, _ = seed_session(store, cwd, name=lead_name, state="working", summary="leading")
    mates: dict[str, str] = {}
    epochs: dict[str, int] = {}
    for name, state in (("alice", "working"), ("bob", "idle")):
        mates[name], epochs[name] = seed_teammate(store, cwd, lead, name, state)
    with store.write() as conn:
        team = team_store.ensure_team(conn, lead)
        for name, sid in mates.items():
            team_store.add_member(conn, team.id, name, sid)
        team_store.create_task(conn, team.id, "Write the parser", "parse it")
        team_store.create_task(conn, team.id, "Test the parser", "test it")
        team_store.create_task(conn, team.id, "Write the docs", "document it")
        team_store.update_task(conn, team.id, "1", by="alice", owner="alice", status="in_progress")
        team_store.update_task(conn, team.id, "2", by=team_store.LEAD, add_blocked_by=["1"])
    return SeededTeam(lead, mates, epochs)
