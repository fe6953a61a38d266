"""Typed events the loop emits, for UIs and for persistence.

`MessageAdded` fires after every message joins the conversation (the prompt, each model
response, each batch of tool results): it is the hook point where a session is persisted.
"""

from __future__ import annotations

from dataclasses import dataclass

from covey.messages import Message, ToolUseBlock, Usage

__all__ = ["AgentEvent", "MessageAdded", "TextDelta", "ToolStarted"]


@dataclass(frozen=True)
class MessageAdded:
    message: Message
    usage: Usage | None = None
    """Set on model responses only."""
    model: str | None = None
    stop_reason: str | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolStarted:
    call: ToolUseBlock


AgentEvent = MessageAdded | TextDelta | ToolStarted
