"""Agent teams in the store: the team of a lead, its members and its mailbox.

    with store.write() as conn:
        team = teams.ensure_team(conn, lead_sid)                 # one team per lead, idempotent
        teams.add_member(conn, team.id, "alice", alice_sid, owns=["src/api/**"])
        teams.send_message(conn, team.id, "team-lead", "alice", "start with the parser")
    with store.write() as conn:                                  # the recipient's host
        mail = teams.undelivered(conn, team.id, "alice")
        seq = append_entry(conn, alice_sid, epoch, "message", ...)   # the entry carrying it
        teams.mark_delivered(conn, [m.id for m in mail], seq=seq)   # same transaction

The lead is a member too, named `team-lead` (`LEAD`), added by `ensure_team`. Members are
named uniquely per team; a session belongs to at most one team. The mailbox keeps every
message; a message is undelivered until `mark_delivered`, which only marks it once.
Send order is the mailbox `id`, so a recipient reads each sender's messages in send order.

The task list lives in `covey.store.team_tasks` and is re-exported here. Refusals meant for
the model (an unknown recipient, a duplicate name, a task that cannot be claimed) raise
`TeamRefused`, a `ToolError`: a tool passes it on unchanged. Functions that read then write
must run inside `store.write()`.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from covey.store._json import dump_json, load_json
from covey.store._tx import require_transaction
from covey.store.team_tasks import (
    TaskRow,
    TaskStatus,
    TaskUpdate,
    TeamRefused,
    create_task,
    discard_task,
    get_task,
    list_tasks,
    update_task,
)

__all__ = [
    "BROADCAST",
    "LEAD",
    "MailKind",
    "MailRow",
    "MemberRow",
    "TaskRow",
    "TaskStatus",
    "TaskUpdate",
    "TeamRefused",
    "TeamRow",
    "add_member",
    "create_task",
    "discard_task",
    "end_team",
    "ensure_team",
    "get_member",
    "get_task",
    "get_team",
    "list_members",
    "list_tasks",
    "mailbox",
    "mark_delivered",
    "member_of_session",
    "send_message",
    "team_of_lead",
    "undelivered",
    "undelivered_count",
    "update_task",
]

LEAD = "team-lead"
"""The lead's member name in every team."""
BROADCAST = "*"
"""`send_message` to everyone in the team but the sender."""

MailKind = Literal["message", "idle", "system"]
"""`message`: sent by SendMessage; `idle`: a teammate's turn ended (to the lead);
`system`: written by covey itself (a teammate stopped, the team shuts down)."""


@dataclass(frozen=True, slots=True)
class TeamRow:
    id: str
    lead_session_id: str
    created_at: float
    ended_at: float | None = None

    @property
    def name(self) -> str:
        """The team's display name, as the reference names it: `session-<lead id>`."""
        return f"session-{self.lead_session_id[:8]}"


@dataclass(frozen=True, slots=True)
class MemberRow:
    team_id: str
    name: str
    session_id: str
    agent_type: str | None = None
    owns: tuple[str, ...] = ()
    """Gitignore-style globs relative to the repository root (the lead owns nothing)."""
    isolation: str | None = None
    """`worktree` when the member works in its own worktree."""
    joined_at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class MailRow:
    id: int
    """Global send order."""
    team_id: str
    kind: MailKind
    sender: str
    recipient: str
    body: str
    summary: str | None
    sent_at: float
    delivered_at: float | None = None
    delivered_seq: int | None = None
    """The seq of the recipient's transcript entry that carried it."""


# ---- teams ---------------------------------------------------------------------------------

_TEAM = "SELECT id, lead_session_id, created_at, ended_at FROM teams"


def ensure_team(
    conn: sqlite3.Connection, lead_session_id: str, *, now: float | None = None
) -> TeamRow:
    """The lead's team, made (with the lead as member `team-lead`) on first use."""
    require_transaction(conn, "ensure_team")
    team = team_of_lead(conn, lead_session_id)
    if team is not None:
        return team
    now = time.time() if now is None else now
    team = TeamRow(id=f"t{secrets.token_hex(4)}", lead_session_id=lead_session_id, created_at=now)
    conn.execute(
        "INSERT INTO teams (id, lead_session_id, created_at) VALUES (?, ?, ?)",
        (team.id, lead_session_id, now),
    )
    conn.execute(
        "INSERT INTO team_members (team_id, name, session_id, joined_at) VALUES (?, ?, ?, ?)",
        (team.id, LEAD, lead_session_id, now),
    )
    return team


def get_team(conn: sqlite3.Connection, team_id: str) -> TeamRow | None:
    r = conn.execute(f"{_TEAM} WHERE id = ?", (team_id,)).fetchone()
    return None if r is None else TeamRow(*r)


def team_of_lead(conn: sqlite3.Connection, lead_session_id: str) -> TeamRow | None:
    r = conn.execute(f"{_TEAM} WHERE lead_session_id = ?", (lead_session_id,)).fetchone()
    return None if r is None else TeamRow(*r)


def end_team(conn: sqlite3.Connection, team_id: str, *, now: float | None = None) -> bool:
    """Record that the team was shut down; False when it had ended already."""
    cursor = conn.execute(
        "UPDATE teams SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
        (time.time() if now is None else now, team_id),
    )
    return cursor.rowcount == 1


# ---- members -------------------------------------------------------------------------------

_MEMBER = (
    "SELECT team_id, name, session_id, agent_type, owns, isolation, joined_at FROM team_members"
)


