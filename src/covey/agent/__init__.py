"""The agent: one loop of model ⇄ tools, its events and its system prompt."""

from covey.agent.events import AgentEvent, MessageAdded, TextDelta, ToolStarted
from covey.agent.loop import Agent, Approver, RunResult

__all__ = [
    "Agent",
    "AgentEvent",
    "Approver",
    "MessageAdded",
    "RunResult",
    "TextDelta",
    "ToolStarted",
]
