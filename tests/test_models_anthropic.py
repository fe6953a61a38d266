"""`AnthropicModel` over real HTTP, against covey's fake provider server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest

from covey.errors import ContextOverflowError, CredentialsError, ModelError
from covey.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock, Usage
from covey.models.anthropic import AnthropicModel
from covey.models.base import ModelRequest, ModelResponse, ToolSpec
from covey.models.retry import Retryable, RetryNotice, RetryPolicy
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer

FAST = RetryPolicy(initial_delay=0.01, max_delay=0.05)
READ = ToolSpec("Read", "Read a file.", {"type": "object", "properties": {"file_path": {}}})
GREP = ToolSpec("Grep", "Search files.", {"type": "object", "properties": {"pattern": {}}})
EPHEMERAL = {"type": "ephemeral"}


def script(*turns: dict[str, Any], **agents: list[dict[str, Any]]) -> Script:
    return Script.model_validate(
        {"turns": list(turns), "agents": {k: {"turns": v} for k, v in agents.items()}}
    )


def model(srv: FakeServer, **kwargs: Any) -> AnthropicModel:
    kwargs.setdefault("api_key", "sk-test")
    kwargs.setdefault("retry", FAST)
    return AnthropicModel("claude-test", base_url=srv.url, **kwargs)


def ask(m: AnthropicModel, request: ModelRequest | None = None, texts: list[str] | None = None):
    request = request or ModelRequest(system="You help.", messages=[Message.user("hi")])
    sink = texts.append if texts is not None else None
    return asyncio.run(m.complete(request, on_text=sink))


def count_cache_control(value: object) -> int:
    if isinstance(value, dict):
        own = 1 if "cache_control" in value else 0
        return own + sum(count_cache_control(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_cache_control(v) for v in value)
    return 0


def test_a_text_turn_streams_its_text() -> None:
    text = "The tests fail because add() subtracts."
    with FakeServer(script({"text": text})) as srv:
        texts: list[str] = []
        response: ModelResponse = ask(model(srv), texts=texts)
    assert response.message == Message(role="assistant", content=[TextBlock(text=text)])
    assert response.stop_reason == "end_turn"
    assert response.model == "claude-test"
    assert len(texts) > 1, "expected several deltas"
    assert "".join(texts) == text


def test_a_tool_call_turn_reassembles_the_streamed_input() -> None:
    call_input = {"file_path": "src/calc.py", "ranges": [[1, 20], [40, 60]], "why": "naïve ✓"}
    turn = {"text": "Let me look.", "tool_calls": [{"name": "Read", "input": call_input}]}
    with FakeServer(script(turn)) as srv:
        response = ask(model(srv))
    assert response.stop_reason == "tool_use"
    assert response.message.text == "Let me look."
    assert response.message.tool_uses == [
        ToolUseBlock(id="toolu_000_00", name="Read", input=call_input)
    ]


def test_usage_maps_every_field_including_the_cache() -> None:
    usage = {"input": 120, "output": 45, "cache_read": 3000, "cache_write": 700}
    with FakeServer(script({"text": "ok", "usage": usage})) as srv:
        response = ask(model(srv))
    assert response.usage == Usage(input=120, output=45, cache_read=3000, cache_write=700)


def test_the_request_carries_cache_breakpoints_and_the_agent_header() -> None:
    conversation = [
        Message.user("fix the test"),
        Message(
            role="assistant",
            content=[
                TextBlock(text="Reading."),
                ToolUseBlock(id="toolu_1", name="Read", input={"file_path": "a.py"}),
            ],
        ),
        Message(
            role="user",
            content=[
                ToolResultBlock(tool_use_id="toolu_1", content="no such file", is_error=True),
                TextBlock(text="try b.py"),
            ],
        ),
    ]
    request = ModelRequest(
        system="You are careful.",
        messages=conversation,
        tools=[READ, GREP],
        max_tokens=4000,
        agent_name="reviewer",
    )
    the_script = script({"text": "main"}, reviewer=[{"text": "r0"}, {"text": "reviewed"}])
    with FakeServer(the_script) as srv:
        response = ask(model(srv), request)
    assert response.message.text == "reviewed"  # the reviewer's second turn was chosen
    (sent,) = srv.requests
    assert sent["headers"]["x-covey-agent"] == "reviewer"
    body = sent["body"]
    assert body["stream"] is True
    assert body["model"] == "claude-test"
    assert body["max_tokens"] == 4000
    assert body["system"] == [
        {"type": "text", "text": "You are careful.", "cache_control": EPHEMERAL}
    ]
    assert [t["name"] for t in body["tools"]] == ["Read", "Grep"]
    assert "cache_control" not in body["tools"][0]
    assert body["tools"][1]["cache_control"] == EPHEMERAL
    assert body["tools"][1]["input_schema"] == GREP.input_schema
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Reading."},
        {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "a.py"}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "no such file"}
        | {"is_error": True},
        {"type": "text", "text": "try b.py", "cache_control": EPHEMERAL},
    ]
    assert count_cache_control(body) == 3


def test_no_agent_header_without_an_agent_name() -> None:
    with FakeServer(script({"text": "ok"})) as srv:
        ask(model(srv))
    assert "x-covey-agent" not in srv.requests[0]["headers"]


def test_a_429_with_retry_after_is_retried_after_that_delay() -> None:
    turn = {"text": "done", "faults": [{"status": 429, "retry_after": 0.05}]}
    notices: list[RetryNotice] = []
    with FakeServer(script(turn)) as srv:
        response = ask(model(srv, on_retry=notices.append))
    assert response.message.text == "done"
    assert [r["attempt"] for r in srv.requests] == [0, 1]
    assert len(notices) == 1
    assert notices[0].delay_s == 0.05
    assert (notices[0].attempt, notices[0].max_retries) == (1, 10)
    assert notices[0].reason == "429 rate limited"


@pytest.mark.parametrize("point", ["before_blocks", "mid_text"])
def test_a_stream_dropped_before_any_tool_call_is_retried(point: str) -> None:
    turn = {
        "text": "All twelve tests pass now.",
        "tool_calls": [{"name": "Read", "input": {"file_path": "x"}}],
        "faults": [{"drop": point}],
    }
    notices: list[RetryNotice] = []
    with FakeServer(script(turn)) as srv:
        response = ask(model(srv, on_retry=notices.append))
    assert response.message.text == "All twelve tests pass now."
    assert response.message.tool_uses[0].input == {"file_path": "x"}
    assert len(srv.requests) == 2
    assert [n.reason for n in notices] == ["connection dropped"]


def test_a_stream_dropped_during_a_tool_call_is_not_retried() -> None:
    turn = {
        "tool_calls": [{"name": "Bash", "input": {"command": "rm -rf build && make"}}],
        "faults": [{"drop": "mid_tool"}],
    }
    with (
        FakeServer(script(turn)) as srv,
        pytest.raises(ModelError, match=r"dropped during a tool call.*not retried"),
    ):
        ask(model(srv))
    assert len(srv.requests) == 1


def test_repeated_529_gives_up_after_max_retries() -> None:
    turn = {"text": "never", "faults": [{"status": 529}] * 4}
    policy = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)
    with FakeServer(script(turn)) as srv, pytest.raises(ModelError) as caught:
        ask(model(srv, retry=policy))
    assert str(caught.value) == "anthropic: gave up after 2 retries: 529 overloaded"
    assert type(caught.value) is ModelError
    assert len(srv.requests) == 3


def test_a_missing_key_names_the_variable() -> None:
    with pytest.raises(CredentialsError, match="ANTHROPIC_API_KEY is not set"):
        AnthropicModel.from_env("claude-test", {"ANTHROPIC_BASE_URL": "http://x"})
    with pytest.raises(CredentialsError, match="ANTHROPIC_API_KEY is not set"):
        AnthropicModel.from_env("claude-test", {"ANTHROPIC_API_KEY": ""})


def test_from_env_reads_the_mapping_it_is_given() -> None:
    with FakeServer(script({"text": "hi"}), require_key="tok") as srv:
        env = {"ANTHROPIC_AUTH_TOKEN": "tok", "ANTHROPIC_BASE_URL": srv.url}
        m = AnthropicModel.from_env("claude-x", env, retry=FAST)
        response = ask(m)
    assert m.name == "anthropic:claude-x"
    assert m.context_window == 200_000
    assert response.message.text == "hi"


@pytest.mark.parametrize(
    ("credential", "variable"),
    [("api_key", "ANTHROPIC_API_KEY"), ("auth_token", "ANTHROPIC_AUTH_TOKEN")],
)
def test_a_rejected_key_names_the_variable_and_the_url(credential: str, variable: str) -> None:
    with FakeServer(script({"text": "hi"}), require_key="right") as srv:
        url = srv.url
        m = AnthropicModel("claude-test", base_url=url, retry=FAST, **{credential: "wrong"})
        with pytest.raises(CredentialsError) as caught:
            ask(m)
    message = str(caught.value)
    assert variable in message and url in message and "401" in message
    assert "\n" not in message
    assert len(srv.requests) == 1, "a rejected key is not retried"


def test_prompt_too_long_is_a_context_overflow() -> None:
    fault = {"status": 400, "message": "prompt is too long: 212000 tokens > 200000 maximum"}
    with (
        FakeServer(script({"text": "x", "faults": [fault]})) as srv,
        pytest.raises(ContextOverflowError, match="212000 tokens"),
    ):
        ask(model(srv))
    assert len(srv.requests) == 1


def test_stop_reason_context_window_exceeded_is_a_context_overflow() -> None:
    turn = {"text": "partial", "stop_reason": "model_context_window_exceeded"}
    with FakeServer(script(turn)) as srv, pytest.raises(ContextOverflowError):
        ask(model(srv))


def test_other_client_errors_carry_the_provider_message_and_are_not_retried() -> None:
    fault = {"status": 404, "message": "model: claude-nope"}
    with (
        FakeServer(script({"text": "x", "faults": [fault]})) as srv,
        pytest.raises(ModelError) as caught,
    ):
        ask(model(srv))
    assert type(caught.value) is ModelError
    assert str(caught.value) == "anthropic: 404 model: claude-nope"
    assert len(srv.requests) == 1


def test_max_tokens_is_capped_by_the_model() -> None:
    with FakeServer(script({"text": "ok"})) as srv:
        ask(model(srv, max_tokens=1000))
    assert srv.requests[0]["body"]["max_tokens"] == 1000


# --- streams the fake server does not produce, over a mock transport ----------------------

START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    },
}
TOOL_START = {
    "type": "content_block_start",
    "index": 0,
    "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}},
}
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def attempt_on(events: list[dict[str, Any]]) -> Any:
    """One attempt of the adapter against a 200 response carrying exactly `events`, cleanly
    ended (no dropped connection)."""
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    async def run() -> Any:
        m = AnthropicModel("claude-test", api_key="k")
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
            request = {"model": "claude-test", "max_tokens": 10, "messages": []}
            return await m._attempt(http, json.dumps(request).encode(), {}, None)

    return asyncio.run(run())


def test_an_overloaded_error_event_is_retried() -> None:
    with pytest.raises(Retryable, match="overloaded"):
        attempt_on([START, OVERLOADED])


def test_a_stream_ending_without_message_stop_is_retried() -> None:
    with pytest.raises(Retryable, match="message_stop"):
        attempt_on([START])


def test_an_error_event_after_a_tool_call_began_is_final() -> None:
    with pytest.raises(ModelError, match="dropped during a tool call"):
        attempt_on([START, TOOL_START, OVERLOADED])
