"""The fake provider server, driven by the real Anthropic and OpenAI SDKs over loopback HTTP,
and by raw sockets where the bytes on the wire matter."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

import covey.testing
from covey.models.script import Script
from covey.testing import fakeserver
from covey.testing.fakeserver import FakeServer

KEY = "sk-test-secret-value"
TOOL_INPUT = {"file_path": "tests/test_calc.py", "limit": 20, "nested": {"a": [1, 2, "x"]}}
USAGE = {"input": 1200, "output": 40, "cache_read": 300, "cache_write": 50}
HELLO = [{"role": "user", "content": "hi"}]


def script(*turns: dict[str, Any], **agents: list[dict[str, Any]]) -> Script:
    return Script.model_validate(
        {"turns": list(turns), "agents": {k: {"turns": v} for k, v in agents.items()}}
    )


TOOL_TURN = {
    "text": "I'll look at the test file first.",
    "tool_calls": [{"name": "Read", "input": TOOL_INPUT}, {"name": "Glob", "input": {"p": "*"}}],
    "usage": USAGE,
}


def claude(srv: FakeServer, **kw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=srv.url, **kw)


def gpt(srv: FakeServer, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=srv.url + "/v1", **kw)


def raw_post(
    srv: FakeServer, path: str, body: object, headers: dict[str, str] | None = None
) -> bytes:
    """The whole HTTP response, bytes as sent (chunk framing included), to EOF."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = {"x-api-key": KEY, **(headers or {})}
    lines = [f"POST {path} HTTP/1.1", f"host: 127.0.0.1:{srv.port}", "connection: close"]
    lines += [f"{k}: {v}" for k, v in head.items()] + [f"content-length: {len(data)}", "", ""]
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode() + data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def post(
    srv: FakeServer, path: str, body: object, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, body=data, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read())
    finally:
        conn.close()


def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) pairs from a de-chunked SSE body."""
    events = []
    for frame in raw.decode().split("\n\n"):
        if frame.strip():
            fields = dict(line.split(": ", 1) for line in frame.splitlines())
            events.append((fields.get("event"), fields["data"]))
    return events


def dechunk(raw: bytes) -> tuple[dict[str, str], bytes, bool]:
    """Headers, body and whether the terminating zero-length chunk arrived."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    body = b""
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return headers, body, True
        body, rest = body + rest[:size], rest[size + 2 :]
    return headers, body, False


def test_public_surface() -> None:
    assert covey.testing.__all__ == ["FakeServer"]
    assert covey.testing.FakeServer is FakeServer
    assert fakeserver.__all__ == ["AdvertisedLimits", "FakeServer", "RateWindow", "main"]


# --- Anthropic ---------------------------------------------------------------------------


def test_anthropic_message_with_tool_calls_and_usage() -> None:
    with FakeServer(script(TOOL_TURN)) as srv, claude(srv) as client:
        msg = client.messages.create(model="claude-test", max_tokens=100, messages=HELLO)
    assert msg.id.startswith("msg_") and msg.model == "claude-test" and msg.role == "assistant"
    assert msg.stop_reason == "tool_use" and msg.stop_sequence is None
    text, read, glob = msg.content
    assert text.type == "text" and text.text == TOOL_TURN["text"]
    assert read.type == "tool_use" and (read.id, read.name, read.input) == (
        "toolu_000_00",
        "Read",
        TOOL_INPUT,
    )
    assert glob.type == "tool_use" and glob.id == "toolu_000_01"
    u = msg.usage
    assert (u.input_tokens, u.output_tokens) == (1200, 40)
    assert (u.cache_read_input_tokens, u.cache_creation_input_tokens) == (300, 50)


def test_anthropic_stream_reassembles_chunked_tool_input() -> None:
    with (
        FakeServer(script(TOOL_TURN)) as srv,
        claude(srv) as client,
        client.messages.stream(model="m", max_tokens=100, messages=HELLO) as stream,
    ):
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == TOOL_TURN["text"]
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert final.content[1].type == "tool_use" and final.content[1].input == TOOL_INPUT
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (1200, 40)
    assert final.usage.cache_read_input_tokens == 300


