"""Malformed SSE streams (a `data:` line that is not JSON, a delta for a block that never
started), from the loopback fake server through covey's adapters: retried like a dropped stream,
never a traceback, never an empty "success"."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from clitools import covey
from covey.errors import ModelError
from covey.messages import Message
from covey.models.anthropic import AnthropicModel
from covey.models.base import ModelRequest, ModelResponse
from covey.models.openai import OpenAIModel
from covey.models.retry import RetryNotice, RetryPolicy
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer

FAST = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05)
KINDS = ["anthropic", "openai"]
TEXT = "The bug is in add(): it subtracts."
TOOL_TURN = {"text": "Reading.", "tool_calls": [{"name": "Read", "input": {"file_path": "a"}}]}


def script(turn: dict[str, Any]) -> Script:
    return Script.model_validate({"turns": [turn]})


def ask(kind: str, srv: FakeServer, notices: list[RetryNotice]) -> ModelResponse:
    model: AnthropicModel | OpenAIModel
    if kind == "anthropic":
        model = AnthropicModel(
            "claude-test", api_key="k", base_url=srv.url, retry=FAST, on_retry=notices.append
        )
    else:
        model = OpenAIModel(
            "gpt-test", api_key="k", base_url=srv.url + "/v1", retry=FAST, on_retry=notices.append
        )
    request = ModelRequest(system="s", messages=[Message.user("why does the test fail?")])
    return asyncio.run(model.complete(request))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("malformed", ["not_json", "bad_index"])
@pytest.mark.parametrize("at", ["before_blocks", "mid_text"])
def test_a_malformed_event_is_retried_like_a_dropped_stream(
    kind: str, malformed: str, at: str
) -> None:
    turn = {"text": TEXT, "faults": [{"malformed": malformed, "at": at}]}
    notices: list[RetryNotice] = []
    with FakeServer(script(turn)) as srv:
        response = ask(kind, srv, notices)
    assert response.message.text == TEXT
    assert [r["attempt"] for r in srv.requests] == [0, 1]
    (notice,) = notices
    assert notice.reason.startswith("malformed stream ("), notice.reason


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("malformed", ["not_json", "bad_index"])
def test_a_malformed_event_during_a_tool_call_is_final(kind: str, malformed: str) -> None:
    turn = {**TOOL_TURN, "faults": [{"malformed": malformed, "at": "mid_tool"}]}
    with FakeServer(script(turn)) as srv, pytest.raises(ModelError) as caught:
        ask(kind, srv, [])
    assert len(srv.requests) == 1, "a tool call had begun: no retry, so it cannot run twice"
    message = str(caught.value)
    assert "during a tool call" in message and "malformed stream" in message
    assert "\n" not in message


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_streams_beyond_the_retries_fail_with_one_line(kind: str) -> None:
    turn = {"text": TEXT, "faults": [{"malformed": "bad_index"}] * 4}
    with FakeServer(script(turn)) as srv, pytest.raises(ModelError) as caught:
        ask(kind, srv, [])
    assert len(srv.requests) == 4
    message = str(caught.value)
    assert message.startswith(f"{kind}: gave up after 3 retries: malformed stream (")
    assert "never started" in message and "\n" not in message


@pytest.mark.parametrize("kind", KINDS)
def test_covey_p_on_a_malformed_stream_retries_then_fails_in_one_line(
    kind: str, git_repo: Path
) -> None:
    (git_repo / ".covey").mkdir()
    settings = {"retries": {"maxRetries": 1, "initialDelay": 0.01, "maxDelay": 0.05}}
    (git_repo / ".covey" / "settings.json").write_text(json.dumps(settings))
    turn = {"text": "never", "faults": [{"malformed": "not_json"}] * 2}
    with FakeServer(script(turn)) as srv:
        if kind == "anthropic":
            env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": srv.url}
            model = "anthropic:claude-sonnet-4-5"
        else:
            env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": srv.url + "/v1"}
            model = "openai:gpt-4.1"
        run = covey("-p", "hi", "--model", model, cwd=git_repo, env=env)
    assert run.code == 1, (run.out, run.err)
    assert "Traceback" not in run.err
    failures = [line for line in run.err.splitlines() if "malformed stream" in line]
    assert failures[-1].startswith(f"covey: {kind}: gave up after 1 retries: malformed stream")
    assert run.out == ""


def test_the_malformed_fault_is_part_of_the_script_format(tmp_path: Path) -> None:
    from covey.models.script import load_script

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"turns": [{"text": "x", "faults": [{"malformed": "nope"}]}]}))
    with pytest.raises(Exception, match="malformed"):
        load_script(path)


def test_deltas_of_a_block_covey_does_not_keep_are_not_malformed() -> None:
    """A thinking block (started, then its deltas) is skipped, not taken for a stray index."""
    import httpx2

    start = {"type": "message", "id": "m", "role": "assistant", "model": "c", "content": []}
    start |= {"stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 1}}
    events = [
        {"type": "message_start", "message": start},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta"}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "ok"}},
        {"type": "message_stop"},
    ]
    events[2]["delta"]["thinking"] = "hmm"
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    async def run() -> ModelResponse:
        m = AnthropicModel("c", api_key="k")
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
            request = {"model": "c", "max_tokens": 10, "messages": []}
            return await m._attempt(http, json.dumps(request).encode(), {}, None)

    assert asyncio.run(run()).message.text == "ok"


def test_the_malformed_fault_on_a_non_streaming_request_is_a_body_that_is_not_json() -> None:
    import httpx2

    turn = {"text": TEXT, "faults": [{"malformed": "not_json"}]}
    with FakeServer(script(turn)) as srv:
        body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        headers = {"x-api-key": "k"}
        first = httpx2.post(srv.url + "/v1/messages", json=body, headers=headers)
        second = httpx2.post(srv.url + "/v1/messages", json=body, headers=headers)
    assert first.status_code == 200
    with pytest.raises(ValueError):
        first.json()
    assert second.json()["content"] == [{"type": "text", "text": TEXT}]


def _anthropic_events(events: list[dict[str, object]]) -> ModelResponse:
    import httpx2

    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    async def run() -> ModelResponse:
        m = AnthropicModel("c", api_key="k")
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
            request = {"model": "c", "max_tokens": 10, "messages": []}
            return await m._attempt(http, json.dumps(request).encode(), {}, None)

    return asyncio.run(run())


TEXT_START = {
    "type": "content_block_start",
    "index": 0,
    "content_block": {"type": "text", "text": ""},
}


def _delta(delta: object, index: int = 0) -> dict[str, object]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


START = {"type": "message", "id": "m", "role": "assistant", "model": "c", "content": []}
START |= {"stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 1}}
MESSAGE_START = {"type": "message_start", "message": START}


@pytest.mark.parametrize(
    ("events", "words"),
    [
        ([TEXT_START, TEXT_START], "content_block_start for block 0, which already began"),
        ([{**TEXT_START, "index": None}], "content_block_start with index None, not a number"),
        ([TEXT_START, _delta("junk")], "a delta for content block 0 that is not an object"),
        (
            [TEXT_START, _delta({"type": "text_delta", "text": None})],
            "the text_delta's text is NoneType, not text",
        ),
        ([{"type": "content_block_start", "index": 0}], "block 0 without a block"),
    ],
)
def test_anthropic_events_that_do_not_fit_are_malformed(
    events: list[dict[str, object]], words: str
) -> None:
    from covey.models.retry import Retryable

    with pytest.raises(Retryable) as caught:
        _anthropic_events([MESSAGE_START, *events])
    assert caught.value.reason.startswith("malformed stream (")
    assert words in caught.value.reason


def test_anthropic_event_and_delta_types_covey_does_not_know_are_ignored() -> None:
    """covey goes by their `type` and skips them, as the API asks."""
    response = _anthropic_events(
        [
            MESSAGE_START,
            {"type": "future_event", "detail": {"x": 1}},
            TEXT_START,
            _delta({"type": "text_delta", "text": "ok"}),
            _delta({"type": "future_delta", "x": 1}),
            {"type": "content_block_start", "index": 1, "content_block": {"type": "future_block"}},
            _delta({"type": "future_delta", "y": 2}, index=1),
            {"type": "message_stop"},
        ]
    )
    assert response.message.text == "ok"


def _openai_chunks(chunks: list[object]) -> ModelResponse:
    import httpx2

    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode() + b"data: [DONE]\n\n"

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    async def run() -> ModelResponse:
        m = OpenAIModel("g", api_key="k")
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
            return await m._attempt(http, b'{"model":"g","messages":[]}', {}, None)

    return asyncio.run(run())


def _chunk(delta: object, finish: object = None) -> dict[str, object]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "g",
        "choices": [choice],
    }


@pytest.mark.parametrize(
    ("chunks", "words"),
    [
        (["just a string"], "a chunk of the wrong shape"),
        ([_chunk({"content": 42}, "stop")], "the delta's content or refusal is int, not text"),
        ([_chunk({"content": "hi"}, {"why": "stop"})], "the finish_reason is dict, not text"),
        (
            [_chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": 7}}]})],
            "the tool call's name is int, not text",
        ),
        (
            [_chunk({"tool_calls": [{"index": 3, "function": {"arguments": "{}"}}]})],
            "a fragment of tool call 3, which never started",
        ),
    ],
)
def test_openai_chunks_that_do_not_fit_are_malformed(chunks: list[object], words: str) -> None:
    from covey.errors import ModelError
    from covey.models.retry import Retryable

    with pytest.raises((Retryable, ModelError)) as caught:
        _openai_chunks(chunks)
    assert "malformed stream (" in str(caught.value)
    assert words in str(caught.value)
