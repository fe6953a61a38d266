"""One subagent from the call to the report: prepare it (definition, model, mode, record), wait
for a slot in the queue, run the child loop, and shape what the parent gets back.

The child starts with its definition's prompt plus the environment facts, the task message
(plus any SubagentStart context), and only its resolved tools. Its Stop hook point is the
SubagentStop hook; UserPromptSubmit does not fire for it (the task is not a person's prompt).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from covey.agent.definitions import MODE_RANK, PROJECT_SCOPES, AgentDefinition, resolve_tools
from covey.agent.events import AgentEvent, MessageAdded, ToolFinished
from covey.agent.hooks import AgentHooks, PreToolOutcome, PromptOutcome
from covey.agent.loop import Agent
from covey.agent.prompt import definition_system_prompt
from covey.agent.subagents_records import ChildRecord, SubagentNotice
from covey.errors import RunError, ToolError, UserError
from covey.messages import ToolResultBlock, ToolUseBlock, Usage
from covey.models.base import Model
from covey.tools.base import ToolContext

if TYPE_CHECKING:
    from covey.agent.subagents import AgentInput, AgentTool

__all__ = [
    "MODE_RANK",
    "OVERRIDING_MODES",
    "PROJECT_SCOPES",
    "ChildHooks",
    "Spawn",
    "child_mode",
    "task_notification",
    "usage_json",
]

OVERRIDING_MODES = ("bypassPermissions", "acceptEdits")
"""A parent in one of these modes gives it to its subagents, whatever their definition says."""


def child_mode(parent: str, defn: AgentDefinition) -> tuple[str, str | None]:
    """The permission mode a subagent runs in, and a warning when its definition asked for
    more than it gets. A parent in an overriding mode passes it on; otherwise the definition's
    `permissionMode` applies, except that a definition found in the project (which an agent
    or a cloned repository may have written) never raises the session's mode."""
    wanted = defn.permission_mode
    if parent in OVERRIDING_MODES or wanted is None:
        return parent, None
    if defn.scope in PROJECT_SCOPES and MODE_RANK.get(wanted, 4) > MODE_RANK.get(parent, 4):
        where = defn.path or defn.scope
        return parent, (
            f"subagent {defn.name} runs in {parent} mode, not {wanted}: a definition from the "
            f"project ({where}) cannot raise the session's permission mode; start the session "
            f"with --permission-mode {wanted}, or keep the definition in $COVEY_HOME/agents/"
        )
    return wanted, None


def usage_json(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input,
        "output_tokens": usage.output,
        "cache_read_input_tokens": usage.cache_read,
        "cache_creation_input_tokens": usage.cache_write,
    }


class ChildHooks:
    """The parent's hooks as a subagent sees them: Stop is SubagentStop, no UserPromptSubmit."""

    def __init__(self, parent: AgentHooks, agent_id: str, agent_type: str):
        self.root = parent
        self.parent = parent.for_agent(agent_id, agent_type)  # its events name the subagent
        self.agent_id = agent_id
        self.agent_type = agent_type

    def for_agent(self, agent_id: str, agent_type: str) -> AgentHooks:
        return ChildHooks(self.root, agent_id, agent_type)

    async def user_prompt(self, prompt: str) -> PromptOutcome:
        return PromptOutcome()

    async def pre_tool(self, call: ToolUseBlock) -> PreToolOutcome:
        return await self.parent.pre_tool(call)

    async def post_tool(self, call: ToolUseBlock, result: ToolResultBlock) -> str:
        return await self.parent.post_tool(call, result)

    async def stop(self, final_text: str, stop_hook_active: bool) -> str:
        return await self.parent.subagent_stop(
            self.agent_id, self.agent_type, final_text, stop_hook_active
        )

    async def pre_compact(self, trigger: str) -> bool:
        return await self.parent.pre_compact(trigger)

    async def post_compact(self, trigger: str, summary: str) -> None:
        await self.parent.post_compact(trigger, summary)

    async def subagent_start(self, agent_id: str, agent_type: str) -> str:
        return await self.parent.subagent_start(agent_id, agent_type)

    async def subagent_stop(
        self, agent_id: str, agent_type: str, final_text: str, stop_hook_active: bool
    ) -> str:
        return await self.parent.subagent_stop(agent_id, agent_type, final_text, stop_hook_active)


@dataclass
class _Outcome:
    agent_id: str
    text: str = ""
    error: str | None = None
    last_text: str = ""
    tool_uses: int = 0
    usage: Usage = field(default_factory=Usage)
    duration_ms: int = 0
    queued_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def trailer(self) -> dict[str, Any]:
        return {
            "agentId": self.agent_id,
            "totalToolUseCount": self.tool_uses,
            "totalDurationMs": self.duration_ms,
            "usage": usage_json(self.usage),
            "queued_ms": self.queued_ms,
            **self.extra,
        }


def task_notification(out: _Outcome, description: str) -> str:
    """How a background subagent's result reaches its parent: a user message."""
    status = "failed" if out.error is not None else "completed"
    summary = f'Agent "{description}" {status}' + (f": {out.error}" if out.error else "")
    result = out.text or out.last_text
    tokens = out.usage.total_input + out.usage.output
    return (
        f"<task-notification><task-id>{out.agent_id}</task-id><status>{status}</status>"
        f"<summary>{summary}</summary><result>{result}</result>"
        f"<usage><subagent_tokens>{tokens}</subagent_tokens>"
        f"<tool_uses>{out.tool_uses}</tool_uses><duration_ms>{out.duration_ms}</duration_ms>"
        "</usage></task-notification>"
    )


