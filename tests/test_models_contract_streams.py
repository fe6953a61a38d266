"""Contract, part two: responses the fake server does not produce (error events inside a
stream, odd error bodies, retry headers, odd SSE framing), served by an `httpx2.MockTransport`
to covey's adapter and to the SDK reference alike; the exact credential headers; and the SDKs'
own stream accumulators agreeing with covey's parsed result.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import httpx2
import openai
import pytest

import covey.models._pool as covey_pool
import covey.models.anthropic as covey_anthropic
import covey.models.openai as covey_openai
from covey.messages import Message
from covey.models.base import ModelRequest, ToolSpec
from covey.models.retry import RetryNotice, RetryPolicy
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer
from sdk_reference import SdkAnthropicModel, SdkOpenAIModel

NO_WAIT = RetryPolicy(max_retries=1, initial_delay=0.0, max_delay=0.0)
REQUEST = ModelRequest(system="s", messages=[Message.user("hi")], agent_name="helper")
READ = ToolSpec("Read", "Read a file.", {"type": "object", "properties": {"file_path": {}}})
SSE = {"content-type": "text/event-stream"}


def served(
    provider: str,
    sdk: bool,
    response: httpx2.Response,
    monkeypatch: pytest.MonkeyPatch,
    **credential: str,
) -> tuple[tuple[str, str] | Any, list[RetryNotice], list[httpx2.Request]]:
    """(outcome, retry notices, requests sent) of one `complete` answered by `response`."""
    sent: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return httpx2.Response(
            response.status_code, headers=response.headers, content=response.content
        )

    def client(**_: Any) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))

    notices: list[RetryNotice] = []
    base = "http://127.0.0.1:9"
    if provider == "anthropic":
        monkeypatch.setattr(covey_pool, "new_http", client)
        monkeypatch.setattr(anthropic, "DefaultAsyncHttpxClient", client)
        kind: Any = SdkAnthropicModel if sdk else covey_anthropic.AnthropicModel
        model = kind("c", base_url=base, retry=NO_WAIT, on_retry=notices.append, **credential)
    else:
        monkeypatch.setattr(covey_pool, "new_http", client)
        monkeypatch.setattr(openai, "DefaultAsyncHttpxClient", client)
        kind = SdkOpenAIModel if sdk else covey_openai.OpenAIModel
        model = kind(
            "g", base_url=base + "/v1", retry=NO_WAIT, on_retry=notices.append, **credential
        )
    try:
        outcome: Any = asyncio.run(model.complete(REQUEST))
    except Exception as e:
        outcome = (type(e).__name__, str(e))
    return outcome, notices, sent


def agree(provider: str, response: httpx2.Response, monkeypatch: pytest.MonkeyPatch) -> Any:
    credential = {"api_key": "sk-x"}
    ours, our_notices, our_sent = served(provider, False, response, monkeypatch, **credential)
    ref, ref_notices, ref_sent = served(provider, True, response, monkeypatch, **credential)
    assert ours == ref
    assert our_notices == ref_notices
    assert [json.loads(r.content) for r in our_sent] == [json.loads(r.content) for r in ref_sent]
    assert [r.url for r in our_sent] == [r.url for r in ref_sent]
    return ours


def events(*frames: dict[str, Any] | str, name: bool = True) -> bytes:
    out = []
    for frame in frames:
        if isinstance(frame, str):
            out.append(frame)
            continue
        head = f"event: {frame['type']}\n" if name and "type" in frame else ""
        out.append(f"{head}data: {json.dumps(frame)}\n\n")
    return "".join(out).encode()


MESSAGE = {"id": "m", "type": "message", "role": "assistant", "model": "c", "content": []}
START = {"type": "message_start", "message": MESSAGE | {"usage": {"input_tokens": 5}}}
TEXT = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
DELTA = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}}
TOOL = {"type": "content_block_start", "index": 1}
TOOL |= {"content_block": {"type": "tool_use", "id": "t1", "name": "Read", "input": {}}}
END = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}
STOP = {"type": "message_stop"}


def error_event(kind: str, message: str = "x") -> str:
    error = {"type": "error", "error": {"type": kind, "message": message}}
    return f"event: error\ndata: {json.dumps(error)}\n\n"


ANTHROPIC_CASES = {
    "complete": events(START, TEXT, DELTA, END, STOP),
    "crlf-framing": events(START, TEXT, DELTA, END, STOP).replace(b"\n", b"\r\n"),
    "comments-pings-and-unknown-events": b": hello\n\n"
    + events(START, {"type": "ping"}, {"type": "future"}, TEXT, DELTA, END, STOP),
    "data-without-event-names": events(START, TEXT, DELTA, END, STOP, name=False),
    "overloaded-event": events(START, TEXT) + error_event("overloaded_error").encode(),
    "event-after-tool-began": events(START, TOOL) + error_event("overloaded_error").encode(),
    "invalid-request-event": events(START) + error_event("invalid_request_error").encode(),
    "context-event": events(START)
    + error_event("invalid_request_error", "prompt is too long").encode(),
    "error-event-not-json": events(START) + b"event: error\ndata: upstream gone\n\n",
    "no-message-stop": events(START, TEXT, DELTA, END),
    "window-exceeded": events(
        START, {**END, "delta": {"stop_reason": "model_context_window_exceeded"}}, STOP
    ),
    "not-utf8": events(START, TEXT) + b'event: content_block_delta\ndata: {"x": "\xff"}\n\n',
    "not-json": events(START, TEXT) + b"event: content_block_delta\ndata: {oops\n\n",
}


@pytest.mark.parametrize("case", list(ANTHROPIC_CASES))
def test_anthropic_streams(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    agree(
        "anthropic", httpx2.Response(200, headers=SSE, content=ANTHROPIC_CASES[case]), monkeypatch
    )


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return (
        {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "g"}
        | {"choices": [choice]}
        | extra
    )


def data(*frames: dict[str, Any] | str) -> bytes:
    return "".join(
        f"data: {f if isinstance(f, str) else json.dumps(f)}\n\n" for f in frames
    ).encode()


CALL = {
    "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "Read"}}]
}
USAGE = {
    "prompt_tokens": 50,
    "completion_tokens": 5,
    "prompt_tokens_details": {"cached_tokens": 20},
}
OPENAI_CASES = {
    "complete-with-cached-usage": data(
        chunk({"role": "assistant", "content": "o"}),
        chunk({"content": "k"}, "stop"),
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "g",
            "choices": [],
            "usage": USAGE,
        },
        "[DONE]",
    ),
    "choices-null": data(
        chunk({"content": "ok"}, "stop"), {"model": "g", "choices": None}, "[DONE]"
    ),
    "junk-after-done": data(chunk({"content": "ok"}, "stop"), "[DONE]") + b"data: {oops\n\n",
    "error-object": data(
        chunk({"content": "o"}),
        {"error": {"message": "upstream overloaded", "type": "server_error"}},
    ),
    "error-object-without-message": data(
        chunk({"content": "o"}), {"error": {"type": "server_error"}}
    ),
    "error-after-tool-began": data(
        chunk(CALL), {"error": {"message": "boom", "type": "server_error"}}
    ),
    "context-error-object": data(
        {
            "error": {
                "message": "too long",
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
            }
        }
    ),
    "no-finish-reason": data(chunk({"content": "o"}), "[DONE]"),
    "not-json": data(chunk({"content": "o"}), "{oops"),
    "event-names-ignored": b"event: delta\n" + data(chunk({"content": "ok"}, "stop"), "[DONE]"),
}


@pytest.mark.parametrize("case", list(OPENAI_CASES))
def test_openai_streams(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    agree("openai", httpx2.Response(200, headers=SSE, content=OPENAI_CASES[case]), monkeypatch)


ERRORS = {
    "html-502": httpx2.Response(
        502, headers={"content-type": "text/html"}, content=b"<h1>Bad gateway</h1>"
    ),
    "empty-503": httpx2.Response(503),
    "json-without-error": httpx2.Response(400, json={"detail": "no"}),
    "anthropic-overloaded": httpx2.Response(
        529, json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    ),
    "openai-code": httpx2.Response(
        400,
        json={
            "error": {
                "message": "This model's maximum context length is 8192",
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
            }
        },
    ),
    "openai-code-only": httpx2.Response(
        400, json={"error": {"message": "bad", "type": None, "code": 1234}}
    ),
    "retry-after-ms": httpx2.Response(
        429,
        headers={"retry-after-ms": "20"},
        json={"error": {"type": "rate_limit_error", "message": "slow down"}},
    ),
    "retry-after-too-long": httpx2.Response(429, headers={"retry-after": "3600"}, json={}),
    "should-retry-false": httpx2.Response(503, headers={"x-should-retry": "false"}, json={}),
    "should-retry-true": httpx2.Response(400, headers={"x-should-retry": "true"}, json={}),
    "413-text": httpx2.Response(413, content=b"request entity too large"),
}


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
@pytest.mark.parametrize("case", list(ERRORS))
def test_error_responses(provider: str, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    agree(provider, ERRORS[case], monkeypatch)


@pytest.mark.parametrize(
    ("provider", "credential"),
    [
        ("anthropic", {"api_key": "sk-a"}),
        ("anthropic", {"auth_token": "tok-b"}),
        ("openai", {"api_key": "sk-o"}),
        ("openai", {}),
    ],
)
def test_the_headers_that_matter_are_the_sdks(
    provider: str, credential: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ok = (
        ANTHROPIC_CASES["complete"] if provider == "anthropic" else OPENAI_CASES["no-finish-reason"]
    )
    response = httpx2.Response(200, headers=SSE, content=ok)
    sent = [
        served(provider, sdk, response, monkeypatch, **credential)[2][0] for sdk in (False, True)
    ]
    names = ("authorization", "x-api-key", "anthropic-version", "anthropic-beta")
    names += ("content-type", "accept", "x-covey-agent")
    ours, ref = [{n: r.headers.get(n) for n in names} for r in sent]
    assert ours == ref
    assert ours["authorization"] is not None and ours["x-covey-agent"] == "helper"


TOOL_TURN = {
    "text": "Reading both.",
    "tool_calls": [
        {"name": "Read", "input": {"file_path": "a.py", "limit": 3}},
        {"name": "Read", "input": {"file_path": "ü/b.py"}},
    ],
    "usage": {"input": 700, "output": 30, "cache_read": 500, "cache_write": 100},
}


def test_anthropic_sdk_accumulator_agrees_with_covey() -> None:
    """The SDK's own `messages.stream(...).get_final_message()` on the same turn."""
    request = ModelRequest(system="s", messages=[Message.user("hi")], tools=[READ])
    with FakeServer(Script.model_validate({"turns": [TOOL_TURN]})) as srv:
        ours = asyncio.run(
            covey_anthropic.AnthropicModel("c", api_key="k", base_url=srv.url).complete(request)
        )

        async def reference() -> Any:
            body = covey_anthropic.build_request(request, "c", 16_000)
            sdk = anthropic.AsyncAnthropic(api_key="k", base_url=srv.url, max_retries=0)
            async with sdk as client, client.messages.stream(**body) as stream:
                return await stream.get_final_message()

        final = asyncio.run(reference())
    blocks = [b.model_dump(include={"type", "text", "id", "name", "input"}) for b in final.content]
    assert blocks == [b.model_dump(exclude_none=True) for b in ours.message.content]
    assert final.stop_reason == ours.stop_reason == "tool_use"
    assert final.model == ours.model
    usage = final.usage
    assert (usage.input_tokens, usage.output_tokens) == (ours.usage.input, ours.usage.output)
    assert usage.cache_read_input_tokens == ours.usage.cache_read == 500
    assert usage.cache_creation_input_tokens == ours.usage.cache_write == 100


