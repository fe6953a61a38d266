"""`OpenAIModel` over real HTTP against covey's fake provider server, and its translation of
messages and tool arguments."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest

from covey.errors import ContextOverflowError, CredentialsError, ModelError
from covey.messages import (
    INVALID_ARGUMENTS_KEY,
    Message,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)
from covey.models._client import wrap
from covey.models.base import ModelRequest, ModelResponse, ToolSpec
from covey.models.openai import (
    OpenAIModel,
    arguments_json,
    parse_arguments,
    to_openai_messages,
)
from covey.models.openai import (
    OpenAIReply as _Reply,
)
from covey.models.retry import Retryable, RetryNotice, RetryPolicy
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer

FAST = RetryPolicy(initial_delay=0.01, max_delay=0.05)
READ = ToolSpec("Read", "Read a file.", {"type": "object", "properties": {"file_path": {}}})


def script(*turns: dict[str, Any], **agents: list[dict[str, Any]]) -> Script:
    return Script.model_validate(
        {"turns": list(turns), "agents": {k: {"turns": v} for k, v in agents.items()}}
    )


def model(srv: FakeServer, **kwargs: Any) -> OpenAIModel:
    kwargs.setdefault("api_key", "sk-test")
    kwargs.setdefault("retry", FAST)
    return OpenAIModel("gpt-test", base_url=srv.url + "/v1", **kwargs)


def ask(
    m: OpenAIModel, request: ModelRequest | None = None, texts: list[str] | None = None
) -> ModelResponse:
    request = request or ModelRequest(system="You help.", messages=[Message.user("hi")])
    sink = texts.append if texts is not None else None
    return asyncio.run(m.complete(request, on_text=sink))


# --- over HTTP ----------------------------------------------------------------------------


def test_a_text_turn_streams_its_text() -> None:
    text = "The tests fail because add() subtracts."
    with FakeServer(script({"text": text})) as srv:
        texts: list[str] = []
        response = ask(model(srv), texts=texts)
    assert response.message == Message(role="assistant", content=[TextBlock(text=text)])
    assert response.stop_reason == "end_turn"
    assert response.model == "gpt-test"
    assert len(texts) > 1, "expected several deltas"
    assert "".join(texts) == text


def test_tool_calls_are_merged_by_index() -> None:
    first = {"file_path": "src/calc.py", "ranges": [[1, 20]], "why": "naïve ✓"}
    second = {"pattern": "def add", "glob": "**/*.py"}
    turn = {
        "text": "Looking.",
        "tool_calls": [{"name": "Read", "input": first}, {"name": "Grep", "input": second}],
    }
    with FakeServer(script(turn)) as srv:
        response = ask(model(srv))
    assert response.stop_reason == "tool_use"
    assert response.message.text == "Looking."
    assert response.message.tool_uses == [
        ToolUseBlock(id="call_000_00", name="Read", input=first),
        ToolUseBlock(id="call_000_01", name="Grep", input=second),
    ]


def test_usage_counts_cached_tokens_as_cache_reads() -> None:
    usage = {"input": 120, "output": 45, "cache_read": 3000, "cache_write": 0}
    with FakeServer(script({"text": "ok", "usage": usage})) as srv:
        response = ask(model(srv))
    # The fake sends prompt_tokens = 3120 with cached_tokens = 3000.
    assert response.usage == Usage(input=120, output=45, cache_read=3000, cache_write=0)


def test_the_request_translates_tools_and_tool_results() -> None:
    conversation = [
        Message.user("fix the test"),
        Message(
            role="assistant",
            content=[
                TextBlock(text="Reading two files."),
                ToolUseBlock(id="call_1", name="Read", input={"file_path": "a.py"}),
                ToolUseBlock(id="call_2", name="Read", input={"file_path": "b.py"}),
            ],
        ),
        Message(
            role="user",
            content=[
                ToolResultBlock(tool_use_id="call_1", content="print('a')"),
                ToolResultBlock(tool_use_id="call_2", content="no such file", is_error=True),
                TextBlock(text="also check c.py"),
            ],
        ),
    ]
    request = ModelRequest(
        system="You are careful.",
        messages=conversation,
        tools=[READ],
        max_tokens=4000,
        agent_name="reviewer",
    )
    the_script = script({"text": "main"}, reviewer=[{"text": "r0"}, {"text": "reviewed"}])
    with FakeServer(the_script) as srv:
        response = ask(model(srv), request)
    assert response.message.text == "reviewed"
    (sent,) = srv.requests
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["x-covey-agent"] == "reviewer"
    body = sent["body"]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 4000
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "Read",
                "description": "Read a file.",
                "parameters": READ.input_schema,
            },
        }
    ]
    assert body["messages"] == [
        {"role": "system", "content": "You are careful."},
        {"role": "user", "content": "fix the test"},
        {
            "role": "assistant",
            "content": "Reading two files.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "Read", "arguments": '{"file_path": "a.py"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "Read", "arguments": '{"file_path": "b.py"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "print('a')"},
        {"role": "tool", "tool_call_id": "call_2", "content": "Error: no such file"},
        {"role": "user", "content": "also check c.py"},
    ]


def test_a_429_with_retry_after_is_retried_after_that_delay() -> None:
    turn = {"text": "done", "faults": [{"status": 429, "retry_after": 0.05}]}
    notices: list[RetryNotice] = []
    with FakeServer(script(turn)) as srv:
        response = ask(model(srv, on_retry=notices.append))
    assert response.message.text == "done"
    assert [r["attempt"] for r in srv.requests] == [0, 1]
    assert [(n.attempt, n.delay_s, n.reason) for n in notices] == [(1, 0.05, "429 rate limited")]


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
    assert str(caught.value) == "openai: gave up after 2 retries: 529 overloaded"
    assert len(srv.requests) == 3


def test_a_missing_key_names_the_variable() -> None:
    with pytest.raises(CredentialsError, match="OPENAI_API_KEY is not set"):
        OpenAIModel.from_env("gpt-test", {})
    with pytest.raises(CredentialsError, match="OPENAI_API_KEY is not set"):
        OpenAIModel.from_env("gpt-test", {"OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""})


def test_a_local_server_needs_only_the_base_url() -> None:
    with FakeServer(script({"text": "local"}), require_key="not-needed") as srv:
        m = OpenAIModel.from_env("llama", {"OPENAI_BASE_URL": srv.url + "/v1"}, retry=FAST)
        response = ask(m)
    assert m.name == "openai:llama"
    assert m.context_window == 128_000
    assert response.message.text == "local"


def test_a_rejected_key_names_the_variable_and_the_url() -> None:
    with FakeServer(script({"text": "hi"}), require_key="right") as srv:
        url = srv.url + "/v1"
        env = {"OPENAI_API_KEY": "wrong", "OPENAI_BASE_URL": url}
        with pytest.raises(CredentialsError) as caught:
            ask(OpenAIModel.from_env("gpt-test", env, retry=FAST))
    message = str(caught.value)
    assert "OPENAI_API_KEY" in message and url in message and "401" in message
    assert "\n" not in message
    assert len(srv.requests) == 1, "a rejected key is not retried"


def test_a_keyless_request_refused_says_to_set_the_key() -> None:
    with FakeServer(script({"text": "hi"}), require_key="right") as srv:
        env = {"OPENAI_BASE_URL": srv.url + "/v1"}
        with pytest.raises(CredentialsError, match="OPENAI_API_KEY is not set"):
            ask(OpenAIModel.from_env("gpt-test", env, retry=FAST))


def test_maximum_context_length_is_a_context_overflow() -> None:
    message = "This model's maximum context length is 128000 tokens. You requested 130000."
    turn = {"text": "x", "faults": [{"status": 400, "message": message}]}
    with FakeServer(script(turn)) as srv, pytest.raises(ContextOverflowError, match="130000"):
        ask(model(srv))
    assert len(srv.requests) == 1


def test_finish_reason_length_maps_to_max_tokens() -> None:
    with FakeServer(script({"text": "cut", "stop_reason": "max_tokens"})) as srv:
        assert ask(model(srv)).stop_reason == "max_tokens"


# --- translation, without a server --------------------------------------------------------


def chunk(choices: list[dict[str, Any]] | None, usage: dict[str, Any] | None = None) -> Any:
    """A chunk as the adapter reads one from a stream: decoded JSON, not validated, so a
    server's `choices: null` gets through as it does in real life."""
    data = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    return wrap(data | {"choices": choices, "usage": usage})


