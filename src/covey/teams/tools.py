"""The team tools, with the reference's input and result shapes: TaskCreate, TaskUpdate,
TaskGet, TaskList and SendMessage. Each change is one store transaction; refusals are
`ToolError`s naming why (the owner, the open blockers, the valid recipients)."""

from __future__ import annotations

import json
import secrets
from typing import Any, ClassVar, Literal

from pydantic import Field

from covey.errors import ToolError
from covey.models.base import ToolSpec
from covey.sessions.state import TERMINAL_STATES
from covey.store.sessions import get_session
from covey.store.teams import (
    LEAD,
    TaskRow,
    TaskUpdate,
    create_task,
    discard_task,
    get_member,
    get_task,
    list_tasks,
    send_message,
    update_task,
)
from covey.teams.seat import TeamSeat
from covey.teams.text import structured, summary_of
from covey.tools.base import Tool, ToolContext, ToolInput

__all__ = ["SendMessageTool", "TaskCreateTool", "TaskGetTool", "TaskListTool", "TaskUpdateTool"]
__all__ += ["lean_schema", "lean_tool", "team_tools"]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _TeamTool(Tool[Any]):
    """Team tools go with every request of every member: their schemas are kept lean
    (an optional field is its type, not `anyOf […, null]` with `default: null`). A teammate's
    are leaner still: its preamble says how to work, so they carry a `brief` description and
    only the field descriptions in `teammate_fields`."""

    brief: ClassVar[str] = ""
    teammate_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, seat: TeamSeat) -> None:
        self.seat = seat

    def spec(self) -> ToolSpec:
        key = (self.name, self.seat.is_lead)
        lean = _LEAN.get(key)
        if lean is None:
            base = super().spec()
            schema, description = lean_schema(base.input_schema), base.description
            if not self.seat.is_lead:
                schema = _keep_docs(schema, self.teammate_fields)
                description = self.brief or description
            lean = _LEAN[key] = ToolSpec(base.name, description, schema)
        return lean


_LEAN: dict[tuple[str, bool], ToolSpec] = {}


def _keep_docs(schema: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """`schema` with the descriptions of its top-level properties other than `fields` gone."""
    properties = {
        name: prop if name in fields else {k: v for k, v in prop.items() if k != "description"}
        for name, prop in schema.get("properties", {}).items()
    }
    return {**schema, "properties": properties}


def lean_tool(spec: ToolSpec, *, drop: tuple[str, ...] = ()) -> ToolSpec:
    """`spec` with a lean schema, without the properties `drop`."""
    schema = lean_schema(spec.input_schema)
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in drop}
    return ToolSpec(spec.name, spec.description, schema)


def lean_schema(node: Any) -> Any:
    """A JSON schema without what only costs tokens: `anyOf [T, null]` is `T`, `default:
    null` and `additionalProperties` go."""
    if isinstance(node, list):
        return [lean_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: lean_schema(v) for k, v in node.items() if not (k == "default" and v is None)}
    options = out.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1 and len(kept) < len(options):
            del out["anyOf"]
            out = {**kept[0], **out}
    if out.get("additionalProperties") in (False, True):  # true is the default; false
        del out["additionalProperties"]  # only makes the model's mistakes our ToolErrors
    return out


class TaskCreateInput(ToolInput):
    subject: str = Field(description='A brief title, imperative ("Fix the parser").')
    description: str = Field(description="What needs to be done, and how to know it is done.")
    activeForm: str | None = Field(default=None, description='Shown while in progress ("Fixing…").')
    metadata: dict[str, Any] | None = None


