"""The conversation at the wire boundary: adjacent messages joined, results once, first."""

from __future__ import annotations

import asyncio

import pytest

from covey.errors import ModelError
from covey.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock
from covey.models.anthropic import build_request as anthropic_request
from covey.models.base import ModelRequest, ToolSpec
from covey.models.openai import build_request as openai_request
from covey.models.openai import to_openai_messages
from covey.models.script import Script
from covey.models.scripted import ScriptedModel
from covey.models.wire import NO_CONTENT, wire_messages
from covey.models.wire_rules import anthropic_violation, openai_violation
from covey.sessions.resume import load_conversation
from covey.store.transcript import TranscriptEntry

USE = ToolUseBlock(id="toolu_1", name="Bash", input={"command": "ls"})
RESULT = ToolResultBlock(tool_use_id="toolu_1", content="a.txt")


def asked() -> list[Message]:
    return [Message.user("list files"), Message(role="assistant", content=[USE])]


def test_a_prompt_after_tool_results_joins_them_results_first() -> None:
    convo = [
        *asked(),
        Message(role="user", content=[RESULT]),
        Message.user("continue"),
        Message.user("<task-notification>done</task-notification>"),
    ]
    wire = wire_messages(convo)
    assert [m.role for m in wire] == ["user", "assistant", "user"]
    assert wire[-1].content == [
        RESULT,
        TextBlock(text="continue"),
        TextBlock(text="<task-notification>done</task-notification>"),
    ]
    assert wire[0] is convo[0], "a message with nothing to join is sent as it is"


def test_a_result_stored_twice_by_older_covey_is_sent_once() -> None:
    entries = [
        TranscriptEntry("s", n, "message", m.model_dump(mode="json"), 0.0)
        for n, m in enumerate(
            [
                *asked(),
                Message(role="user", content=[RESULT]),
                Message(role="user", content=[RESULT, TextBlock(text="continue")]),
                Message(role="assistant", content=[TextBlock(text="ok")]),
                Message.user("third"),
            ],
            start=1,
        )
    ]
    wire = wire_messages(load_conversation(entries))
    assert wire[2].content == [RESULT, TextBlock(text="continue")]
    body = anthropic_request(ModelRequest(system="", messages=wire), "m", 100)
    assert anthropic_violation(body["messages"]) is None
    assert openai_violation(to_openai_messages("", wire)) is None


def test_an_empty_answer_is_sent_as_no_content() -> None:
    convo = [Message.user("hi"), Message(role="assistant", content=[]), Message.user("again")]
    body = anthropic_request(ModelRequest(system="", messages=convo), "m", 100)
    assert body["messages"][1]["content"] == [{"type": "text", "text": NO_CONTENT}]
    assert anthropic_violation(body["messages"]) is None
    assert to_openai_messages("", convo)[1] == {"role": "assistant", "content": NO_CONTENT}


def _anthropic(*messages: dict[str, object]) -> str | None:
    return anthropic_violation(list(messages))


USE_WIRE = {"type": "tool_use", "id": "X", "name": "Bash", "input": {}}
RESULT_WIRE = {"type": "tool_result", "tool_use_id": "X", "content": "ok"}
ASK = {"role": "user", "content": "go"}
CALL = {"role": "assistant", "content": [USE_WIRE]}


def test_anthropic_rules() -> None:
    answer = {"role": "user", "content": [RESULT_WIRE]}
    assert _anthropic(ASK, CALL, answer) is None
    # consecutive user messages are one turn, as the API documents
    assert _anthropic(ASK, CALL, answer, {"role": "user", "content": "more"}) is None
    unanswered = _anthropic(ASK, CALL, ASK)
    assert unanswered is not None
    assert unanswered.startswith("messages.1: `tool_use` ids were found without `tool_result`")
    assert "immediately after" in (_anthropic(ASK, CALL) or "")
    orphan = _anthropic(ASK, {"role": "assistant", "content": "hi"}, answer)
    assert orphan == (
        "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: X. "
        "Each `tool_result` block must have a corresponding `tool_use` block in the previous "
        "message."
    )
    twice = _anthropic(ASK, CALL, answer, {"role": "user", "content": [RESULT_WIRE]})
    assert twice is not None and "multiple `tool_result` blocks with id: X" in twice
    text_first = {"role": "user", "content": [{"type": "text", "text": "t"}, RESULT_WIRE]}
    assert (_anthropic(ASK, CALL, text_first) or "").startswith(
        "messages.2: Did not find 1 `tool_result` block(s) at the beginning of this message."
    )
    no_tools = anthropic_violation([ASK, CALL, answer], tools_defined=False)
    assert no_tools == (
        "Requests which include `tool_use` or `tool_result` blocks must define tools."
    )
    assert anthropic_violation([ASK], tools_defined=False) is None
    reused = _anthropic(ASK, CALL, answer, CALL, answer)
    assert reused == "messages.3.content.0: `tool_use` ids must be unique"
    empty = _anthropic(ASK, {"role": "assistant", "content": []}, ASK)
    assert empty is not None and "non-empty content" in empty
    assert _anthropic(ASK, {"role": "assistant", "content": []}) is None  # prefill
    blank = _anthropic({"role": "user", "content": [{"type": "text", "text": ""}]})
    assert blank == "messages.0.content.0: text content blocks must be non-empty"
    assert "not allowed" in (_anthropic({"role": "user", "content": [USE_WIRE]}) or "")


def test_openai_rules() -> None:
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}],
    }
    tool = {"role": "tool", "tool_call_id": "c1", "content": "ok"}
    user = {"role": "user", "content": "go"}
    assert openai_violation([user, call, tool, user, user]) is None
    assert "did not have response messages: c1" in (openai_violation([user, call, user]) or "")
    assert "did not have response messages" in (openai_violation([user, call]) or "")
    assert "must be a response" in (openai_violation([user, tool]) or "")
    assert "twice" in (openai_violation([user, call, tool, tool]) or "")
    other = {**tool, "tool_call_id": "c2"}
    assert "'c2' not found" in (openai_violation([user, call, other]) or "")


def test_the_scripted_model_refuses_what_a_provider_would() -> None:
    model = ScriptedModel(Script.model_validate({"turns": [{"text": "a"}, {"text": "b"}]}))
    tools = [ToolSpec("Bash", "Runs a command.", {"type": "object"})]
    broken = [*asked(), Message.user("no result")]
    with pytest.raises(ModelError, match="without `tool_result` blocks"):
        asyncio.run(model.complete(ModelRequest(system="", messages=broken, tools=tools)))
    fine = [*asked(), Message(role="user", content=[RESULT]), Message.user("go on")]
    with pytest.raises(ModelError, match="must define tools"):
        asyncio.run(model.complete(ModelRequest(system="", messages=fine)))
    answer = asyncio.run(model.complete(ModelRequest(system="", messages=fine, tools=tools)))
    assert answer.message.text == "b"


def test_a_request_allowing_no_tool_calls_still_describes_the_tools() -> None:
    tools = [ToolSpec("Bash", "Runs a command.", {"type": "object"})]
    request = ModelRequest(system="", messages=asked(), tools=tools, allow_tool_calls=False)
    claude = anthropic_request(request, "m", 100)
    assert claude["tool_choice"] == {"type": "none"} and claude["tools"][0]["name"] == "Bash"
    gpt = openai_request(request, "m")
    assert gpt["tool_choice"] == "none" and gpt["tools"][0]["function"]["name"] == "Bash"
    assert "tool_choice" not in anthropic_request(
        ModelRequest(system="", messages=asked(), tools=tools), "m", 100
    )
