"""HTTP clients (connection pools) per event loop: a model's requests reuse its kept-alive
connection, the models of a loop (sessions, subagents, teammates) share the loop's few
clients, and they are closed when the loop shuts down, so no connection outlives its loop
(the suite runs with `-W error`)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from clitools import covey
from covey.messages import Message
from covey.models import _pool
from covey.models._pool import POOLS, loop_http
from covey.models.anthropic import AnthropicModel
from covey.models.base import ModelRequest
from covey.models.openai import OpenAIModel
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer

AGENTS = ("main", "reviewer", "tester", "writer")
SCRIPT = Script.model_validate(
    {
        "turns": [{"text": "main"}],
        "agents": {name: {"turns": [{"text": name}]} for name in AGENTS[1:]},
    }
)


def make(kind: str, base_url: str) -> Any:
    if kind == "anthropic":
        return AnthropicModel("claude-test", api_key="k", base_url=base_url)
    return OpenAIModel("gpt-test", api_key="k", base_url=base_url + "/v1")


def ask(agent: str = "main") -> ModelRequest:
    name = None if agent == "main" else agent
    return ModelRequest(system="s", messages=[Message.user("hi")], agent_name=name)


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_requests_in_one_loop_reuse_one_connection(kind: str) -> None:
    async def three_requests() -> list[str]:
        model = make(kind, srv.url)
        return [(await model.complete(ask())).message.text for _ in range(3)]

    with FakeServer(SCRIPT) as srv:
        assert asyncio.run(three_requests()) == ["main"] * 3
        assert srv.accepted == 1


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_models_of_one_loop_share_the_pool(kind: str) -> None:
    """Subagents and teammates run in their lead's loop, each with a model of its own: their
    concurrent requests open a connection each, and the next round reuses them."""

    async def rounds() -> list[list[str]]:
        models = {agent: make(kind, srv.url) for agent in AGENTS}
        answers = []
        for _ in range(2):
            replies = await asyncio.gather(*(models[a].complete(ask(a)) for a in AGENTS))
            answers.append([reply.message.text for reply in replies])
        return answers

    with FakeServer(SCRIPT) as srv:
        assert asyncio.run(rounds()) == [list(AGENTS)] * 2
        assert srv.accepted == len(AGENTS)


def test_each_loop_has_its_own_clients_closed_when_the_loop_ends() -> None:
    async def one_request() -> list[httpx2.AsyncClient]:
        model = make("anthropic", srv.url)
        reply = await model.complete(ask())
        assert reply.message.text == "main"
        http = await loop_http(model._pool)
        assert await loop_http(model._pool) is http
        return [http, await loop_http(model._pool + 1)]

    with FakeServer(SCRIPT) as srv:
        first = asyncio.run(one_request())
        second = asyncio.run(one_request())
    assert not set(first) & set(second)
    assert all(http.is_closed for http in first + second)
    assert _pool._LOOP_CLIENTS == {}
    assert srv.accepted == 2


def test_many_models_spread_over_a_few_clients() -> None:
    """httpx's pool looks at each of its connections whenever a request starts or ends: a
    hundred sessions on one client cost more CPU than a client per request."""

    async def clients_of(models: list[Any]) -> set[httpx2.AsyncClient]:
        return {await loop_http(m._pool) for m in models}

    models = [make("anthropic", "http://127.0.0.1:9") for _ in range(3 * POOLS)]
    assert len(asyncio.run(clients_of(models))) == POOLS


def test_a_loop_that_never_asks_a_model_makes_no_client() -> None:
    async def nothing() -> None:
        await asyncio.sleep(0)

    asyncio.run(nothing())
    assert _pool._LOOP_CLIENTS == {}


def test_covey_print_keeps_one_connection_for_the_whole_run(git_repo: Path) -> None:
    """`covey -p` runs one loop: four turns (three tool calls) over one connection, and the
    process ends without a resource warning."""
    bash = {"name": "Bash", "input": {"command": "true"}}
    script = {"turns": [{"tool_calls": [bash]}] * 3 + [{"text": "Done."}]}
    (git_repo.parent / "s.yaml").write_text(yaml.safe_dump(script))
    with FakeServer(Script.model_validate(script)) as srv:
        run = covey(
            *("-p", "go", "--model", "anthropic:claude-sonnet-4-5"),
            *("--permission-mode", "bypassPermissions"),
            cwd=git_repo,
            env={
                "ANTHROPIC_API_KEY": "k",
                "ANTHROPIC_BASE_URL": srv.url,
                "PYTHONWARNINGS": "error",
            },
        )
        assert run.code == 0, run.err
        assert run.out.strip() == "Done."
        assert len(srv.requests) == 4
        assert srv.accepted == 1
    assert "Warning" not in run.err and "unclosed" not in run.err, run.err


def test_the_fake_server_sends_small_writes_at_once_on_a_kept_alive_connection() -> None:
    """Its SSE events are small writes: with Nagle's algorithm on, each request on a reused
    connection waited for the client's delayed ACK (~40 ms), as no real provider makes it."""

    async def request_then_look() -> list[int]:
        await make("anthropic", srv.url).complete(ask())
        with srv._lock:
            conns = list(srv._connections)
        return [c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for c in conns]

    with FakeServer(SCRIPT) as srv:
        flags = asyncio.run(request_then_look())
    assert flags and all(flags)
