"""The agent loop: query the model → run the tools it asks for → append the results → repeat.

`run()` loops `step()` until a model response asks for no tool (the turn ends) or a limit is
hit. Limits and stops are exceptions carrying their reason (`covey.errors.RunError`). Every
message added to the conversation is announced as a `MessageAdded` event, the hook point
where sessions are persisted. Observers are plain functions called in order; one that raises
stops the run (a session that cannot be persisted must not go on).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from covey.agent.events import AgentEvent, MessageAdded, TextDelta, ToolStarted
from covey.errors import MaxTurnsExceeded, ToolError
from covey.messages import Message, ToolResultBlock, ToolUseBlock, Usage
from covey.models.base import Model, ModelRequest
from covey.tools.base import Tool, ToolContext
from covey.tools.permissions import Decision, PermissionPolicy

__all__ = ["Agent", "Approver", "Observer", "RunResult"]

Approver = Callable[[ToolUseBlock, Decision], Awaitable[bool]]
"""Asked when a permission rule says "ask"; True runs the call. No approver = denied."""
Observer = Callable[[AgentEvent], None]


@dataclass
class RunResult:
    result: str
    """The final assistant text."""
    num_turns: int
    usage: Usage
    duration_ms: int
    permission_denials: list[dict[str, Any]] = field(default_factory=list)


class _TurnEnded(Exception):
    def __init__(self, message: Message):
        self.message = message


class Agent:
    def __init__(
        self,
        model: Model,
        tools: Sequence[Tool[Any]],
        system: str,
        ctx: ToolContext,
        policy: PermissionPolicy,
        *,
        approver: Approver | None = None,
        max_turns: int | None = None,
        agent_name: str | None = None,
        observers: Sequence[Observer] = (),
        messages: Sequence[Message] = (),
    ):
        self.model = model
        self.tools = {t.name: t for t in tools if policy.tool_enabled(t.name)}
        self.system = system
        self.ctx = ctx
        self.policy = policy
        self.approver = approver
        self.max_turns = max_turns
        self.agent_name = agent_name
        self.observers = list(observers)
        self.messages: list[Message] = list(messages)
        self.num_turns = 0
        self.usage = Usage()
        self.permission_denials: list[dict[str, Any]] = []

    async def run(self, prompt: str) -> RunResult:
        """Add the prompt and step until the turn ends. Raises `RunError` on limits."""
        started = time.monotonic()
        self.add(Message.user(prompt))
        while True:
            try:
                await self.step()
            except _TurnEnded as end:
                return RunResult(
                    result=end.message.text,
                    num_turns=self.num_turns,
                    usage=self.usage,
                    duration_ms=int((time.monotonic() - started) * 1000),
                    permission_denials=self.permission_denials,
                )

    async def step(self) -> None:
        if self.max_turns is not None and self.num_turns >= self.max_turns:
            raise MaxTurnsExceeded(f"reached the maximum of {self.max_turns} turns")
        response = await self.model.complete(
            ModelRequest(
                system=self.system,
                messages=self.messages,
                tools=[t.spec() for t in self.tools.values()],
                agent_name=self.agent_name,
            ),
            on_text=self._on_text if self.observers else None,
        )
        self.num_turns += 1
        self.usage = self.usage + response.usage
        self.add(response.message, response.usage, response.model, response.stop_reason)
        calls = response.message.tool_uses
        if not calls:
            raise _TurnEnded(response.message)
        results = await self.execute(calls)
        self.add(Message(role="user", content=list(results)))

    async def execute(self, calls: list[ToolUseBlock]) -> list[ToolResultBlock]:
        """Runs calls in order; consecutive read-only calls run concurrently."""
        results: list[ToolResultBlock] = []
        i = 0
        while i < len(calls):
            j = i + 1
            if self._read_only(calls[i]):
                while j < len(calls) and self._read_only(calls[j]):
                    j += 1
            results += await asyncio.gather(*(self.run_tool(c) for c in calls[i:j]))
            i = j
        return results

    async def run_tool(self, call: ToolUseBlock) -> ToolResultBlock:
        self._emit(ToolStarted(call))
        try:
            tool = self.tools.get(call.name)
            if tool is None:
                raise ToolError(f"no tool named {call.name!r}; available: {', '.join(self.tools)}")
            args = tool.parse(call.input)
            tool.validate(args, self.ctx)
            await self._check_permission(tool, call)
            output = await tool.run(args, self.ctx)
        except ToolError as e:
            return ToolResultBlock(tool_use_id=call.id, content=str(e), is_error=True)
        return ToolResultBlock(tool_use_id=call.id, content=output)

    async def _check_permission(self, tool: Tool[Any], call: ToolUseBlock) -> None:
        decision = self.policy.decide(tool, call.input)
        if decision.behavior == "allow":
            return
        if decision.behavior == "ask" and self.approver and await self.approver(call, decision):
            return
        self.permission_denials.append(
            {"tool_name": call.name, "tool_use_id": call.id, "tool_input": call.input}
        )
        raise ToolError(f"Permission to use {call.name} was denied: {decision.reason}")

    def _read_only(self, call: ToolUseBlock) -> bool:
        tool = self.tools.get(call.name)
        return tool is not None and tool.read_only

    def add(
        self,
        message: Message,
        usage: Usage | None = None,
        model: str | None = None,
        stop_reason: str | None = None,
    ) -> None:
        self.messages.append(message)
        self._emit(MessageAdded(message, usage, model, stop_reason))

    def _emit(self, event: AgentEvent) -> None:
        for observer in self.observers:
            observer(event)

    def _on_text(self, text: str) -> None:
        self._emit(TextDelta(text))