def test_anthropic_stream_bytes_follow_the_real_event_order() -> None:
    with FakeServer(script(TOOL_TURN)) as srv:
        raw = raw_post(srv, "/v1/messages", {"model": "m", "messages": HELLO, "stream": True})
    headers, body, complete = dechunk(raw)
    assert raw.startswith(b"HTTP/1.1 200") and complete
    assert headers["transfer-encoding"] == "chunked"
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["request-id"].startswith("req_")
    for name in ("requests", "tokens"):
        for field in ("limit", "remaining", "reset"):
            assert f"anthropic-ratelimit-{name}-{field}" in headers
    events = sse_events(body)
    for name, data in events:
        assert json.loads(data)["type"] == name
    names = [n for n, _ in events if n != "ping"]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert events[1][0] == "ping"
    assert "ping" in [n for n, _ in events[3:-2]], "a ping in the middle too"
    start = json.loads(events[0][1])["message"]
    assert start["content"] == [] and start["usage"]["output_tokens"] == 1
    assert start["usage"]["cache_read_input_tokens"] == 300
    deltas = [json.loads(d)["delta"] for n, d in events if n == "content_block_delta"]
    text_parts = [d["text"] for d in deltas if d["type"] == "text_delta"]
    assert len(text_parts) > 1 and "".join(text_parts) == TOOL_TURN["text"]
    json_parts = [d["partial_json"] for d in deltas if d["type"] == "input_json_delta"]
    assert json_parts[0] == ""
    assert len({len(p) for p in json_parts[1:]}) > 1, "arbitrary chunk sizes"
    end = json.loads(events[-2][1])
    assert end["delta"]["stop_reason"] == "tool_use" and end["usage"]["output_tokens"] == 40


def test_estimated_usage_when_the_script_gives_none() -> None:
    with FakeServer(script({"text": "Fixed."})) as srv, claude(srv) as client:
        msg = client.messages.create(model="m", max_tokens=10, messages=HELLO)
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert msg.stop_reason == "end_turn"


# --- OpenAI ------------------------------------------------------------------------------


def test_openai_completion_with_tool_calls_and_usage() -> None:
    turn = {**TOOL_TURN, "text": None}
    with FakeServer(script(turn)) as srv, gpt(srv) as client:
        done = client.chat.completions.create(model="gpt-test", messages=HELLO)
    assert done.object == "chat.completion" and done.model == "gpt-test"
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [c.id for c in calls] == ["call_000_00", "call_000_01"]
    assert calls[0].type == "function" and calls[0].function.name == "Read"
    assert json.loads(calls[0].function.arguments) == TOOL_INPUT
    u = done.usage
    assert u is not None and u.prompt_tokens_details is not None
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (1550, 40, 1590)
    assert u.prompt_tokens_details.cached_tokens == 300


def test_openai_stream_merges_tool_calls_and_ends_with_usage() -> None:
    with FakeServer(script(TOOL_TURN)) as srv, gpt(srv) as client:
        stream = client.chat.completions.create(
            model="m",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    assert len({c.id for c in chunks}) == 1 and {c.object for c in chunks} == {
        "chat.completion.chunk"
    }
    assert chunks[0].choices[0].delta.role == "assistant"
    text, calls, finish = "", {}, None
    for c in chunks[:-1]:
        assert c.usage is None
        delta = c.choices[0].delta
        text += delta.content or ""
        for tc in delta.tool_calls or []:
            call = calls.setdefault(tc.index, {"id": tc.id, "name": None, "args": ""})
            if tc.function and tc.function.name:
                call["name"] = tc.function.name
            call["args"] += (tc.function and tc.function.arguments) or ""
        finish = c.choices[0].finish_reason or finish
    assert text == TOOL_TURN["text"] and finish == "tool_calls"
    assert calls[0]["id"] == "call_000_00" and calls[0]["name"] == "Read"
    assert json.loads(calls[0]["args"]) == TOOL_INPUT
    assert json.loads(calls[1]["args"]) == {"p": "*"}
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (1550, 40)


def test_openai_stream_bytes_end_with_done() -> None:
    with FakeServer(script(TOOL_TURN)) as srv:
        body = {"model": "m", "messages": HELLO, "stream": True}
        raw = raw_post(srv, "/v1/chat/completions", body, {"authorization": f"Bearer {KEY}"})
    headers, payload, complete = dechunk(raw)
    assert complete and headers["transfer-encoding"] == "chunked"
    assert "x-ratelimit-remaining-requests" in headers and "x-ratelimit-reset-tokens" in headers
    events = sse_events(payload)
    assert all(name is None for name, _ in events)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(d) for _, d in events[:-1]]
    assert "usage" not in chunks[0], "no usage fields without stream_options.include_usage"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    first_call = next(c for c in chunks if c["choices"][0]["delta"].get("tool_calls"))
    tc = first_call["choices"][0]["delta"]["tool_calls"][0]
    assert tc == {
        "index": 0,
        "id": "call_000_00",
        "type": "function",
        "function": {"name": "Read", "arguments": ""},
    }


