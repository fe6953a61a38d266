"""The request body as sent (JSON bytes, past messages' JSON kept from earlier requests) is
the body `build_request` describes, at every turn of a growing conversation, and each
message is encoded once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from covey.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock
from covey.models import anthropic, openai
from covey.models._encoded import EncodedMessages, request_json
from covey.models.base import ModelRequest, ToolSpec

TOOLS = [ToolSpec("Read", "Reads a file.", {"type": "object", "properties": {}})]


def turn(n: int) -> list[Message]:
    """An assistant tool call and its result; every third result is an error, every fourth
    turn a prompt is queued after the result (a user message of its own, joined on the
    wire), and the text is not all ASCII."""
    use = ToolUseBlock(id=f"toolu_{n}", name="Read", input={"file_path": f"f{n}.py"})
    text = "" if n % 5 == 0 else f"Reading f{n}.py — “quoted” ✓"
    messages = [
        Message(role="assistant", content=[TextBlock(text=text), use]),
        Message(
            role="user",
            content=[ToolResultBlock(tool_use_id=use.id, content="x\n" * n, is_error=n % 3 == 0)],
        ),
    ]
    if n % 4 == 0:
        messages.append(Message.user(f"also look at g{n}.py"))
    return messages


def expected(provider: str, request: ModelRequest) -> dict[str, Any]:
    if provider == "anthropic":
        return anthropic.build_request(request, "m", 100) | {"stream": True}
    extra = {"stream": True, "max_tokens": 100, "stream_options": {"include_usage": True}}
    return openai.build_request(request, "m") | extra


def sent(provider: str, request: ModelRequest, encoded: EncodedMessages) -> Any:
    if provider == "anthropic":
        return json.loads(anthropic.encode_request(request, "m", 100, encoded))
    fields = openai.request_fields(request, "m", {"max_tokens": 100}, encoded)
    return json.loads(openai.encode_request(request, fields, encoded))


def encoder(provider: str) -> EncodedMessages:
    module: Any = anthropic if provider == "anthropic" else openai
    return EncodedMessages(module._entries)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_the_bytes_sent_are_the_body_at_every_turn(provider: str) -> None:
    encoded = encoder(provider)
    messages = [Message.user("start")]
    for n in range(1, 13):
        for tools, allow in (([], True), (TOOLS, n % 2 == 0)):
            request = ModelRequest(
                system="be brief" if n % 6 else "",
                messages=list(messages),
                tools=tools,
                allow_tool_calls=allow,
            )
            assert sent(provider, request, encoded) == expected(provider, request)
        messages += turn(n)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_each_message_is_encoded_once(provider: str) -> None:
    encoded = encoder(provider)
    messages = [Message.user("start")]
    for n in range(1, 21):
        messages += turn(n)[:2]
        sent(provider, ModelRequest(system="s", messages=list(messages)), encoded)
    stats = encoded.statistics()
    # Anthropic encodes the last message anew each time (it carries the cache breakpoint),
    # so it first reaches the cache one request later.
    assert stats.encoded == len(messages) - (1 if provider == "anthropic" else 0)
    assert stats.held == len(messages) - (1 if provider == "anthropic" else 0)


def test_a_new_conversation_lets_the_old_one_go_after_four_requests() -> None:
    """What the last four requests used is held: a lead and a subagent sharing one model
    alternate without re-encoding, and a compacted conversation's messages are freed."""
    encoded = encoder("openai")
    lead = [Message.user("lead"), *turn(1), *turn(2)]
    helper = [Message.user("helper"), *turn(7)]
    for conversation in (lead, helper, lead, helper):
        sent("openai", ModelRequest(system="", messages=conversation), encoded)
    assert encoded.statistics().encoded == len(lead) + len(helper)
    summary = [Message.user("<compact-summary>…</compact-summary>")]
    for _ in range(4):
        sent("openai", ModelRequest(system="", messages=summary), encoded)
    assert encoded.statistics().held == 1


def test_a_message_twice_in_one_request_is_sent_twice() -> None:
    encoded = encoder("anthropic")
    prompt = Message.user("again")
    fragments = encoded.fragments([prompt, prompt])
    assert [json.loads(f) for f in fragments] == [anthropic._entry(prompt)] * 2


def test_request_json_without_fields() -> None:
    assert json.loads(request_json({}, [b'{"a":1}', b"2"])) == {"messages": [{"a": 1}, 2]}
    assert json.loads(request_json({"model": "m"}, [])) == {"messages": [], "model": "m"}
