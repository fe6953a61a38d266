"""A team's shared task list: ids "1", "2"… in creation order, claims that never double.

Every function that changes a task reads, checks and writes inside the caller's
`store.write()` (BEGIN IMMEDIATE), so checks and change are one atomic step: of two agents
claiming one task at once exactly one wins, the other gets `TeamRefused` naming the owner.

Rules (`update_task`, `by` is the caller's member name; the lead is `team-lead`):
- setting `owner` succeeds only when the task is unowned or the caller's own (the lead may
  reassign), and every task in its `blockedBy` is completed;
- only the owner (or the lead) sets `in_progress`, `completed`, `pending` or `deleted` on an
  owned task; `in_progress` on an unowned task claims it for the caller; `completed` needs an
  owner (or the lead);
- a dependency (`addBlocks`, `addBlockedBy`) that would close a cycle is refused.
`blockedBy` and `blocks` list only open edges: a completed blocker no longer blocks, so
completing a task unblocks its dependents. A deleted task is gone for every reader.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any, Literal

from covey.errors import ToolError
from covey.store._json import dump_json, load_json_object
from covey.store._tx import require_transaction

__all__ = [
    "TaskRow",
    "TaskStatus",
    "TaskUpdate",
    "TeamRefused",
    "create_task",
    "discard_task",
    "get_task",
    "list_tasks",
    "update_task",
]

TaskStatus = Literal["pending", "in_progress", "completed", "deleted"]
_STATUSES = ("pending", "in_progress", "completed", "deleted")
_LEAD = "team-lead"


class TeamRefused(ToolError):
    """A team action refused by the team's rules; the message is for the model."""


@dataclass(frozen=True, slots=True)
class TaskRow:
    id: str
    team_id: str
    subject: str
    description: str
    status: TaskStatus
    owner: str | None = None
    active_form: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    blocked_by: tuple[str, ...] = ()
    """Open tasks this one waits for (completed blockers are not listed)."""
    blocks: tuple[str, ...] = ()
    """Tasks that wait for this one while it is open."""
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class TaskUpdate:
    task: TaskRow
    """The task after the change."""
    updated_fields: tuple[str, ...]
    """Changed fields, in the reference's spelling (`activeForm`, `blockedBy`…)."""
    status_change: tuple[TaskStatus, TaskStatus] | None = None
    """(from, to) when the status changed."""


_SELECT = (
    "SELECT id, team_id, subject, description, status, owner, active_form, metadata,"
    " created_at, updated_at FROM team_tasks"
)
_OPEN_EDGES = (
    "SELECT b.task_id, b.blocker_id FROM team_task_blockers b"
    " JOIN team_tasks t ON t.team_id = b.team_id AND t.id = b.task_id"
    " JOIN team_tasks k ON k.team_id = b.team_id AND k.id = b.blocker_id"
    " WHERE b.team_id = ? AND t.status != 'deleted' AND k.status NOT IN ('completed', 'deleted')"
)


def _task_id(task_id: str | int) -> int:
    text = str(task_id).strip()
    if not text.isdigit():
        raise TeamRefused(f"task ids are numbers like '1'; got {task_id!r}")
    return int(text)


def _rows(conn: sqlite3.Connection, team_id: str, where: str, args: Sequence[Any]) -> list[TaskRow]:
    blocked_by: dict[int, list[str]] = {}
    blocks: dict[int, list[str]] = {}
    for task, blocker in conn.execute(f"{_OPEN_EDGES} ORDER BY b.blocker_id", (team_id,)):
        blocked_by.setdefault(task, []).append(str(blocker))
    for task, blocker in conn.execute(f"{_OPEN_EDGES} ORDER BY b.task_id", (team_id,)):
        blocks.setdefault(blocker, []).append(str(task))
    rows = conn.execute(f"{_SELECT} WHERE team_id = ? {where} ORDER BY id", (team_id, *args))
    return [
        TaskRow(
            id=str(id_),
            team_id=team,
            subject=subject,
            description=description,
            status=status,
            owner=owner,
            active_form=active_form,
            metadata=load_json_object(metadata),
            blocked_by=tuple(blocked_by.get(id_, ())),
            blocks=tuple(blocks.get(id_, ())) if status not in ("completed", "deleted") else (),
            created_at=created_at,
            updated_at=updated_at,
        )
        for id_, team, subject, description, status, owner, active_form, metadata, created_at,
        updated_at in rows
    ]  # fmt: skip