# --- faults ------------------------------------------------------------------------------


def test_429_with_retry_after_then_success_on_the_next_attempt() -> None:
    turn = {"text": "ok", "faults": [{"status": 429, "retry_after": 0.1}]}
    with FakeServer(script(turn)) as srv, claude(srv, max_retries=0) as client:
        with pytest.raises(anthropic.RateLimitError) as err:
            client.messages.create(model="m", max_tokens=10, messages=HELLO)
        assert err.value.response.headers["retry-after"] == "0.1"
        assert err.value.body["error"]["type"] == "rate_limit_error"
        assert client.messages.create(model="m", max_tokens=10, messages=HELLO).content
    assert [(r["attempt"], r["fault"]) for r in srv.requests] == [
        (0, {"status": 429, "retry_after": 0.1}),
        (1, None),
    ]


def test_the_sdk_retry_honours_retry_after_and_gets_the_answer() -> None:
    turn = {"text": "ok", "faults": [{"status": 429, "retry_after": 0.2}]}
    with FakeServer(script(turn)) as srv, gpt(srv, max_retries=1) as client:
        started = time.monotonic()
        done = client.chat.completions.create(model="m", messages=HELLO)
        assert time.monotonic() - started >= 0.2
    assert done.choices[0].message.content == "ok"
    assert [r["attempt"] for r in srv.requests] == [0, 1]


def test_openai_429_error_body() -> None:
    turn = {"text": "ok", "faults": [{"status": 429, "retry_after": 1}]}
    with (
        FakeServer(script(turn)) as srv,
        gpt(srv, max_retries=0) as client,
        pytest.raises(openai.RateLimitError) as err,
    ):
        client.chat.completions.create(model="m", messages=HELLO)
    assert err.value.response.headers["retry-after"] == "1"
    assert err.value.code == "rate_limit_exceeded" and err.value.param is None


def test_529_overloaded() -> None:
    turn = {"text": "ok", "faults": [{"status": 529}, {"status": 529}]}
    with FakeServer(script(turn)) as srv:
        with claude(srv, max_retries=0) as client, pytest.raises(anthropic.OverloadedError) as err:
            client.messages.create(model="m", max_tokens=10, messages=HELLO)
        assert err.value.body["error"]["type"] == "overloaded_error"
        with gpt(srv, max_retries=0) as oai, pytest.raises(openai.InternalServerError) as err2:
            oai.chat.completions.create(model="m", messages=HELLO)
        assert err2.value.status_code == 529


@pytest.mark.parametrize("drop", ["before_blocks", "mid_text", "mid_tool"])
def test_drop_mid_stream_breaks_the_sdk_stream(drop: str) -> None:
    turn = {**TOOL_TURN, "faults": [{"drop": drop}]}
    with FakeServer(script(turn)) as srv, claude(srv, max_retries=0) as client:
        seen: list[str] = []
        with (
            pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"),
            client.messages.stream(model="m", max_tokens=10, messages=HELLO) as stream,
        ):
            seen.extend(event.type for event in stream)
        with client.messages.stream(model="m", max_tokens=10, messages=HELLO) as stream:
            assert stream.get_final_message().content[1].input == TOOL_INPUT
    assert "message_stop" not in seen


@pytest.mark.parametrize("drop", ["before_blocks", "mid_text", "mid_tool"])
def test_openai_drop_mid_stream(drop: str) -> None:
    turn = {**TOOL_TURN, "faults": [{"drop": drop}]}
    with FakeServer(script(turn)) as srv, gpt(srv, max_retries=0) as client:
        got: list[Any] = []
        with pytest.raises(openai.APIConnectionError):
            stream = client.chat.completions.create(model="m", messages=HELLO, stream=True)
            got.extend(stream)
    assert got == [] or got[-1].choices[0].finish_reason is None


