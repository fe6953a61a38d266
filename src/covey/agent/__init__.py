"""The agent: one loop of model ⇄ tools, its events, hooks points and system prompt.

The loop's names load on first use (PEP 562), so a module that needs only a part of the
agent (definitions, events, the prompt) does not import the loop and every tool with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from covey.agent.events import (
        AgentEvent,
        Compacted,
        MessageAdded,
        RequestBilled,
        TextDelta,
        ToolFinished,
        ToolStarted,
    )
    from covey.agent.loop import Agent, Approver, PromptBlocked, RunResult

__all__ = [
    "Agent",
    "AgentEvent",
    "Approver",
    "Compacted",
    "MessageAdded",
    "PromptBlocked",
    "RequestBilled",
    "RunResult",
    "TextDelta",
    "ToolFinished",
    "ToolStarted",
]

_FROM_LOOP = frozenset({"Agent", "Approver", "PromptBlocked", "RunResult"})
_FROM_EVENTS = frozenset(
    {
        "AgentEvent",
        "Compacted",
        "MessageAdded",
        "RequestBilled",
        "TextDelta",
        "ToolFinished",
        "ToolStarted",
    }
)


def __getattr__(name: str) -> Any:
    if name in _FROM_LOOP:
        from covey.agent import loop

        return getattr(loop, name)
    if name in _FROM_EVENTS:  # the events carry messages: a dispatch's plan needs neither
        from covey.agent import events

        return getattr(events, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