class _Watch:
    """Counts the child's tool uses and keeps its latest assistant text."""

    def __init__(self) -> None:
        self.tool_uses = 0
        self.last_text = ""

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, ToolFinished):
            self.tool_uses += 1
        elif isinstance(event, MessageAdded) and event.message.role == "assistant":
            self.last_text = event.message.text or self.last_text


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


@dataclass
class Spawn:
    tool: AgentTool
    args: AgentInput
    ctx: ToolContext
    definition: AgentDefinition
    model: Model
    mode: str
    record: ChildRecord
    warning: str | None = None
    """Why the mode is not the one the definition asked for (shown in the trailer)."""

    @classmethod
    def prepare(cls, tool: AgentTool, args: AgentInput, ctx: ToolContext) -> Spawn:
        """Resolve the definition, model and mode, and record the child (state queued)."""
        rt = tool.runtime
        defn = rt.definition(args.subagent_type or "general-purpose")
        model = rt.child_model(args.model, defn, tool.model)
        mode, warning = child_mode(tool.mode, defn)
        try:
            record = rt.recorder.start(
                defn,
                args.description,
                tool.agent_path,
                ctx.session_id,
                model=model.name,
                cwd=ctx.workspace,
                isolation=args.isolation or defn.isolation,
            )
        except UserError as e:
            raise ToolError(f"cannot start subagent {defn.name}: {e}") from None
        return cls(tool, args, ctx, defn, model, mode, record, warning)

    def launched(self) -> str:
        return json.dumps(
            {
                "status": "async_launched",
                "agentId": self.record.agent_id,
                "description": self.args.description,
            }
        )

    async def run_in_foreground(self) -> str:
        out = await self._run(background=False)
        trailer = json.dumps(out.trailer(), separators=(",", ":"))
        if out.error is not None:
            partial = f"\nIts last output:\n{out.last_text}" if out.last_text else ""
            raise ToolError(f"Agent terminated early: {out.error}{partial}\n\n{trailer}")
        return f"{out.text}\n\n{trailer}"

    async def run_in_background(self) -> str:
        """The task-notification text; never raises except when cancelled."""
        try:
            out = await self._run(background=True)
        except Exception as e:  # a bug or a record that failed: report it, lose nothing
            out = _Outcome(self.record.agent_id, error=f"{type(e).__name__}: {e}")
        return task_notification(out, self.args.description)

    def _notice(self, kind: Literal["queued", "started", "finished"], **kw: Any) -> SubagentNotice:
        return SubagentNotice(
            kind,
            self.record.agent_id,
            self.definition.name,
            self.args.description,
            self.ctx.session_id,
            **kw,
        )

    async def _run(self, *, background: bool) -> _Outcome:
        rt = self.tool.runtime
        out = _Outcome(self.record.agent_id)
        state, reason = "stopped", "interrupted"
        asked = time.monotonic()
        try:
            async with rt.slot(self._notice("queued")):
                out.queued_ms = _ms(asked)
                started = time.monotonic()
                async with self.record.running():
                    try:
                        out.text = await self._child(out, background=background)
                        state, reason = "completed", "end_turn"
                    except RunError as e:
                        state, reason, out.error = "failed", e.reason, str(e)
                out.duration_ms = _ms(started)
        finally:
            out.extra = self.record.finish(state, reason)
            if self.warning:
                out.extra["warning"] = self.warning
            rt.recorder.notice(self._notice("finished", state=state))
        return out

    async def _child(self, out: _Outcome, *, background: bool) -> str:
        rt, defn, record = self.tool.runtime, self.definition, self.record
        try:
            policy = rt.make_policy(self.mode, record.workspace)
        except UserError as e:
            raise ToolError(f"subagent {defn.name}: {e}") from None
        spawner = rt.agent_tool(
            model=self.model,
            mode=self.mode,
            agent_path=record.agent_path,
            depth=self.tool.depth + 1,
        )
        available = [t.name for t in rt.tools()] + ["Agent"]
        names = resolve_tools(defn, available, depth_allows_agent=spawner is not None)
        tools = [t for t in rt.tools() if t.name in names]
        if spawner is not None and "Agent" in names:
            tools.append(spawner)
        ctx = ToolContext(
            workspace=record.workspace,
            extra_dirs=self.ctx.extra_dirs,
            session_id=record.agent_id,
            sandbox=self.ctx.sandbox,
            tool_runs=self.ctx.tool_runs,
            file_owners=self.ctx.file_owners,
        )
        watch = _Watch()
        agent = Agent(
            self.model,
            tools,
            definition_system_prompt(defn, record.workspace, rt.project_root),
            ctx,
            policy,
            approver=None if background else rt.approver,
            hooks=ChildHooks(rt.hooks, record.agent_id, defn.name),
            max_turns=defn.max_turns,
            auto_compact_tokens=int(self.model.context_window * 0.9),
            agent_name=defn.name,
            observers=[*record.observers, watch],
            inbox=spawner.inbox if spawner is not None else None,
            request_guard=rt.request_guard,
        )
        context = await rt.hooks.subagent_start(record.agent_id, defn.name)
        try:
            result = await agent.run(
                f"{self.args.prompt}\n\n{context}" if context else self.args.prompt
            )
        finally:
            out.tool_uses, out.last_text, out.usage = watch.tool_uses, watch.last_text, agent.usage
        return result.result