def get_task(conn: sqlite3.Connection, team_id: str, task_id: str | int) -> TaskRow | None:
    """The task, None when there is none (or it was deleted)."""
    found = _rows(conn, team_id, "AND id = ? AND status != 'deleted'", (_task_id(task_id),))
    return found[0] if found else None


def list_tasks(conn: sqlite3.Connection, team_id: str) -> list[TaskRow]:
    """Every task that is not deleted, in id order."""
    return _rows(conn, team_id, "AND status != 'deleted'", ())


def create_task(
    conn: sqlite3.Connection,
    team_id: str,
    subject: str,
    description: str,
    *,
    active_form: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> TaskRow:
    """A new `pending` task with the team's next id."""
    require_transaction(conn, "create_task")
    row = conn.execute(
        "UPDATE teams SET next_task = next_task + 1 WHERE id = ? RETURNING next_task - 1",
        (team_id,),
    ).fetchone()
    if row is None:
        raise TeamRefused(f"no team {team_id!r}")
    now = time.time() if now is None else now
    clean = {k: v for k, v in (metadata or {}).items() if v is not None}
    conn.execute(
        "INSERT INTO team_tasks (team_id, id, subject, description, active_form, metadata,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (team_id, row[0], subject, description, active_form, dump_json(clean), now, now),
    )
    task = get_task(conn, team_id, row[0])
    assert task is not None
    return task


def discard_task(conn: sqlite3.Connection, team_id: str, task_id: str | int) -> bool:
    """Remove a task as if it was never created (a TaskCreated hook refused it); its id is
    given out again when it was the latest."""
    tid = _task_id(task_id)
    cursor = conn.execute("DELETE FROM team_tasks WHERE team_id = ? AND id = ?", (team_id, tid))
    conn.execute(
        "UPDATE teams SET next_task = next_task - 1 WHERE id = ? AND next_task = ?",
        (team_id, tid + 1),
    )
    return cursor.rowcount == 1


def _refuse_open_blockers(task: TaskRow, what: str) -> None:
    if task.blocked_by:
        ids = ", ".join(task.blocked_by)
        raise TeamRefused(
            f"cannot {what} task {task.id}: it is blocked by open task(s) {ids}; "
            "wait until they are completed"
        )


def _reaches(conn: sqlite3.Connection, team_id: str, start: int, goal: int) -> bool:
    """Whether `start` waits, directly or not, for `goal` (through non-deleted tasks)."""
    edges: dict[int, list[int]] = {}
    for task, blocker in conn.execute(
        "SELECT b.task_id, b.blocker_id FROM team_task_blockers b JOIN team_tasks k"
        " ON k.team_id = b.team_id AND k.id = b.blocker_id"
        " WHERE b.team_id = ? AND k.status != 'deleted'",
        (team_id,),
    ):
        edges.setdefault(task, []).append(blocker)
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return False


def _add_edge(conn: sqlite3.Connection, team_id: str, task: int, blocker: int) -> bool:
    """`task` waits for `blocker`; False when it did already."""
    if get_task(conn, team_id, blocker) is None:
        raise TeamRefused(f"no task {blocker} (see TaskList)")
    if task == blocker or _reaches(conn, team_id, blocker, task):
        raise TeamRefused(
            f"task {task} cannot wait for task {blocker}: that would make a dependency cycle"
        )
    cursor = conn.execute(
        "INSERT OR IGNORE INTO team_task_blockers (team_id, task_id, blocker_id) VALUES (?, ?, ?)",
        (team_id, task, blocker),
    )
    return cursor.rowcount == 1


def _new_owner(conn: sqlite3.Connection, task: TaskRow, owner: str | None, by: str) -> str | None:
    if owner is not None and owner != by and owner != _LEAD:
        known = conn.execute(
            "SELECT 1 FROM team_members WHERE team_id = ? AND name = ?", (task.team_id, owner)
        ).fetchone()
        if known is None:
            raise TeamRefused(f"no team member named {owner!r} to own task {task.id}")
    if task.owner not in (None, by) and by != _LEAD:
        raise TeamRefused(f"task {task.id} is owned by {task.owner}; ask them or the lead")
    if owner is not None:
        _refuse_open_blockers(task, "claim")
    return owner


def _new_status(task: TaskRow, status: TaskStatus, owner: str | None, by: str) -> str | None:
    """The owner after changing the status (checked), given the owner after any `owner` change."""
    if status not in _STATUSES:
        raise TeamRefused(f"status must be one of {', '.join(_STATUSES)}; got {status!r}")
    if owner not in (None, by) and by != _LEAD:
        raise TeamRefused(
            f"task {task.id} is owned by {owner}; only they or the lead set its status"
        )
    if status == "in_progress":
        _refuse_open_blockers(task, "start")
        return by if owner is None else owner
    if status == "completed":
        if owner is None and by != _LEAD:
            raise TeamRefused(f"task {task.id} has no owner; claim it before completing it")
        _refuse_open_blockers(task, "complete")
    return owner


def update_task(
    conn: sqlite3.Connection,
    team_id: str,
    task_id: str | int,
    *,
    by: str,
    status: TaskStatus | None = None,
    owner: str | EllipsisType | None = ...,
    subject: str | None = None,
    description: str | None = None,
    active_form: str | None = None,
    add_blocks: Sequence[str] = (),
    add_blocked_by: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> TaskUpdate:
    """Change a task as member `by`, all or nothing (see the module's rules).
    `owner=None` (or "") gives it up; `...` leaves it. Metadata keys set to None are removed."""
    require_transaction(conn, "update_task")
    task = get_task(conn, team_id, task_id)
    if task is None:
        raise TeamRefused(f"no task {task_id} (see TaskList)")
    tid = int(task.id)
    fields: list[str] = []
    new_owner = task.owner
    if owner is not ... and (owner or None) != task.owner:
        new_owner = _new_owner(conn, task, owner or None, by)
    if status is not None:  # even unchanged: "in_progress" on another's task is no success
        new_owner = _new_status(task, status, new_owner, by)
    changes: dict[str, Any] = {}

    def change(column: str, name: str, value: Any) -> None:
        changes[column] = value
        fields.append(name)

    if new_owner != task.owner:
        change("owner", "owner", new_owner)
    if status is not None and status != task.status:
        change("status", "status", status)
    for column, name, value in _described(task, subject, description, active_form, metadata):
        change(column, name, value)
    if any([_add_edge(conn, team_id, _task_id(d), tid) for d in add_blocks]):
        fields.append("blocks")
    if any([_add_edge(conn, team_id, tid, _task_id(b)) for b in add_blocked_by]):
        fields.append("blockedBy")
    if "owner" in changes and changes["owner"] is not None:
        # a blocker added in this same call counts too
        _refuse_open_blockers(_fresh(conn, team_id, tid), "claim")
    if changes:
        changes["updated_at"] = time.time() if now is None else now
        assignments = ", ".join(f"{column} = ?" for column in changes)
        conn.execute(
            f"UPDATE team_tasks SET {assignments} WHERE team_id = ? AND id = ?",
            (*changes.values(), team_id, tid),
        )
    after = _fresh(conn, team_id, tid)
    status_change = (task.status, after.status) if "status" in changes else None
    return TaskUpdate(after, tuple(fields), status_change)


def _described(
    task: TaskRow,
    subject: str | None,
    description: str | None,
    active_form: str | None,
    metadata: Mapping[str, Any] | None,
) -> list[tuple[str, str, Any]]:
    """(column, field name, new value) of each descriptive field the update changes."""
    out = [
        (column, name, value)
        for column, name, value in (
            ("subject", "subject", subject),
            ("description", "description", description),
            ("active_form", "activeForm", active_form),
        )
        if value is not None and value != getattr(task, column)
    ]
    if metadata:
        merged = {**task.metadata, **metadata}
        merged = {k: v for k, v in merged.items() if v is not None}
        if merged != task.metadata:
            out.append(("metadata", "metadata", dump_json(merged)))
    return out


def _fresh(conn: sqlite3.Connection, team_id: str, tid: int) -> TaskRow:
    found = _rows(conn, team_id, "AND id = ?", (tid,))
    return found[0]
