"""What the agent view and `covey agents --json` show: one `AgentRow` per session, read from
the store in one transaction, and the groups rows fall into.

States are the store's (exact, never scraped); a live session whose host is gone shows as
`interrupted`. `waiting_for` and the pending question come from `meta.pending`, written by the
host in the same transaction that set `needs_input`; a working session's `waiting_for` (`rate
limit`) from `meta.waiting`, written by the shared rate limiter while a request waits.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from covey.sessions.lease import holder_alive
from covey.sessions.pending import Pending
from covey.store import Store
from covey.store.sessions import SessionKind, SessionRow, list_sessions
from covey.store.usage import root_costs

__all__ = [
    "ALL_KINDS",
    "GROUPS",
    "WAITING_FOR",
    "AgentRow",
    "Group",
    "agent_row",
    "agent_rows",
    "display_state",
    "group_of",
]

Group = Literal["Needs input", "Working", "Idle", "Completed"]
GROUPS: tuple[Group, ...] = ("Needs input", "Working", "Idle", "Completed")
WAITING_FOR = {
    "question": "input needed",
    "permission": "permission prompt",
    "credentials": "credentials",
    "budget": "budget",
}
"""`meta.pending.kind` → what `waiting_for` says."""

_GROUP_OF: dict[str, Group] = {
    "needs_input": "Needs input",
    "queued": "Working",
    "working": "Working",
    "idle": "Idle",
    "interrupted": "Idle",
}
ALL_KINDS: tuple[SessionKind, ...] = ("print", "interactive", "background", "teammate")


def display_state(row: SessionRow, now: float | None = None) -> str:
    """A working or idle session whose host is gone shows as interrupted. Queued and
    needs_input sessions need no host to be what they say (the question is stored)."""
    if row.state in ("working", "idle"):
        at = time.time() if now is None else now
        expired = row.lease_expires_at is None or row.lease_expires_at < at
        if expired or not holder_alive(row.host_id):
            return "interrupted"
    return row.state


def group_of(state: str) -> Group:
    """Needs input, Working, Idle (idle and interrupted), Completed (done, failed, stopped)."""
    return _GROUP_OF.get(state, "Completed")


@dataclass(frozen=True)
class AgentRow:
    id: str
    name: str | None
    kind: str
    state: str
    reason: str | None
    summary: str | None
    cwd: str
    worktree: str | None
    branch: str | None
    agent: str | None
    created: float
    updated: float
    cost_usd: float
    pending: Pending | None = None
    overlaps: tuple[str, ...] = ()
    """Files this session's worktree changed that another live worktree changed too."""
    waiting: str | None = None
    """What a working session waits for (`rate limit`), from `meta.waiting`."""
    node: str = "local"
    """The Ray node a background session runs on (`meta.node`); `local`: on this machine."""

    @property
    def group(self) -> Group:
        return group_of(self.state)

    @property
    def label(self) -> str:
        return self.name or self.id

    @property
    def waiting_for(self) -> str | None:
        if self.state == "working":
            return self.waiting
        if self.state != "needs_input" or self.pending is None:
            return None
        return WAITING_FOR.get(self.pending.kind, self.pending.kind)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "reason": self.reason,
            "summary": self.summary,
            "cwd": self.cwd,
            "worktree": self.worktree,
            "branch": self.branch,
            "agent": self.agent,
            "created": self.created,
            "updated": self.updated,
            "cost_usd": round(self.cost_usd, 6),
            "waiting_for": self.waiting_for,
            "node": self.node,
            "question": self.pending.text
            if self.pending and self.waiting_for and self.state == "needs_input"
            else None,
        }


def agent_rows(
    store: Store,
    *,
    kinds: Sequence[SessionKind] = ("background",),
    overlaps: dict[str, tuple[str, ...]] | None = None,
) -> list[AgentRow]:
    """Top-level sessions of these kinds (not removed), most recently updated first, with
    their cost (subagents included). `overlaps`: worktree path → files shared with others."""
    with store.read() as conn:
        rows = list_sessions(conn, kinds=kinds, parent_id=None)
        costs = root_costs(conn) if rows else {}
    now = time.time()
    shared = overlaps or {}
    return [
        agent_row(r, costs.get(r.id, 0.0), now, shared.get(r.meta.worktree or "", ())) for r in rows
    ]


def agent_row(
    r: SessionRow, cost_usd: float, now: float | None = None, overlaps: tuple[str, ...] = ()
) -> AgentRow:
    """The view's row of one session (a top-level one, or a teammate beneath its lead)."""
    return AgentRow(
        id=r.id,
        name=r.name,
        kind=r.kind,
        state=display_state(r, now),
        reason=r.reason,
        summary=r.summary,
        cwd=r.cwd,
        worktree=r.meta.worktree,
        branch=r.meta.branch,
        agent=r.agent,
        created=r.created_at,
        updated=r.updated_at,
        cost_usd=cost_usd,
        pending=r.meta.pending,
        overlaps=overlaps,
        waiting=r.meta.waiting,
        node=r.meta.node or "local",
    )
