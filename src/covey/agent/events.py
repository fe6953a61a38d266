"""Typed events the loop emits, for UIs and for persistence.

`MessageAdded` fires after every message joins the conversation (the prompt, each model
response, each batch of tool results); `ToolFinished` after each single tool result, before
its batch is complete; `RequestBilled` after a model request that adds no message (a
compaction's summary request), so its cost is counted; `Compacted` when the conversation was
replaced by a summary and a tail.
These are the hook points where a session is persisted. `BudgetWarning` comes from the
session's budget check (`covey.budget.spend_limits`), told to the same observers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from covey.messages import Message, ToolResultBlock, ToolUseBlock, Usage

__all__ = [
    "AgentEvent",
    "BudgetWarning",
    "Compacted",
    "MessageAdded",
    "RequestBilled",
    "TextDelta",
    "ToolFinished",
    "ToolStarted",
]


@dataclass(frozen=True)
class MessageAdded:
    message: Message
    usage: Usage | None = None
    """Set on model responses only."""
    model: str | None = None
    stop_reason: str | None = None
    receipt: Callable[[Any, int], None] | None = None
    """Called by the persister inside the transaction that writes this message, with the
    connection and the entry's seq (`covey.agent.mailbox.Receipt`)."""


@dataclass(frozen=True)
class RequestBilled:
    usage: Usage
    model: str
    purpose: str
    """Why it was asked: `compact`."""


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolStarted:
    call: ToolUseBlock


@dataclass(frozen=True)
class ToolFinished:
    call: ToolUseBlock
    result: ToolResultBlock


@dataclass(frozen=True)
class Compacted:
    messages: list[Message]
    """The whole new conversation: the summary message, then the verbatim tail."""
    summary: str
    """The model's summary; when it gave none, a note saying what was done instead."""
    trigger: str
    """`auto` (the context neared its window) or `manual`."""
    pre_tokens: int
    """Tokens of the conversation before it was compacted."""
    method: str = "summary"
    """`summary`, `summary_without_tools` (given on the retry that allowed no tool calls) or
    `trimmed_tool_outputs` (no summary twice: the history kept, older tool outputs trimmed)."""


@dataclass(frozen=True)
class BudgetWarning:
    """A spend limit is 80% used (once per budget per session)."""

    budget: str
    """`session` or `daily`."""
    spent_usd: float
    limit_usd: float


AgentEvent = (
    MessageAdded
    | RequestBilled
    | TextDelta
    | ToolStarted
    | ToolFinished
    | Compacted
    | BudgetWarning
)
