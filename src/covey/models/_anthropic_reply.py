"""The assistant message of an Anthropic Messages stream, assembled event by event
(`covey.models.anthropic`): text and tool_use blocks by index, usage figures as they grow,
and a `MalformedStream` for an event of the wrong shape."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from covey.messages import INVALID_ARGUMENTS_KEY, Message, TextBlock, ToolUseBlock, Usage
from covey.models._client import type_name
from covey.models._http import MalformedStream
from covey.models.base import ModelResponse, TextSink

__all__ = ["AnthropicReply"]


@dataclass
class _ToolPart:
    id: str
    name: str
    start_input: dict[str, Any]
    json_parts: list[str] = field(default_factory=list)

    def block(self) -> ToolUseBlock:
        raw = "".join(self.json_parts)
        if not raw.strip():
            return ToolUseBlock(id=self.id, name=self.name, input=self.start_input)
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            parsed = {INVALID_ARGUMENTS_KEY: raw}
        return ToolUseBlock(id=self.id, name=self.name, input=parsed)


class AnthropicReply:
    """The assistant message, assembled from stream events as they come."""

    def __init__(self, on_text: TextSink | None) -> None:
        self.on_text = on_text
        self.model = ""
        self.blocks: dict[int, list[str] | _ToolPart] = {}
        self.other_blocks: set[int] = set()
        """Blocks of kinds covey does not keep (thinking…): their deltas are ignored."""
        self.usage: dict[str, int] = {}
        self.stop_reason: str | None = None
        self.done = False
        self.tool_began = False

    def feed(self, event: object) -> None:
        """Take one stream event (a decoded JSON object as `Fields`); MalformedStream when it
        does not fit the reply so far (a field may be missing or mistyped)."""
        try:
            self._feed(event)
        except (AttributeError, TypeError) as e:
            name = getattr(event, "type", type(event).__name__)
            raise MalformedStream(f"a {name} event of the wrong shape: {e}") from e

    def _feed(self, event: Any) -> None:
        # Dispatch on `type`: events and blocks of types covey does not know are skipped.
        kind = event.type
        if kind == "message_start":
            model = event.message.model
            self.model = model if isinstance(model, str) else self.model
            self._count(event.message.usage)
        elif kind == "content_block_start":
            self._start(self._new_index(event.index), event.content_block)
        elif kind == "content_block_delta":
            self._delta(event.index, event.delta)
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            self._count(event.usage)
        elif kind == "message_stop":
            self.done = True
        # Other event types (content_block_stop, future ones) are ignored, as the API asks.

    def _new_index(self, index: object) -> int:
        if not isinstance(index, int):
            raise MalformedStream(f"content_block_start with index {index!r}, not a number")
        if index in self.blocks or index in self.other_blocks:
            raise MalformedStream(f"content_block_start for block {index}, which already began")
        return index

    def _start(self, index: int, block: Any) -> None:
        kind = getattr(block, "type", None)
        if kind == "text":
            _expect_str(block.text, "text block's text")
            self.blocks[index] = [block.text]
            self._emit(block.text)
        elif kind == "tool_use":
            _expect_str(block.id, "tool_use block's id")
            _expect_str(block.name, "tool_use block's name")
            self.tool_began = True
            start = block.input if isinstance(block.input, dict) else {}
            self.blocks[index] = _ToolPart(block.id, block.name, start)
        elif isinstance(kind, str):
            self.other_blocks.add(index)  # thinking, server tools, future kinds
        else:
            raise MalformedStream(f"content_block_start for block {index} without a block")

    def _delta(self, index: int, delta: Any) -> None:
        if index in self.other_blocks:
            return
        part = self.blocks.get(index)
        if part is None:
            raise MalformedStream(f"a delta for content block {index!r}, which never started")
        kind = getattr(delta, "type", None)
        if kind == "text_delta":
            if not isinstance(part, list):
                raise MalformedStream(f"a text_delta for content block {index}, a tool_use")
            _expect_str(delta.text, "text_delta's text")
            part.append(delta.text)
            self._emit(delta.text)
        elif kind == "input_json_delta":
            if not isinstance(part, _ToolPart):
                raise MalformedStream(f"an input_json_delta for content block {index}, a text")
            _expect_str(delta.partial_json, "input_json_delta's partial_json")
            part.json_parts.append(delta.partial_json)
        elif not isinstance(kind, str):
            raise MalformedStream(f"a delta for content block {index} that is not an object")
        # Other deltas (citations…) add nothing covey keeps.

    def _emit(self, text: str) -> None:
        if text and self.on_text is not None:
            self.on_text(text)

    def _count(self, usage: Any) -> None:
        """Usage figures are cumulative: a later non-null value replaces an earlier one."""
        if usage is None:
            return
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ):
            value = getattr(usage, name, None)
            if isinstance(value, int):
                self.usage[name] = value

    def response(self, requested_model: str) -> ModelResponse:
        content: list[TextBlock | ToolUseBlock] = []
        for index in sorted(self.blocks):
            part = self.blocks[index]
            if isinstance(part, _ToolPart):
                content.append(part.block())
            elif text := "".join(part):
                content.append(TextBlock(text=text))
        usage = Usage(
            input=self.usage.get("input_tokens", 0),
            output=self.usage.get("output_tokens", 0),
            cache_read=self.usage.get("cache_read_input_tokens", 0),
            cache_write=self.usage.get("cache_creation_input_tokens", 0),
        )
        return ModelResponse(
            message=Message(role="assistant", content=list(content)),
            stop_reason=self.stop_reason or "end_turn",
            usage=usage,
            model=self.model or requested_model,
        )


def _expect_str(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise MalformedStream(f"the {what} is {type_name(value)}, not text")
