"""Running the tool calls of one model response: hooks, permissions, concurrency.

Consecutive concurrent calls (read-only tools, subagents) run at once; the others run one at a
time, in order. Each call goes: parse → validate (paths) → PreToolUse hooks → permission rules
→ run → PostToolUse hooks. Every failure is a `ToolError` the model sees as an error result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from covey.agent.events import AgentEvent, ToolFinished, ToolStarted
from covey.agent.hooks import AgentHooks
from covey.errors import ToolError
from covey.messages import ToolResultBlock, ToolUseBlock
from covey.tools.base import Tool, ToolContext
from covey.tools.permissions import Decision, PermissionPolicy

__all__ = ["Approval", "Approver", "ToolRunner"]


@dataclass(frozen=True)
class Approval:
    """A full answer to "ask" (the Claude Agent SDK's `can_use_tool`): allowed or not, the
    input to run with instead, and what the model is told when it is denied."""

    allowed: bool
    updated_input: dict[str, Any] | None = None
    message: str = ""


Approver = Callable[[ToolUseBlock, Decision], Awaitable[bool | Approval]]
"""Asked when a permission rule says "ask"; True (or an allowing `Approval`) runs the call.
No approver = denied."""


class ToolRunner:
    def __init__(
        self,
        tools: Mapping[str, Tool[Any]],
        ctx: ToolContext,
        policy: PermissionPolicy,
        hooks: AgentHooks,
        emit: Callable[[AgentEvent], None],
        approver: Approver | None = None,
    ):
        self.tools = tools
        self.ctx = replace(ctx, rules=policy)  # tools check the paths they really open
        self.policy = policy
        self.hooks = hooks
        self.emit = emit
        self.approver = approver
        self.permission_denials: list[dict[str, Any]] = []

    async def execute(self, calls: list[ToolUseBlock]) -> list[ToolResultBlock]:
        results: list[ToolResultBlock] = []
        i = 0
        while i < len(calls):
            j = i + 1
            if self._concurrent(calls[i]):
                while j < len(calls) and self._concurrent(calls[j]):
                    j += 1
            results += await asyncio.gather(*(self.run_one(c) for c in calls[i:j]))
            i = j
        return results

    async def run_one(self, call: ToolUseBlock) -> ToolResultBlock:
        self.emit(ToolStarted(call))
        try:
            output = await self._run(call)
            result = ToolResultBlock(tool_use_id=call.id, content=output)
        except ToolError as e:
            result = ToolResultBlock(tool_use_id=call.id, content=str(e), is_error=True)
        feedback = await self.hooks.post_tool(call, result)
        if feedback:
            result = result.model_copy(update={"content": f"{result.content}\n\n{feedback}"})
        self.emit(ToolFinished(call, result))
        return result

    async def _run(self, call: ToolUseBlock) -> str:
        tool = self.tools.get(call.name)
        if tool is None:
            raise ToolError(f"no tool named {call.name!r}; available: {', '.join(self.tools)}")
        tool_input = call.input
        args = tool.parse(tool_input)
        tool.validate(args, self.ctx)
        hook = await self.hooks.pre_tool(call)
        if hook.decision == "deny":
            raise ToolError(f"Blocked by a PreToolUse hook: {hook.reason}")
        if hook.updated_input is not None:
            tool_input = hook.updated_input
            args = tool.parse(tool_input)
            tool.validate(args, self.ctx)
        decision = self.policy.decide(tool, tool_input)
        behavior = decision.behavior
        if behavior != "deny" and hook.decision is not None:
            behavior = hook.decision  # a hook may allow or ask; deny rules always win
        updated = await self._check(call, tool_input, decision, behavior)
        if updated is not None:  # the approver changed the input: checked like the model's
            args = tool.parse(updated)
            tool.validate(args, self.ctx)
        return await tool.run(args, self.ctx)

    async def _check(
        self, call: ToolUseBlock, tool_input: dict[str, Any], decision: Decision, behavior: str
    ) -> dict[str, Any] | None:
        """Raise a ToolError unless the call may run; the input an approver put instead."""
        if behavior == "allow":
            return None
        answer: bool | Approval = False
        if behavior == "ask" and self.approver:
            answer = await self.approver(call, decision)
        approval = answer if isinstance(answer, Approval) else Approval(answer)
        if approval.allowed:
            return approval.updated_input
        self.permission_denials.append(
            {"tool_name": call.name, "tool_use_id": call.id, "tool_input": tool_input}
        )
        raise ToolError(
            approval.message or f"Permission to use {call.name} was denied: {decision.reason}"
        )

    def _concurrent(self, call: ToolUseBlock) -> bool:
        tool = self.tools.get(call.name)
        return tool is not None and tool.concurrent