def _member(r: tuple[Any, ...]) -> MemberRow:
    team_id, name, session_id, agent_type, owns, isolation, joined_at = r
    return MemberRow(
        team_id, name, session_id, agent_type, tuple(load_json(owns)), isolation, joined_at
    )


def add_member(
    conn: sqlite3.Connection,
    team_id: str,
    name: str,
    session_id: str,
    *,
    agent_type: str | None = None,
    owns: Sequence[str] = (),
    isolation: str | None = None,
    now: float | None = None,
) -> MemberRow:
    """Add a member; `TeamRefused` when the name is taken (or is `team-lead` or `*`)."""
    require_transaction(conn, "add_member")
    if name in (LEAD, BROADCAST) or get_member(conn, team_id, name) is not None:
        raise TeamRefused(f"a team member is already named {name!r}; pick another name")
    row = MemberRow(
        team_id, name, session_id, agent_type, tuple(owns), isolation,
        time.time() if now is None else now,
    )  # fmt: skip
    conn.execute(
        "INSERT INTO team_members (team_id, name, session_id, agent_type, owns, isolation,"
        " joined_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (team_id, name, session_id, agent_type, dump_json(list(owns)), isolation, row.joined_at),
    )
    return row


def get_member(conn: sqlite3.Connection, team_id: str, name: str) -> MemberRow | None:
    r = conn.execute(f"{_MEMBER} WHERE team_id = ? AND name = ?", (team_id, name)).fetchone()
    return None if r is None else _member(r)


def list_members(conn: sqlite3.Connection, team_id: str) -> list[MemberRow]:
    """The team's members, the lead first, then in the order they joined."""
    rows = conn.execute(
        f"{_MEMBER} WHERE team_id = ? ORDER BY name != ?, joined_at, name", (team_id, LEAD)
    )
    return [_member(r) for r in rows]


def member_of_session(conn: sqlite3.Connection, session_id: str) -> MemberRow | None:
    """The membership of a session (a lead's is `team-lead`), None outside any team."""
    r = conn.execute(f"{_MEMBER} WHERE session_id = ?", (session_id,)).fetchone()
    return None if r is None else _member(r)


# ---- mailbox -------------------------------------------------------------------------------

_MAIL = (
    "SELECT id, team_id, kind, sender, recipient, body, summary, sent_at, delivered_at,"
    " delivered_seq FROM team_mailbox"
)


def send_message(
    conn: sqlite3.Connection,
    team_id: str,
    sender: str,
    to: str,
    body: str,
    *,
    summary: str | None = None,
    kind: MailKind = "message",
    now: float | None = None,
) -> list[MailRow]:
    """Queue a message from `sender` to member `to` (or `*`: every member but the sender).
    `TeamRefused` listing the valid names when `to` is not a member."""
    require_transaction(conn, "send_message")
    names = [m.name for m in list_members(conn, team_id)]
    if to == BROADCAST:
        recipients = [n for n in names if n != sender]
    elif to in names and to != sender:
        recipients = [to]
    else:
        valid = ", ".join([*(n for n in names if n != sender), BROADCAST])
        why = "yourself" if to == sender else f"no team member named {to!r}"
        raise TeamRefused(f"cannot send to {why}; valid recipients: {valid}")
    now = time.time() if now is None else now
    sent = []
    for recipient in recipients:
        cursor = conn.execute(
            "INSERT INTO team_mailbox (team_id, kind, sender, recipient, body, summary, sent_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (team_id, kind, sender, recipient, body, summary, now),
        )
        sent.append(
            MailRow(
                int(cursor.lastrowid or 0), team_id, kind, sender, recipient, body, summary, now
            )
        )
    return sent


def undelivered(conn: sqlite3.Connection, team_id: str, recipient: str) -> list[MailRow]:
    """Messages to `recipient` not delivered yet, in send order."""
    rows = conn.execute(
        f"{_MAIL} WHERE team_id = ? AND recipient = ? AND delivered_at IS NULL ORDER BY id",
        (team_id, recipient),
    )
    return [MailRow(*r) for r in rows]


def undelivered_count(conn: sqlite3.Connection, team_id: str, recipient: str | None = None) -> int:
    """How many messages (to `recipient`, or to anyone in the team) wait for delivery."""
    sql = "SELECT COUNT(*) FROM team_mailbox WHERE team_id = ? AND delivered_at IS NULL"
    args: list[Any] = [team_id]
    if recipient is not None:
        sql += " AND recipient = ?"
        args.append(recipient)
    return int(conn.execute(sql, args).fetchone()[0])


def mark_delivered(
    conn: sqlite3.Connection, ids: Sequence[int], *, seq: int | None, now: float | None = None
) -> int:
    """Mark messages delivered by transcript entry `seq`; only the undelivered ones change.
    Returns how many did. Run it in the transaction that writes that entry."""
    if not ids:
        return 0
    cursor = conn.execute(
        f"UPDATE team_mailbox SET delivered_at = ?, delivered_seq = ?"
        f" WHERE delivered_at IS NULL AND id IN ({', '.join('?' * len(ids))})",
        [time.time() if now is None else now, seq, *ids],
    )
    return cursor.rowcount


def mailbox(conn: sqlite3.Connection, team_id: str) -> list[MailRow]:
    """Every message of the team, delivered or not, in send order."""
    return [MailRow(*r) for r in conn.execute(f"{_MAIL} WHERE team_id = ? ORDER BY id", (team_id,))]
