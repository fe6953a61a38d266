"""Helpers for agent-team tests: a fake provider whose routes are the teammates' names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clitools import CliRun, covey
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer

TEAMS_ON = {"COVEY_EXPERIMENTAL_AGENT_TEAMS": "1"}
MODEL = ["--model", "anthropic:claude-sonnet-4-5"]


def call(tool: str, **tool_input: Any) -> dict[str, Any]:
    return {"name": tool, "input": tool_input}


def spawn(name: str, prompt: str, **extra: Any) -> dict[str, Any]:
    args = {"name": name, "description": f"teammate {name}", "prompt": prompt, **extra}
    return {"name": "Agent", "input": args}


@contextmanager
def fake(
    script: dict[str, Any], *, teams: bool = True
) -> Iterator[tuple[FakeServer, dict[str, str]]]:
    with FakeServer(Script.model_validate(script)) as srv:
        env = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": srv.url}
        yield srv, {**env, **(TEAMS_ON if teams else {})}


def run(repo: Path, env: dict[str, str], *more: str, prompt: str = "go") -> CliRun:
    return covey(
        "-p", prompt, "--output-format", "json", "--permission-mode", "acceptEdits",
        *MODEL, *more, cwd=repo, env=env,
    )  # fmt: skip


def requests_of(srv: FakeServer, agent: str | None) -> list[dict[str, Any]]:
    return [r for r in srv.requests if r["agent"] == agent and r["turn"] is not None]


def tool_results(request: dict[str, Any]) -> list[tuple[str, bool]]:
    """(content, is_error) of the tool results in the request's last user turn."""
    out = []
    for block in _last_user(request):
        if block.get("type") == "tool_result":
            content = block["content"]
            if isinstance(content, list):
                content = "".join(c.get("text", "") for c in content)
            out.append((content, bool(block.get("is_error"))))
    return out


def _last_user(request: dict[str, Any]) -> list[dict[str, Any]]:
    message = request["body"]["messages"][-1]
    content = message["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def texts(request: dict[str, Any]) -> str:
    """Every text the request's conversation carries, as one string."""
    return json.dumps(request["body"]["messages"])


def tool_names(request: dict[str, Any]) -> set[str]:
    return {t["name"] for t in request["body"].get("tools", [])}