def call_delta(index: int, arguments: str, **first: str) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if first:
        call |= {"id": first["id"], "type": "function"}
        call["function"]["name"] = first["name"]
    return {"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}


def test_arguments_that_are_not_a_json_object_are_kept_raw() -> None:
    assert parse_arguments('{"a": 1}') == {"a": 1}
    assert parse_arguments("") == {}
    assert parse_arguments('{"a": 1') == {INVALID_ARGUMENTS_KEY: '{"a": 1'}
    assert parse_arguments("[1, 2]") == {INVALID_ARGUMENTS_KEY: "[1, 2]"}
    assert parse_arguments('"just a string"') == {INVALID_ARGUMENTS_KEY: '"just a string"'}


def test_a_streamed_call_with_broken_arguments_becomes_an_invalid_arguments_input() -> None:
    reply = _Reply(on_text=None)
    reply.feed(chunk([call_delta(0, '{"file_path": ', id="call_x", name="Read")]))
    reply.feed(chunk([call_delta(0, '"a.py"')]))  # the closing brace never comes
    reply.feed(chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]))
    reply.feed(chunk(None, usage=None))  # some servers send choices: null
    reply.feed(chunk([], usage={"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}))
    response = reply.response("m")
    assert reply.tool_began
    assert response.stop_reason == "tool_use"
    assert response.usage == Usage(input=10, output=3)
    (use,) = response.message.tool_uses
    assert use == ToolUseBlock(
        id="call_x", name="Read", input={INVALID_ARGUMENTS_KEY: '{"file_path": "a.py"'}
    )
    # ...and it goes back to the provider exactly as it came.
    (sent,) = to_openai_messages("", [response.message])
    assert sent["tool_calls"][0]["function"]["arguments"] == '{"file_path": "a.py"'
    assert sent["content"] is None


def test_arguments_json_round_trips_valid_input() -> None:
    assert arguments_json({"a": [1, "é"]}) == '{"a": [1, "é"]}'
    assert arguments_json({INVALID_ARGUMENTS_KEY: "oops"}) == "oops"


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("tool_calls", "tool_use"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
    ],
)
def test_finish_reasons_map_to_anthropic_words(finish: str, stop: str) -> None:
    reply = _Reply(on_text=None)
    reply.feed(chunk([{"index": 0, "delta": {"content": "x"}, "finish_reason": finish}]))
    assert reply.response("m").stop_reason == stop


def test_a_user_message_without_tool_results_stays_one_message() -> None:
    messages = to_openai_messages("", [Message.user("hello")])
    assert messages == [{"role": "user", "content": "hello"}]


# --- streams the fake server does not produce, over a mock transport ------


def attempt_on(events: list[dict[str, Any]]) -> Any:
    """One attempt of the adapter against a 200 response carrying exactly `events` and a
    clean `[DONE]`."""
    frames = [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]
    body = "".join(frames).encode()

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    async def run() -> Any:
        m = OpenAIModel("gpt-test", api_key="k")
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
            request = {"model": "gpt-test", "messages": []}
            return await m._attempt(http, json.dumps(request).encode(), {}, None)

    return asyncio.run(run())


def raw_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


TEXT = raw_chunk({"role": "assistant", "content": "Hel"})
TOOL = raw_chunk(
    {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "Bash"}}]}
)
SERVER_ERROR = {"error": {"message": "upstream overloaded", "type": "server_error", "code": None}}


def test_a_complete_stream_is_answered() -> None:
    response = attempt_on([TEXT, raw_chunk({"content": "lo"}, "stop")])
    assert response.message.text == "Hello"


def test_a_stream_ending_without_finish_reason_is_retried() -> None:
    with pytest.raises(Retryable, match="finish_reason"):
        attempt_on([TEXT])


def test_an_error_object_in_the_stream_is_retried() -> None:
    with pytest.raises(Retryable, match="upstream overloaded"):
        attempt_on([TEXT, SERVER_ERROR])


def test_an_error_object_after_a_tool_call_began_is_final() -> None:
    with pytest.raises(ModelError, match="dropped during a tool call"):
        attempt_on([TOOL, SERVER_ERROR])


def test_a_context_error_object_in_the_stream_is_an_overflow() -> None:
    error = {"error": {"message": "too long", "type": "invalid_request_error"}}
    error["error"]["code"] = "context_length_exceeded"
    with pytest.raises(ContextOverflowError):
        attempt_on([TEXT, error])