@pytest.mark.parametrize(
    ("drop", "last"),
    [("before_blocks", "ping"), ("mid_text", "text_delta"), ("mid_tool", "input_json_delta")],
)
def test_drop_points_on_the_wire(drop: str, last: str) -> None:
    turn = {**TOOL_TURN, "faults": [{"drop": drop}]}
    with FakeServer(script(turn)) as srv:
        raw = raw_post(srv, "/v1/messages", {"model": "m", "messages": HELLO, "stream": True})
    _, body, complete = dechunk(raw)
    assert not complete, "no terminating zero-length chunk"
    events = [json.loads(d) for _, d in sse_events(body)]
    assert events[-1].get("delta", events[-1])["type"] == last
    if drop == "mid_tool":
        assert events[-1]["delta"]["partial_json"] != ""
        assert events[-3]["content_block"]["type"] == "tool_use"


def test_drop_on_a_non_streaming_request_closes_without_response() -> None:
    turn = {"text": "ok", "faults": [{"drop": "mid_text"}]}
    with FakeServer(script(turn)) as srv, claude(srv, max_retries=0) as client:
        with pytest.raises(anthropic.APIConnectionError):
            client.messages.create(model="m", max_tokens=10, messages=HELLO)
        assert client.messages.create(model="m", max_tokens=10, messages=HELLO).content


# --- requests, routing, auth -------------------------------------------------------------


def test_turns_follow_assistant_messages_and_agent_header() -> None:
    s = script({"text": "main 1"}, {"text": "main 2"}, reviewer=[{"text": "review 1"}])
    history = [*HELLO, {"role": "assistant", "content": "main 1"}, *HELLO]
    with FakeServer(s) as srv, claude(srv) as client:
        second = client.messages.create(model="m", max_tokens=10, messages=history)
        review = client.messages.create(
            model="m", max_tokens=10, messages=HELLO, extra_headers={"x-covey-agent": "reviewer"}
        )
        with pytest.raises(anthropic.BadRequestError, match="has 1 turn"):
            client.messages.create(
                model="m",
                max_tokens=10,
                messages=history,
                extra_headers={"x-covey-agent": "reviewer"},
            )
    assert second.content[0].text == "main 2"
    assert review.content[0].text == "review 1"
    assert [(r["agent"], r["turn"]) for r in srv.requests] == [
        (None, 1),
        ("reviewer", 0),
        ("reviewer", 1),
    ]


def test_delay_is_honoured() -> None:
    with FakeServer(script({"text": "slow", "delay_s": 0.2})) as srv, claude(srv) as client:
        started = time.monotonic()
        client.messages.create(model="m", max_tokens=10, messages=HELLO)
        assert time.monotonic() - started >= 0.2


def test_missing_or_wrong_key_is_401() -> None:
    with FakeServer(script({"text": "ok"}), require_key=KEY) as srv:
        status, _, body = post(srv, "/v1/messages", {"messages": HELLO})
        assert status == 401 and body["error"]["type"] == "authentication_error"
        status, _, body = post(srv, "/v1/chat/completions", {"messages": HELLO})
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
        with (
            anthropic.Anthropic(api_key="wrong", base_url=srv.url, max_retries=0) as client,
            pytest.raises(anthropic.AuthenticationError),
        ):
            client.messages.create(model="m", max_tokens=10, messages=HELLO)
        with claude(srv) as client:
            assert client.messages.create(model="m", max_tokens=10, messages=HELLO).content
    assert "wrong" not in json.dumps(srv.requests) and KEY not in json.dumps(srv.requests)


def test_unknown_path_is_404_and_bad_json_is_400() -> None:
    auth = {"x-api-key": KEY}
    with FakeServer(script({"text": "ok"})) as srv:
        status, _, body = post(srv, "/v1/complete", {"prompt": "x"}, auth)
        assert status == 404 and body["error"]["type"] == "not_found_error"
        status, _, body = post(srv, "/v1/messages", b"{not json", auth)
        assert status == 400 and "not valid JSON" in body["error"]["message"]
        status, headers, body = post(srv, "/v1/chat/completions", b"[", auth)
        assert status == 400 and body["error"]["type"] == "invalid_request_error"
        assert "x-request-id" in headers