class TaskCreateTool(_TeamTool):
    name = "TaskCreate"
    description = "Add a task (status pending, no owner) to the team's shared task list."
    brief = "Add a task to the team's list."
    input_model = TaskCreateInput

    async def run(self, args: TaskCreateInput, ctx: ToolContext) -> str:
        seat = self.seat
        with seat.store.write() as conn:
            task = create_task(
                conn,
                seat.team_id,
                args.subject,
                args.description,
                active_form=args.activeForm,
                metadata=args.metadata,
            )
        hook = await seat.hook(
            "TaskCreated",
            task_id=task.id,
            task_subject=task.subject,
            task_description=task.description,
        )
        if hook.blocked:
            with seat.store.write() as conn:
                discard_task(conn, seat.team_id, task.id)
            raise ToolError(f"a TaskCreated hook refused the task: {hook.feedback or 'blocked'}")
        seat.bell.ring()
        return _json({"task": {"id": task.id, "subject": task.subject}})


class TaskUpdateInput(ToolInput):
    taskId: str
    status: Literal["pending", "in_progress", "completed", "deleted"] | None = None
    subject: str | None = None
    description: str | None = None
    activeForm: str | None = None
    addBlocks: list[str] | None = Field(default=None, description="Tasks that wait for this one.")
    addBlockedBy: list[str] | None = Field(default=None, description="Tasks this one waits for.")
    owner: str | None = Field(default=None, description="Claim it: your own name.")
    metadata: dict[str, Any] | None = Field(default=None, description="Merged; null deletes a key.")


class _Preview(Exception):
    def __init__(self, update: TaskUpdate) -> None:
        self.update = update


class TaskUpdateTool(_TeamTool):
    name = "TaskUpdate"
    description = (
        "Change a task: claim it (owner: your name), set its status (in_progress claims an "
        "unowned task; completed only when fully done), edit it, or add dependencies."
    )
    brief = "Claim (owner), set status, edit a task, or add dependencies."
    teammate_fields = frozenset({"addBlocks", "addBlockedBy"})
    input_model = TaskUpdateInput

    def _apply(self, conn: Any, args: TaskUpdateInput) -> TaskUpdate:
        return update_task(
            conn,
            self.seat.team_id,
            args.taskId,
            by=self.seat.name,
            status=args.status,
            owner=... if args.owner is None else args.owner,
            subject=args.subject,
            description=args.description,
            active_form=args.activeForm,
            add_blocks=args.addBlocks or (),
            add_blocked_by=args.addBlockedBy or (),
            metadata=args.metadata,
        )

    async def run(self, args: TaskUpdateInput, ctx: ToolContext) -> str:
        seat = self.seat
        if args.status == "completed":
            await self._completion_hook(args)
        with seat.store.write() as conn:
            update = self._apply(conn, args)
        if update.status_change and update.status_change[1] == "completed":
            seat.completed.append(update.task)
        seat.bell.ring()
        result: dict[str, Any] = {
            "success": True,
            "taskId": update.task.id,
            "updatedFields": list(update.updated_fields),
        }
        if update.status_change:
            result["statusChange"] = {
                "from": update.status_change[0],
                "to": update.status_change[1],
            }
        return _json(result)

    async def _completion_hook(self, args: TaskUpdateInput) -> None:
        """TaskCompleted runs before the change is made, on the checked change (a preview
        rolled back): exit 2 leaves the task as it was."""
        try:
            with self.seat.store.write() as conn:
                raise _Preview(self._apply(conn, args))
        except _Preview as preview:
            task, change = preview.update.task, preview.update.status_change
        if change is None:
            return
        hook = await self.seat.hook(
            "TaskCompleted",
            task_id=task.id,
            task_subject=task.subject,
            task_description=task.description,
        )
        if hook.blocked:
            raise ToolError(
                f"a TaskCompleted hook kept task {task.id} open: {hook.feedback or 'blocked'}"
            )


class TaskGetInput(ToolInput):
    taskId: str


def _full(task: TaskRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": task.id,
        "subject": task.subject,
        "description": task.description,
        "status": task.status,
        "blocks": list(task.blocks),
        "blockedBy": list(task.blocked_by),
    }
    if task.owner:
        out["owner"] = task.owner
    if task.metadata:
        out["metadata"] = task.metadata
    return out


