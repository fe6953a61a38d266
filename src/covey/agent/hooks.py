"""The points where hooks can act on the loop, as a small protocol the loop calls.

The agent layer knows nothing of how hooks run; `NoHooks` does nothing. The session layer
implements `AgentHooks` over covey's command hooks (Claude Code's contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from covey.messages import ToolResultBlock, ToolUseBlock

__all__ = ["AgentHooks", "NoHooks", "PreToolOutcome", "PromptOutcome"]


@dataclass(frozen=True)
class PromptOutcome:
    blocked: bool = False
    reason: str = ""
    additional_context: str = ""


@dataclass(frozen=True)
class PreToolOutcome:
    decision: Literal["allow", "deny", "ask"] | None = None
    """A hook's permission decision; deny also covers exit code 2 (blocking)."""
    reason: str = ""
    updated_input: dict[str, Any] | None = None


class AgentHooks(Protocol):
    async def user_prompt(self, prompt: str) -> PromptOutcome: ...

    async def pre_tool(self, call: ToolUseBlock) -> PreToolOutcome: ...

    async def post_tool(self, call: ToolUseBlock, result: ToolResultBlock) -> str:
        """Feedback for the model (appended to the result), or ""."""
        ...

    async def stop(self, final_text: str, stop_hook_active: bool) -> str:
        """A reason to keep working (becomes the next user message), or "" to stop."""
        ...

    async def pre_compact(self, trigger: str) -> bool:
        """False blocks the compaction."""
        ...

    async def post_compact(self, trigger: str, summary: str) -> None: ...

    async def subagent_start(self, agent_id: str, agent_type: str) -> str:
        """Context to add to the subagent's task message, or ""."""
        ...

    async def subagent_stop(
        self, agent_id: str, agent_type: str, final_text: str, stop_hook_active: bool
    ) -> str:
        """A reason to keep the subagent working (its next instruction), or "" to stop."""
        ...

    def for_agent(self, agent_id: str, agent_type: str) -> AgentHooks:
        """The same hooks as seen from inside subagent `agent_id`: every event they run
        there carries `agent_id` and `agent_type`."""
        ...


class NoHooks:
    async def user_prompt(self, prompt: str) -> PromptOutcome:
        return PromptOutcome()

    async def pre_tool(self, call: ToolUseBlock) -> PreToolOutcome:
        return PreToolOutcome()

    async def post_tool(self, call: ToolUseBlock, result: ToolResultBlock) -> str:
        return ""

    async def stop(self, final_text: str, stop_hook_active: bool) -> str:
        return ""

    async def pre_compact(self, trigger: str) -> bool:
        return True

    async def post_compact(self, trigger: str, summary: str) -> None:
        return None

    async def subagent_start(self, agent_id: str, agent_type: str) -> str:
        return ""

    async def subagent_stop(
        self, agent_id: str, agent_type: str, final_text: str, stop_hook_active: bool
    ) -> str:
        return ""

    def for_agent(self, agent_id: str, agent_type: str) -> AgentHooks:
        return self