def test_request_log_redacts_keys(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    with FakeServer(script({"text": "ok"}), log_path=log) as srv:
        with claude(srv) as client:
            client.messages.create(model="m", max_tokens=10, messages=HELLO)
        with gpt(srv) as oai:
            oai.chat.completions.create(model="m", messages=HELLO)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines == srv.requests and len(lines) == 2
    assert KEY not in log.read_text()
    assert lines[1]["headers"]["authorization"] == "<redacted>"
    assert lines[1]["path"] == "/v1/chat/completions" and lines[1]["body"]["messages"] == HELLO
    assert set(lines[0]) == {
        "ts",
        "path",
        "agent",
        "turn",
        "attempt",
        "fault",
        "stream",
        "headers",
        "body",
        "usage",
    }
    assert lines[0]["usage"]["input"] > 0  # what the answer billed, for ledger tests


# --- the command line --------------------------------------------------------------------


def test_cli_serves_writes_port_file_and_log(tmp_path: Path) -> None:
    script_file = tmp_path / "turns.yaml"
    script_file.write_text("turns:\n  - text: from the cli\n", encoding="utf-8")
    port_file, log = tmp_path / "port", tmp_path / "log.jsonl"
    cmd = [sys.executable, "-m", "covey.testing.fakeserver", "--script", str(script_file)]
    cmd += ["--port", "0", "--port-file", str(port_file), "--log", str(log)]
    cmd += ["--require-key", KEY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no port file"
            time.sleep(0.02)
        port = int(port_file.read_text())
        url = f"http://127.0.0.1:{port}"
        with anthropic.Anthropic(api_key=KEY, base_url=url, max_retries=0) as client:
            msg = client.messages.create(model="m", max_tokens=10, messages=HELLO)
        assert msg.content[0].text == "from the cli"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"127.0.0.1:{port}" in out.decode()
    text = log.read_text()
    assert KEY not in text
    (record,) = [json.loads(line) for line in text.splitlines()]
    assert record["turn"] == 0 and record["headers"]["authorization"] == "<redacted>"


def test_cli_bad_script_exits_2_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    cmd = [sys.executable, "-m", "covey.testing.fakeserver", "--script", str(missing)]
    cmd += ["--port", "0", "--port-file", str(tmp_path / "port")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and str(missing) in done.stderr
    assert not (tmp_path / "port").exists()


def test_conversations_the_real_apis_refuse_are_400() -> None:
    use = {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}
    twice = [
        *HELLO,
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": [result]},
        {"role": "user", "content": [result, {"type": "text", "text": "continue"}]},
    ]
    call = {"id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": "{}"}}
    orphan = [*HELLO, {"role": "assistant", "content": None, "tool_calls": [call]}, *HELLO]
    with FakeServer(script({"text": "a"}, {"text": "b"})) as srv:
        with claude(srv, max_retries=0) as client, pytest.raises(anthropic.BadRequestError) as e:
            client.messages.create(
                model="m",
                max_tokens=10,
                messages=twice,
                tools=[{"name": "Bash", "input_schema": {"type": "object"}}],
            )
        assert e.value.type == "invalid_request_error"
        assert "Found multiple `tool_result` blocks with id: toolu_1" in e.value.message
        with gpt(srv, max_retries=0) as oai, pytest.raises(openai.BadRequestError) as o:
            oai.chat.completions.create(model="m", messages=orphan)
        assert o.value.type == "invalid_request_error"
        assert "did not have response messages: call_1" in o.value.message
    assert [r["turn"] for r in srv.requests] == [None, None], "no turn is spent on them"


def test_a_compaction_summary_counts_the_turns_it_stands_for() -> None:
    summary = '<compact-summary turns="2">\nearlier work\n</compact-summary>'
    history = [{"role": "user", "content": summary}, {"role": "assistant", "content": "t2"}, *HELLO]
    with FakeServer(script(*({"text": f"turn {i}"} for i in range(4)))) as srv:
        with claude(srv) as client:
            reply = client.messages.create(model="m", max_tokens=10, messages=history)
        with gpt(srv) as oai:
            system = [{"role": "system", "content": "s"}]
            chat = oai.chat.completions.create(model="m", messages=[*system, *history])
    assert reply.content[0].text == "turn 3"
    assert chat.choices[0].message.content == "turn 3"