class TaskGetTool(_TeamTool):
    name = "TaskGet"
    description = "One task of the team's list, in full (null when there is none)."
    brief = "One task, in full."
    input_model = TaskGetInput
    read_only = True

    async def run(self, args: TaskGetInput, ctx: ToolContext) -> str:
        with self.seat.store.read() as conn:
            task = get_task(conn, self.seat.team_id, args.taskId)
        return _json({"task": None if task is None else _full(task)})


class TaskListInput(ToolInput):
    pass


class TaskListTool(_TeamTool):
    name = "TaskList"
    description = "The team's tasks: id, subject, status, owner, open blockers."
    brief = "The team's tasks."
    input_model = TaskListInput
    read_only = True

    async def run(self, args: TaskListInput, ctx: ToolContext) -> str:
        with self.seat.store.read() as conn:
            tasks = list_tasks(conn, self.seat.team_id)
        rows = []
        for t in tasks:
            row: dict[str, Any] = {"id": t.id, "subject": t.subject, "status": t.status}
            if t.owner:
                row["owner"] = t.owner
            row["blockedBy"] = list(t.blocked_by)
            rows.append(row)
        return _json({"tasks": rows})


class SendMessageInput(ToolInput):
    to: str = Field(description=f'A member\'s name, "{LEAD}", or "*" for everyone else.')
    message: str | dict[str, Any] = Field(
        description='Text, or a structured message such as {"type": "shutdown_request"}.'
    )
    summary: str | None = Field(default=None, description="A 5-10 word preview.")


class SendMessageTool(_TeamTool):
    name = "SendMessage"
    description = (
        "Send a message to team members (they do not see your plain text). It reaches them "
        "before their next model call."
    )
    brief = "Message team members (your plain text reaches no one)."
    input_model = SendMessageInput

    async def run(self, args: SendMessageInput, ctx: ToolContext) -> str:
        seat = self.seat
        message = args.message
        if isinstance(message, dict):
            message = self._structured(message)
        with seat.store.write() as conn:
            _refuse_ended(conn, seat.team_id, args.to)
            sent = send_message(
                conn,
                seat.team_id,
                seat.name,
                args.to,
                structured(message),
                summary=summary_of(message, args.summary),
            )
        seat.bell.ring()
        names = [m.recipient for m in sent]
        request = message.get("request_id") if isinstance(message, dict) else None
        out: dict[str, Any] = {"success": True, "message": f"Message sent to {', '.join(names)}"}
        out["recipients"] = names
        if request and message.get("type") == "shutdown_request":  # type: ignore[union-attr]
            out["request_id"] = request
        return _json(out)

    def _structured(self, message: dict[str, Any]) -> dict[str, Any]:
        kind = message.get("type")
        if kind == "shutdown_request":
            if self.seat.name != LEAD:
                raise ToolError("only the lead sends shutdown_request")
            return {"request_id": f"shutdown-{secrets.token_hex(4)}", **message}
        if kind == "shutdown_response":
            if self.seat.is_lead:
                raise ToolError("shutdown_response answers a shutdown_request; the lead sends none")
            if "approve" not in message:
                raise ToolError('shutdown_response needs "approve": true or false')
            if message.get("approve") is True:
                self.seat.shutdown_approved = True
        return message


def _refuse_ended(conn: Any, team_id: str, to: str) -> None:
    """Mail to a teammate whose session has ended would never be read: say so."""
    member = get_member(conn, team_id, to)
    row = get_session(conn, member.session_id) if member is not None else None
    if row is not None and row.state in TERMINAL_STATES and to != LEAD:
        raise ToolError(
            f"teammate {to} has ended ({row.state}); start a new teammate with another name"
        )


def team_tools(seat: TeamSeat) -> list[Tool[Any]]:
    return [
        TaskCreateTool(seat),
        TaskUpdateTool(seat),
        TaskGetTool(seat),
        TaskListTool(seat),
        SendMessageTool(seat),
    ]
