"""`scripted:<path>`: deterministic replay of a script, offline. Powers the demo and tests."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from covey.errors import ModelError
from covey.messages import Message, TextBlock, ToolUseBlock, Usage, dump_message
from covey.models.base import ModelRequest, ModelResponse, TextSink
from covey.models.script import Script, load_script, select_turn, tool_use_id
from covey.models.tokens import estimate_tokens
from covey.models.wire import wire_messages
from covey.models.wire_rules import anthropic_violation

__all__ = ["ScriptedModel"]


class ScriptedModel:
    """Answers each request with the script's next turn. Faults in the script are ignored
    here; they are for the fake provider server. A request that allows no tool calls is
    answered without the turn's tool calls. A conversation a provider would refuse
    (`covey.models.wire_rules`, after the adapters' `wire_messages`) is a `ModelError`, as
    the provider's 400 would be."""

    def __init__(self, script: Script, *, name: str = "scripted", context_window: int = 200_000):
        self._script = script
        self._name = name
        self._context_window = context_window
        self._checked = 0

    @classmethod
    def from_path(cls, path: str | Path) -> ScriptedModel:
        return cls(load_script(path), name=f"scripted:{path}")

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_window(self) -> int:
        return self._context_window

    def _unchecked_from(self, sent: list[Message], purpose: str) -> int:
        """Where the part of `sent` not checked by an earlier request of this conversation
        starts: a conversation only grows, so a long run checks each turn once, not every
        turn on every request (a compaction request, or a shorter conversation, checks all)."""
        checked, self._checked = self._checked, (0 if purpose == "compact" else len(sent))
        if purpose == "compact" or not 0 < checked <= len(sent):
            return 0
        # from the latest answer already seen: its tool calls pair with what follows
        return next((i for i in range(checked - 1, -1, -1) if sent[i].role == "assistant"), 0)

    async def complete(
        self, request: ModelRequest, on_text: TextSink | None = None
    ) -> ModelResponse:
        sent = wire_messages(request.messages)
        window = [dump_message(m) for m in sent[self._unchecked_from(sent, request.purpose) :]]
        if problem := anthropic_violation(window, tools_defined=bool(request.tools)):
            raise ModelError(f"scripted model: a provider would refuse the request: {problem}")
        if request.purpose == "compact" and "compact" not in self._script.agents:
            return _summary_response(request)
        agent = "compact" if request.purpose == "compact" else request.agent_name
        index, turn = select_turn(self._script, request.messages, agent)
        if turn.delay_s:
            await asyncio.sleep(turn.delay_s)
        content: list[TextBlock | ToolUseBlock] = []
        if turn.text:
            content.append(TextBlock(text=turn.text))
            if on_text is not None:
                on_text(turn.text)
        calls = turn.tool_calls if request.allow_tool_calls else []
        for i, call in enumerate(calls):
            content.append(ToolUseBlock(id=tool_use_id(index, i), name=call.name, input=call.input))
        message = Message(role="assistant", content=list(content))
        usage = turn.usage or _estimated_usage(request, message)
        stop = turn.natural_stop_reason if calls else turn.stop_reason or "end_turn"
        return ModelResponse(message=message, stop_reason=stop, usage=usage, model="scripted")


def _estimated_usage(request: ModelRequest, reply: Message) -> Usage:
    sent = request.system + json.dumps([dump_message(m) for m in request.messages])
    sent += json.dumps([t.input_schema for t in request.tools])
    return Usage(
        input=estimate_tokens(sent), output=estimate_tokens(json.dumps(dump_message(reply)))
    )


def _summary_response(request: ModelRequest) -> ModelResponse:
    """A deterministic summary: the first line of each assistant text, in order."""
    lines = [
        f"- {m.text.strip().splitlines()[0][:120]}"
        for m in request.messages
        if m.role == "assistant" and m.text.strip()
    ]
    text = "Earlier turns (scripted summary):\n" + ("\n".join(lines) or "- (no text)")
    message = Message(role="assistant", content=[TextBlock(text=text)])
    return ModelResponse(
        message=message,
        stop_reason="end_turn",
        usage=_estimated_usage(request, message),
        model="scripted",
    )
