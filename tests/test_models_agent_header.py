"""The `x-covey-agent` header goes to the fake server (loopback), never to a real provider."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from covey.messages import Message
from covey.models._http import Endpoint, agent_headers
from covey.models.anthropic import AnthropicModel
from covey.models.base import ModelRequest
from covey.models.openai import OpenAIModel
from covey.models.retry import RetryPolicy
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer

FAST = RetryPolicy(initial_delay=0.01, max_delay=0.05)
REQUEST = ModelRequest(system="s", messages=[Message.user("hi")], agent_name="reviewer")
SCRIPT = Script.model_validate(
    {"turns": [{"text": "main"}], "agents": {"reviewer": {"turns": [{"text": "r"}]}}}
)


def make(kind: str, base_url: str) -> Any:
    if kind == "anthropic":
        return AnthropicModel("claude-test", api_key="k", base_url=base_url, retry=FAST)
    return OpenAIModel("gpt-test", api_key="k", base_url=base_url + "/v1", retry=FAST)


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_the_fake_server_on_loopback_gets_the_agent_header(kind: str) -> None:
    with FakeServer(SCRIPT) as srv:
        response = asyncio.run(make(kind, srv.url).complete(REQUEST))
    assert response.message.text == "r"
    assert srv.requests[0]["headers"]["x-covey-agent"] == "reviewer"


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_a_provider_that_is_not_on_loopback_never_sees_the_agent_header(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request goes to a remote-looking host through an HTTP proxy, which is the fake
    server: it records exactly what a remote provider would have received."""
    with FakeServer(SCRIPT) as srv:
        monkeypatch.setenv("HTTP_PROXY", srv.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        response = asyncio.run(make(kind, "http://api.provider.test").complete(REQUEST))
    assert response.message.text == "main"  # the server could not tell the agent
    (sent,) = srv.requests
    assert sent["headers"]["host"] == "api.provider.test"
    assert "x-covey-agent" not in sent["headers"]


@pytest.mark.parametrize(
    ("base_url", "sent"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://127.8.0.1", True),
        ("http://[::1]:9/v1", True),
        ("http://localhost:11434/v1", True),
        ("https://api.anthropic.com", False),
        ("https://api.openai.com/v1", False),
        ("http://10.0.0.5:8000/v1", False),
        ("http://localhost.example.com", False),
    ],
)
def test_only_loopback_base_urls_get_the_header(base_url: str, sent: bool) -> None:
    endpoint = Endpoint(provider="anthropic", base_url=base_url, key_var="K")
    assert bool(agent_headers(endpoint, "reviewer")) is sent
    assert agent_headers(endpoint, None) == {}
