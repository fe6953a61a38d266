"""What a session host calls to put a session in its team (or not: teams are off)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from covey.agent.mailbox import Mailbox
from covey.agent.subagents import TeammateLauncher
from covey.sessions.plan import SessionPlan
from covey.store import Store
from covey.store.teams import LEAD, member_of_session
from covey.teams import teams_enabled
from covey.teams.mailbox import LeadMailbox, TeammateMailbox
from covey.teams.ownership import TeamFileOwners
from covey.teams.runtime import NoNestedTeams, TeamRuntime, live_runtime
from covey.teams.seat import TeamHooks, TeamSeat
from covey.teams.tools import team_tools
from covey.tools.base import Tool

__all__ = ["TeamMembership", "join_team"]


@dataclass
class TeamMembership:
    seat: TeamSeat
    tools: list[Tool[Any]]
    mailbox: Mailbox
    launcher: TeammateLauncher
    owners: TeamFileOwners


def join_team(
    store: Store, plan: SessionPlan, session_id: str, epoch: int, hooks: TeamHooks
) -> TeamMembership | None:
    """The session's place in a team: a lead (any session but a teammate) gets a team of its
    own, a teammate joins its lead's. None when teams are off, or for a teammate whose lead is
    not hosted here."""
    if not teams_enabled(plan.env):
        return None
    kind = plan.previous.kind if plan.previous else plan.options.kind
    root = Path(plan.loaded.project_root)
    if kind != "teammate":
        runtime = TeamRuntime(store, plan, session_id)
        seat = TeamSeat(
            store, runtime.team_id, runtime.team().name, LEAD, session_id, hooks, runtime.bell
        )
        return TeamMembership(
            seat, team_tools(seat), LeadMailbox(seat, runtime), runtime,
            TeamFileOwners(store, runtime.team_id, LEAD, root),
        )  # fmt: skip
    lead_id = plan.previous.parent_id if plan.previous else plan.options.parent_id
    live = live_runtime(lead_id)
    with store.read() as conn:
        member = member_of_session(conn, session_id)
    if live is None or member is None:
        return None
    seat = TeamSeat(
        store, member.team_id, live.team().name, member.name, session_id, hooks, live.bell
    )
    branch = plan.previous.meta.branch if plan.previous else None
    return TeamMembership(
        seat, team_tools(seat), TeammateMailbox(seat, live, epoch, branch), NoNestedTeams(),
        TeamFileOwners(store, member.team_id, member.name, root),
    )  # fmt: skip
