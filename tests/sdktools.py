"""Drive covey through the real Claude Agent SDK: covey is the SDK's `cli_path` (a small
wrapper running `python -m covey`), the model is the loopback fake Anthropic server."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from claude_agent_sdk import ClaudeAgentOptions, Message, query

from covey.testing.fakeserver import FakeServer

T = TypeVar("T")
MODEL = "claude-sonnet-4-5"  # a bare Claude id, as SDK users pass it


def covey_cli(tmp: Path) -> str:
    """An executable the SDK can start as its CLI: this interpreter running covey."""
    path = tmp / "covey-cli"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m covey "$@"\n')
    path.chmod(0o755)
    return str(path)


def sdk_options(srv: FakeServer, repo: Path, stderr: list[str], **kw: Any) -> ClaudeAgentOptions:
    return ClaudeAgentOptions(
        cli_path=covey_cli(repo.parent),
        cwd=str(repo),
        model=MODEL,
        env={"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": srv.url},
        stderr=stderr.append,
        **kw,
    )


def run(coro: Coroutine[Any, Any, T], timeout: float = 90) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def one_prompt(text: str) -> AsyncIterator[dict[str, Any]]:
    yield {"type": "user", "message": {"role": "user", "content": text}}


async def collect(prompt: Any, options: ClaudeAgentOptions) -> list[Message]:
    return [m async for m in query(prompt=prompt, options=options)]


def tool_results(srv: FakeServer, request: int) -> list[dict[str, Any]]:
    """The tool results the model was sent in request number `request`."""
    messages = srv.requests[request]["body"]["messages"]
    return [
        block
        for m in messages
        if isinstance(m["content"], list)
        for block in m["content"]
        if block.get("type") == "tool_result"
    ]