def test_openai_sdk_accumulator_agrees_with_covey() -> None:
    """The SDK's own `chat.completions.stream(...).get_final_completion()` on the same turn."""
    request = ModelRequest(system="s", messages=[Message.user("hi")], tools=[READ])
    with FakeServer(Script.model_validate({"turns": [TOOL_TURN]})) as srv:
        url = srv.url + "/v1"
        ours = asyncio.run(
            covey_openai.OpenAIModel("g", api_key="k", base_url=url).complete(request)
        )

        async def reference() -> Any:
            body = covey_openai.build_request(request, "g")
            options = {"include_usage": True}
            async with openai.AsyncOpenAI(api_key="k", base_url=url, max_retries=0) as client:
                completions = client.chat.completions
                async with completions.stream(**body, stream_options=options) as stream:
                    return await stream.get_final_completion()

        final = asyncio.run(reference())
    message = final.choices[0].message
    assert message.content == ours.message.text
    calls = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls]
    assert calls == [(u.id, u.name, u.input) for u in ours.message.tool_uses]
    assert final.usage.prompt_tokens == ours.usage.input + ours.usage.cache_read
    assert final.usage.prompt_tokens_details.cached_tokens == ours.usage.cache_read
    assert final.usage.completion_tokens == ours.usage.output
