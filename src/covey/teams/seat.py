"""One member's place in a team, shared by its tools and its mailbox: who it is, where the
team lives, its hooks, and the bell that wakes the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from covey.hooks import HookResult
from covey.store import Store
from covey.store.teams import LEAD, TaskRow
from covey.teams.bell import Bell

__all__ = ["TeamHooks", "TeamSeat"]


class TeamHooks(Protocol):
    """`CommandHooks.team_event`: TeammateIdle, TaskCreated, TaskCompleted."""

    async def team_event(self, event: str, payload: dict[str, Any]) -> HookResult: ...


@dataclass
class TeamSeat:
    store: Store
    team_id: str
    team_name: str
    name: str
    """This member's name (`team-lead` for the lead)."""
    session_id: str
    hooks: TeamHooks | None
    bell: Bell
    completed: list[TaskRow] = field(default_factory=list)
    """Tasks this member completed since its last idle notification."""
    shutdown_approved: bool = False
    """A teammate answered a shutdown request with approve: its run ends with this turn."""

    @property
    def is_lead(self) -> bool:
        return self.name == LEAD

    async def hook(self, event: str, **payload: Any) -> HookResult:
        if self.hooks is None:
            return HookResult()
        extras = {"team_name": self.team_name}
        if not self.is_lead:
            extras["teammate_name"] = self.name
        return await self.hooks.team_event(event, {**payload, **extras})
