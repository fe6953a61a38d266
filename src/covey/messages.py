"""Typed messages and content blocks, and the one serializer for them.

A conversation is a list of `Message`s. Each message has a role and a list of content
blocks: `TextBlock`, `ToolUseBlock` (the model asks for a tool) and `ToolResultBlock`
(the answer, sent back in the next user message). The shapes follow the Anthropic
Messages API; the OpenAI adapter translates at its boundary.

`dump_message` / `load_message` are the only way messages cross a process or the store.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "INVALID_ARGUMENTS_KEY",
    "ContentBlock",
    "Message",
    "TextBlock",
    "ToolResultBlock",
    "ToolUseBlock",
    "Usage",
    "compacted_turns",
    "dump_message",
    "load_message",
    "summary_message",
]


INVALID_ARGUMENTS_KEY = "__covey_invalid_arguments__"
"""A tool_use input holding only this key carries arguments the provider sent that were not a
JSON object (OpenAI-compatible endpoints send arguments as a string that may not parse). The
raw string is kept so the conversation can be replayed; the tool reports the error."""


class _Block(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TextBlock(_Block):
    type: Literal["text"] = "text"
    text: str


class ToolUseBlock(_Block):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(_Block):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: str
    is_error: bool = False


ContentBlock = Annotated[TextBlock | ToolUseBlock | ToolResultBlock, Field(discriminator="type")]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: list[ContentBlock]

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(role="user", content=[TextBlock(text=text)])

    @property
    def text(self) -> str:
        """All text blocks joined; tool blocks are left out."""
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    @property
    def tool_uses(self) -> list[ToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock)]

    @property
    def tool_results(self) -> list[ToolResultBlock]:
        return [b for b in self.content if isinstance(b, ToolResultBlock)]


class Usage(BaseModel):
    """Tokens of one or more model responses, normalised across providers.

    `input` counts uncached input only; total input = input + cache_read + cache_write.
    """

    model_config = ConfigDict(frozen=True)

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input=self.input + other.input,
            output=self.output + other.output,
            cache_read=self.cache_read + other.cache_read,
            cache_write=self.cache_write + other.cache_write,
        )

    @property
    def total_input(self) -> int:
        return self.input + self.cache_read + self.cache_write

    def to_anthropic(self) -> dict[str, int]:
        """The usage object in the shape Claude Code prints (`--output-format json`)."""
        return {
            "input_tokens": self.input,
            "output_tokens": self.output,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation_input_tokens": self.cache_write,
        }


_message_adapter: TypeAdapter[Message] = TypeAdapter(Message)


def dump_message(message: Message) -> dict[str, Any]:
    return message.model_dump(mode="json")


def load_message(data: object) -> Message:
    return _message_adapter.validate_python(data)


_SUMMARY_MARKER = re.compile(r'^<compact-summary turns="(\d+)">')


def summary_message(summary: str, turns: int) -> Message:
    return Message.user(
        f'<compact-summary turns="{turns}">\nThis session continues an earlier conversation, '
        f"summarised here:\n{summary}\n</compact-summary>"
    )


def compacted_turns(messages: list[Message]) -> int:
    """Assistant turns a leading summary message stands for (0 when there is none)."""
    if messages and messages[0].role == "user":
        match = _SUMMARY_MARKER.match(messages[0].text)
        if match:
            return int(match.group(1))
    return 0
