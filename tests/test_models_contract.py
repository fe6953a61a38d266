"""Contract: covey's own provider client against the official SDKs, over real HTTP.

The same conversation goes through covey's adapter (`AnthropicModel`, `OpenAIModel`, over
`covey.models._client`) and through the same adapter with the SDK as its transport
(`sdk_reference`), each against a fresh loopback fake server that requires the key. Both
must send the same request (path, JSON body, the headers that matter) and come back with the
same result: the same `ModelResponse` and streamed text, or the same covey error with the same
retry notices (so the same retry-after).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from covey.messages import Message, ToolResultBlock, ToolUseBlock, Usage
from covey.models.anthropic import AnthropicModel
from covey.models.base import ModelRequest, ModelResponse, ToolSpec
from covey.models.openai import OpenAIModel
from covey.models.retry import RetryNotice, RetryPolicy
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer
from sdk_reference import SdkAnthropicModel, SdkOpenAIModel

KEY = "sk-contract"
NO_WAIT = RetryPolicy(max_retries=2, initial_delay=0.0, max_delay=0.0)
READ = ToolSpec("Read", "Read a file.", {"type": "object", "properties": {"file_path": {}}})
GREP = ToolSpec("Grep", "Search.", {"type": "object", "properties": {"pattern": {}}})
HEADERS_THAT_MATTER = (
    "authorization",
    "x-api-key",
    "anthropic-version",
    "anthropic-beta",
    "content-type",
    "accept",
    "x-covey-agent",
)
PROVIDERS = ("anthropic", "openai")

FIRST = Message.user("Why do the tests fail? ünïcode ✓")
CALLS = Message(
    role="assistant",
    content=[
        ToolUseBlock(id="toolu_a", name="Read", input={"file_path": "calc.py"}),
        ToolUseBlock(id="toolu_b", name="Grep", input={"pattern": "def add"}),
    ],
)
RESULTS = Message(
    role="user",
    content=[
        ToolResultBlock(tool_use_id="toolu_a", content="def add(a, b): return a - b"),
        ToolResultBlock(tool_use_id="toolu_b", content="no such file", is_error=True),
    ],
)


@dataclass
class Outcome:
    response: ModelResponse | None = None
    error: tuple[str, str] | None = None
    texts: list[str] = field(default_factory=list)
    notices: list[RetryNotice] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


def make(provider: str, sdk: bool, base_url: str, notices: list[RetryNotice]) -> Any:
    if provider == "anthropic":
        kind: Any = SdkAnthropicModel if sdk else AnthropicModel
        return kind(
            "claude-test", api_key=KEY, base_url=base_url, retry=NO_WAIT, on_retry=notices.append
        )
    kind = SdkOpenAIModel if sdk else OpenAIModel
    return kind(
        "gpt-test", api_key=KEY, base_url=base_url + "/v1", retry=NO_WAIT, on_retry=notices.append
    )


def run(provider: str, sdk: bool, script: dict[str, Any], request: ModelRequest) -> Outcome:
    out = Outcome()
    with FakeServer(Script.model_validate(script), require_key=KEY) as srv:
        model = make(provider, sdk, srv.url, out.notices)
        try:
            out.response = asyncio.run(model.complete(request, on_text=out.texts.append))
        except Exception as e:  # the contract compares whatever comes out
            out.error = (type(e).__name__, str(e).replace(srv.url, "<server>"))
        out.requests = [
            {
                "path": r["path"],
                "stream": r["stream"],
                "body": r["body"],
                "headers": {k: v for k, v in r["headers"].items() if k in HEADERS_THAT_MATTER},
            }
            for r in srv.requests
        ]
    return out


def both(provider: str, script: dict[str, Any], request: ModelRequest) -> Outcome:
    """covey's outcome, after checking it is the SDK's."""
    ours = run(provider, False, script, request)
    reference = run(provider, True, script, request)
    assert ours.requests == reference.requests
    assert ours.error == reference.error
    assert ours.response == reference.response
    assert ours.texts == reference.texts
    assert ours.notices == reference.notices
    return ours


def turns(*turns: dict[str, Any], **agents: list[dict[str, Any]]) -> dict[str, Any]:
    return {"turns": list(turns), "agents": {k: {"turns": v} for k, v in agents.items()}}


CACHED = {"input": 1200, "output": 40, "cache_read": 900, "cache_write": 300}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_text_turn_with_tools_and_cached_usage(provider: str) -> None:
    request = ModelRequest(system="You help.", messages=[FIRST], tools=[READ, GREP])
    text = "The tests fail because add() subtracts. " * 5
    out = both(provider, turns({"text": text, "usage": CACHED}), request)
    assert out.response is not None and out.response.message.text == text
    assert len(out.texts) > 1  # it did stream
    if provider == "anthropic":
        assert out.response.usage == Usage(input=1200, output=40, cache_read=900, cache_write=300)
    (sent,) = out.requests
    assert sent["stream"] is True
    assert sent["headers"]["authorization"] == "<redacted>"  # checked by require_key
    assert sent["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streaming_tool_calls_with_a_text_preamble(provider: str) -> None:
    calls = [
        {"name": "Read", "input": {"file_path": "calc.py", "limit": 40, "nested": {"a": [1, 2]}}},
        {"name": "Grep", "input": {"pattern": "def (add|sub)\\(", "path": "ß/ü"}},
    ]
    request = ModelRequest(system="s", messages=[FIRST], tools=[READ, GREP])
    out = both(provider, turns({"text": "Let me look.", "tool_calls": calls}), request)
    assert out.response is not None
    assert [u.input for u in out.response.message.tool_uses] == [c["input"] for c in calls]
    assert out.response.stop_reason == "tool_use"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_conversation_with_tool_results_for_a_subagent(provider: str) -> None:
    request = ModelRequest(
        system="s",
        messages=[FIRST, CALLS, RESULTS],
        tools=[READ, GREP],
        agent_name="reviewer",
        max_tokens=1234,
    )
    script = turns({"text": "main"}, reviewer=[{"text": "unused"}, {"text": "add() subtracts"}])
    out = both(provider, script, request)
    assert out.response is not None and out.response.message.text == "add() subtracts"
    assert out.requests[0]["headers"]["x-covey-agent"] == "reviewer"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_choice_none(provider: str) -> None:
    request = ModelRequest(system="s", messages=[FIRST], tools=[READ], allow_tool_calls=False)
    script = turns({"text": "summary", "tool_calls": [{"name": "Read", "input": {}}]})
    out = both(provider, script, request)
    assert out.response is not None and out.response.message.tool_uses == []


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "fault",
    [
        {"status": 400, "message": "messages.0: bad block"},
        {"status": 400, "message": "prompt is too long: 210000 tokens > 200000 maximum"},
        {"status": 401},
        {"status": 403},
        {"status": 404},
        {"status": 413},
        {"status": 429, "retry_after": 0.01},
        {"status": 500},
        {"status": 502},
        {"status": 529},
        {"drop": "before_blocks"},
        {"drop": "mid_text"},
        {"drop": "mid_tool"},
        {"malformed": "not_json"},
        {"malformed": "bad_index"},
        {"malformed": "bad_index", "at": "mid_tool"},
    ],
    ids=lambda f: "-".join(str(v) for v in f.values()),
)
def test_a_fault_once_then_an_answer(provider: str, fault: dict[str, Any]) -> None:
    turn = {
        "text": "All twelve tests pass now.",
        "tool_calls": [{"name": "Read", "input": {"file_path": "calc.py"}}],
        "faults": [fault],
    }
    request = ModelRequest(system="s", messages=[FIRST], tools=[READ])
    out = both(provider, turns(turn), request)
    if out.error is None:
        assert len(out.notices) == 1
    if "retry_after" in fault:
        assert out.notices[0].delay_s == 0.01


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", [429, 500, 529])
def test_faults_beyond_the_retries(provider: str, status: int) -> None:
    turn = {"text": "never", "faults": [{"status": status}] * 3}
    out = both(provider, turns(turn), ModelRequest(system="", messages=[FIRST]))
    assert out.error is not None and "gave up after 2 retries" in out.error[1]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_wrong_key_is_refused_alike(provider: str) -> None:
    """Both send the key the same way: a key the server does not want is a 401 for both."""
    ours, reference = [_with_key(provider, sdk, "sk-wrong") for sdk in (False, True)]
    assert ours == reference
    assert ours[0] == "CredentialsError"


def _with_key(provider: str, sdk: bool, key: str) -> tuple[str, str]:
    with FakeServer(Script.model_validate(turns({"text": "x"})), require_key=KEY) as srv:
        model = make(provider, sdk, srv.url, [])
        if provider == "anthropic":
            model._credential = key
        else:
            model._api_key = key
        try:
            asyncio.run(model.complete(ModelRequest(system="", messages=[FIRST])))
        except Exception as e:
            return type(e).__name__, str(e).replace(srv.url, "<server>")
    raise AssertionError("the wrong key was accepted")
