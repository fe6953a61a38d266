"""The `Model` protocol every provider adapter implements, and its request/response types."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from covey.messages import Message, Usage

__all__ = ["Model", "ModelRequest", "ModelResponse", "TextSink", "ToolSpec"]

TextSink = Callable[[str], None]
"""Receives text deltas as they stream, for UIs. Never required for correctness."""


@dataclass(frozen=True)
class ToolSpec:
    """What the model is told about one tool."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass
class ModelRequest:
    system: str
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    max_tokens: int = 16_000
    agent_name: str | None = None
    """Which agent is asking (a subagent definition name); scripted models pick a script by it."""
    purpose: str = "turn"
    """"turn" for the agent's own turns, "compact" for a compaction summary."""
    allow_tool_calls: bool = True
    """False: the tools are still described (a conversation holding tool blocks must define
    them) but the model may call none (`tool_choice` none)."""


@dataclass
class ModelResponse:
    message: Message
    """The assistant message: text and tool_use blocks."""
    stop_reason: str
    """end_turn | tool_use | max_tokens | stop_sequence | refusal (Anthropic's words)."""
    usage: Usage
    model: str
    """The model id the provider reports having used."""


class Model(Protocol):
    """A chat model that can call tools.

    Adapters translate provider errors into covey's exception tree (`covey.errors`) and retry
    what is worth retrying themselves, so callers see a response or a `RunError`.
    """

    @property
    def name(self) -> str:
        """The spec it was built from, e.g. `anthropic:claude-sonnet-4-5`."""
        ...

    @property
    def context_window(self) -> int:
        """Tokens the model accepts in one request."""
        ...

    async def complete(
        self, request: ModelRequest, on_text: TextSink | None = None
    ) -> ModelResponse: ...
