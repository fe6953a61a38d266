"""The assistant message of an OpenAI chat completions stream, assembled chunk by chunk
(`covey.models.openai`): text, tool calls by index (their arguments parsed once whole),
usage, the finish reason as covey's stop reason, and a `MalformedStream` for a chunk of the
wrong shape."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

from covey.messages import INVALID_ARGUMENTS_KEY, Message, TextBlock, ToolUseBlock, Usage
from covey.models._client import type_name
from covey.models._http import MalformedStream
from covey.models.base import ModelResponse, TextSink

__all__ = ["OpenAIReply", "parse_arguments"]

_STOP_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


def parse_arguments(raw: str) -> dict[str, Any]:
    """OpenAI `arguments` as a tool_use input: a JSON object, else {INVALID_ARGUMENTS_KEY: raw}
    (the tool reports the error to the model). Empty arguments mean no arguments."""
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return {INVALID_ARGUMENTS_KEY: raw}
    if not isinstance(parsed, dict):
        return {INVALID_ARGUMENTS_KEY: raw}
    return cast(dict[str, Any], parsed)


@dataclass
class _CallPart:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class OpenAIReply:
    """The assistant message, assembled from stream chunks as they come."""

    def __init__(self, on_text: TextSink | None) -> None:
        self.on_text = on_text
        self.model = ""
        self.text: list[str] = []
        self.refused = False
        self.calls: dict[int, _CallPart] = {}
        self.finish_reason: str | None = None
        self.usage = Usage()
        self.tool_began = False

    def feed(self, chunk: Any) -> None:
        """Take one chunk (a decoded JSON object as `Fields`); MalformedStream when it does
        not fit (a field may be missing or mistyped)."""
        try:
            self._feed(chunk)
        except (AttributeError, TypeError) as e:
            raise MalformedStream(f"a chunk of the wrong shape: {e}") from e

    def _feed(self, chunk: Any) -> None:
        self.model = chunk.model or self.model
        if chunk.usage is not None:
            details = chunk.usage.prompt_tokens_details
            cached = (details.cached_tokens if details is not None else None) or 0
            self.usage = Usage(
                input=max(0, (chunk.usage.prompt_tokens or 0) - cached),
                output=chunk.usage.completion_tokens or 0,
                cache_read=cached,
                cache_write=0,
            )
        for choice in chunk.choices or []:
            if choice.index not in (0, None):
                continue
            delta = choice.delta
            if delta is not None:
                self._delta(delta.content, delta.refusal, delta.tool_calls or [])
            if choice.finish_reason:
                _expect_text(choice.finish_reason, "finish_reason")
                self.finish_reason = choice.finish_reason

    def _delta(self, content: str | None, refusal: str | None, tool_calls: list[Any]) -> None:
        for piece in (content, refusal):
            _expect_text(piece, "delta's content or refusal")
            if piece:
                self.text.append(piece)
                if self.on_text is not None:
                    self.on_text(piece)
        if refusal:
            self.refused = True
        for call in tool_calls:
            index = call.index if call.index is not None else len(self.calls)
            part = self.calls.get(index)
            if part is None:
                if not call.id and not (call.function and call.function.name):
                    raise MalformedStream(
                        f"a fragment of tool call {index!r}, which never started (no id, no name)"
                    )
                part = self.calls[index] = _CallPart()
            self.tool_began = True
            _expect_text(call.id, "tool call's id")
            if call.id:
                part.id = call.id
            function = call.function
            if function is not None:
                _expect_text(function.name, "tool call's name")
                _expect_text(function.arguments, "tool call's arguments")
                if function.name and not part.name:
                    part.name = function.name
                if function.arguments:
                    part.arguments.append(function.arguments)

    def response(self, requested_model: str) -> ModelResponse:
        content: list[TextBlock | ToolUseBlock] = []
        if text := "".join(self.text):
            content.append(TextBlock(text=text))
        for n, index in enumerate(sorted(self.calls)):
            part = self.calls[index]
            content.append(
                ToolUseBlock(
                    id=part.id or f"call_{n}",
                    name=part.name,
                    input=parse_arguments("".join(part.arguments)),
                )
            )
        stop = _STOP_REASONS.get(self.finish_reason or "", self.finish_reason or "end_turn")
        if self.calls and stop == "end_turn":
            stop = "tool_use"  # some local servers say "stop" after tool calls
        if self.refused and stop == "end_turn":
            stop = "refusal"
        return ModelResponse(
            message=Message(role="assistant", content=list(content)),
            stop_reason=stop,
            usage=self.usage,
            model=self.model or requested_model,
        )


def _expect_text(value: object, what: str) -> None:
    if value is not None and not isinstance(value, str):
        raise MalformedStream(f"the {what} is {type_name(value)}, not text")
