"""The agent: one loop of model ⇄ tools, its events, hooks points and system prompt."""

from covey.agent.events import (
    AgentEvent,
    Compacted,
    MessageAdded,
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
    "RunResult",
    "TextDelta",
    "ToolFinished",
    "ToolStarted",
]
