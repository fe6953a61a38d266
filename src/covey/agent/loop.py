"""The agent loop: query the model → run the tools it asks for → append the results → repeat.

`run()` loops `step()` until a model response asks for no tool (the turn ends) or a limit is
hit. Limits and stops are exceptions carrying their reason (`covey.errors.RunError`). Every
message added to the conversation is announced as an event (`covey.agent.events`), the hook
point where sessions are persisted. Observers are plain functions called in order; one that
raises stops the run (a session that cannot be persisted must not go on).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from covey.agent.compact import compact_messages
from covey.agent.events import AgentEvent, Compacted, MessageAdded, RequestBilled, TextDelta
from covey.agent.guard import RequestGuard, unguarded
from covey.agent.hooks import AgentHooks, NoHooks
from covey.agent.mailbox import Mailbox, Receipt
from covey.agent.subagents_inbox import BackgroundTasks
from covey.agent.tool_runner import Approver, ToolRunner
from covey.errors import MaxTurnsExceeded, PromptBlocked
from covey.messages import Message, Usage
from covey.models.base import Model, ModelRequest, ModelResponse
from covey.tools.base import Tool, ToolContext
from covey.tools.permissions import PermissionPolicy

__all__ = [
    "MAX_STOP_BLOCKS",
    "Agent",
    "Approver",
    "Observer",
    "PromptBlocked",
    "RequestGuard",
    "RunResult",
]

Observer = Callable[[AgentEvent], None]
MAX_STOP_BLOCKS = 8
"""A Stop hook that keeps blocking is overridden after this many times in a row."""


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
        hooks: AgentHooks | None = None,
        max_turns: int | None = None,
        auto_compact_tokens: int | None = None,
        agent_name: str | None = None,
        observers: Sequence[Observer] = (),
        messages: Sequence[Message] = (),
        inbox: BackgroundTasks | None = None,
        mailbox: Mailbox | None = None,
        request_guard: RequestGuard | None = None,
    ):
        self.model = model
        self.tools = {t.name: t for t in tools if policy.tool_enabled(t.name)}
        self.system = system
        self.hooks = hooks or NoHooks()
        self.runner = ToolRunner(self.tools, ctx, policy, self.hooks, self._emit, approver)
        self.max_turns = max_turns
        self.auto_compact_tokens = auto_compact_tokens
        self.agent_name = agent_name
        self.observers = list(observers)
        self.messages: list[Message] = list(messages)
        self.inbox = inbox or BackgroundTasks()
        """Background subagents this agent launched; their notices join the conversation."""
        self.mailbox = mailbox
        """Messages from other agents (teams); it also decides whether a turn's end ends the run."""
        self.request_guard = request_guard
        """The session's budget check around each model request (None: none)."""
        self.num_turns = 0
        self.usage = Usage()
        self.context_tokens = 0
        """Tokens of the conversation as of the latest response (input + output)."""
        self.api_ms = 0
        """Milliseconds spent waiting for the model's turn responses."""

    @property
    def permission_denials(self) -> list[dict[str, Any]]:
        return self.runner.permission_denials

    async def run(self, prompt: str) -> RunResult:
        """Add the prompt and step until the turn ends. Raises `RunError` on limits."""
        started = time.monotonic()
        outcome = await self.hooks.user_prompt(prompt)
        if outcome.blocked:
            raise PromptBlocked(f"a UserPromptSubmit hook blocked the prompt: {outcome.reason}")
        context = f"\n\n{outcome.additional_context}" if outcome.additional_context else ""
        self.add_prompt(prompt + context)
        stop_blocks = 0
        try:
            while True:
                try:
                    await self.step()
                except _TurnEnded as end:
                    if await self.inbox.wait_pending():
                        continue  # background results arrive before the turn may end
                    reason = await self.hooks.stop(end.message.text, stop_blocks > 0)
                    if reason and stop_blocks < MAX_STOP_BLOCKS:
                        stop_blocks += 1
                        self.add_prompt(reason)
                        continue
                    if self.mailbox is not None and await self.mailbox.turn_ended(end.message.text):
                        continue
                    return RunResult(
                        result=end.message.text,
                        num_turns=self.num_turns,
                        usage=self.usage,
                        duration_ms=int((time.monotonic() - started) * 1000),
                        permission_denials=self.permission_denials,
                    )
        finally:
            await self.inbox.aclose()
            if self.mailbox is not None:
                await self.mailbox.aclose()

    async def step(self) -> None:
        if self.max_turns is not None and self.num_turns >= self.max_turns:
            raise MaxTurnsExceeded(f"reached the maximum of {self.max_turns} turns")
        if self.auto_compact_tokens and self.context_tokens >= self.auto_compact_tokens:
            await self.compact("auto")
        for notice in self.inbox.drain():
            self.add_prompt(notice)
        if self.mailbox is not None:
            for delivery in await self.mailbox.collect():
                self.add(Message.user(delivery.text), receipt=delivery.receipt)
        request = ModelRequest(
            system=self.system,
            messages=self.messages,
            tools=[t.spec() for t in self.tools.values()],
            agent_name=self.agent_name,
        )
        guard = self.request_guard or unguarded
        asked = time.monotonic()
        async with guard(request, self.model):  # the budget check
            response = await self.model.complete(
                request, on_text=self._on_text if self.observers else None
            )
        self.api_ms += int((time.monotonic() - asked) * 1000)
        self.num_turns += 1
        self.usage = self.usage + response.usage
        self.context_tokens = response.usage.total_input + response.usage.output
        self.add(response.message, response.usage, response.model, response.stop_reason)
        calls = response.message.tool_uses
        if not calls:
            raise _TurnEnded(response.message)
        results = await self.runner.execute(calls)
        self.add(Message(role="user", content=list(results)))

    async def compact(self, trigger: str, instructions: str | None = None) -> bool:
        """Replace older turns by a summary (or trim their tool outputs when the model gives
        no summary); False when blocked or there is too little."""
        if not await self.hooks.pre_compact(trigger):
            return False
        tools = [t.spec() for t in self.tools.values()]
        done = await compact_messages(
            self.model,
            self.system,
            self.messages,
            tools,
            agent_name=self.agent_name,
            instructions=instructions,
            guard=self.request_guard or unguarded,
            on_answer=self._bill,
        )
        if done is None:
            return False
        self.messages = done.messages
        self._emit(
            Compacted(done.messages, done.summary, trigger, self.context_tokens, done.method)
        )
        self.context_tokens = 0
        await self.hooks.post_compact(trigger, done.summary)
        return True

    def _bill(self, answer: ModelResponse) -> None:
        """A model request that adds no message to the conversation still costs tokens."""
        self.usage = self.usage + answer.usage
        self._emit(RequestBilled(answer.usage, answer.model, "compact"))

    def add_prompt(self, text: str) -> None:
        """A user prompt, as a message of its own even right after tool results: the
        conversation is append-only, like the transcript that mirrors it, and the adapters
        join adjacent user messages into one turn (`covey.models.wire`)."""
        self.add(Message.user(text))

    def add(
        self,
        message: Message,
        usage: Usage | None = None,
        model: str | None = None,
        stop_reason: str | None = None,
        *,
        receipt: Receipt | None = None,
    ) -> None:
        self.messages.append(message)
        self._emit(MessageAdded(message, usage, model, stop_reason, receipt))

    def _emit(self, event: AgentEvent) -> None:
        for observer in self.observers:
            observer(event)

    def _on_text(self, text: str) -> None:
        self._emit(TextDelta(text))
