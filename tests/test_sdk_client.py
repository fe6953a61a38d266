"""The real Claude Agent SDK's `ClaudeSDKClient` with covey as its CLI: several prompts in one
session, the control requests, and `interrupt()`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from claude_agent_sdk import ClaudeSDKClient, ResultMessage, SystemMessage, TextBlock, UserMessage
from claude_agent_sdk.types import Message

from covey.models.script import Script
from covey.testing.fakeserver import FakeServer
from sdktools import run, sdk_options


async def _reply(client: ClaudeSDKClient) -> list[Message]:
    return [m async for m in client.receive_response()]


def test_two_prompts_run_in_one_session_and_control_requests_are_answered(
    git_repo: Path,
) -> None:
    script = {"turns": [{"text": "first answer"}, {"text": "second answer"}]}
    stderr: list[str] = []

    async def talk(srv: FakeServer) -> tuple[list[Message], list[Message], list[str]]:
        notes = []
        async with ClaudeSDKClient(sdk_options(srv, git_repo, stderr)) as client:
            await client.query("first prompt")
            first = await _reply(client)
            await client.set_permission_mode("auto")  # covey's closest: acceptEdits
            await client.set_model("claude-haiku-4-5")  # from the next turn
            assert await client.get_mcp_status() == {"mcpServers": []}
            for refused in (client.set_model("nonsense-model"), client.get_context_usage()):
                with pytest.raises(Exception) as info:
                    await refused
                notes.append(str(info.value))
            await client.query("second prompt")
            second = await _reply(client)
        return first, second, notes

    with FakeServer(Script.model_validate(script)) as srv:
        first, second, notes = run(talk(srv))
        sent = srv.requests[1]["body"]["messages"]
        models = [r["body"]["model"] for r in srv.requests]
    results = [m for m in (*first, *second) if isinstance(m, ResultMessage)]
    assert [r.result for r in results] == ["first answer", "second answer"], stderr
    assert results[0].session_id == results[1].session_id  # one session
    assert "first prompt" in str(sent[0]) and "first answer" in str(sent[1])
    inits = [m for m in second if isinstance(m, SystemMessage) and m.subtype == "init"]
    assert inits[0].data["permissionMode"] == "acceptEdits"
    assert models == ["claude-sonnet-4-5", "claude-haiku-4-5"]
    assert "nonsense-model" in notes[0] and "get_context_usage" in notes[1]


def test_interrupt_ends_a_slow_turn_and_the_session_goes_on(git_repo: Path) -> None:
    slow = {"name": "Bash", "input": {"command": "sleep 60"}}
    script = {"turns": [{"text": "Waiting.", "tool_calls": [slow]}, {"text": "back again"}]}
    stderr: list[str] = []

    async def talk(srv: FakeServer) -> tuple[list[Message], float, list[Message]]:
        options = sdk_options(srv, git_repo, stderr, allowed_tools=["Bash(sleep *)"])
        async with ClaudeSDKClient(options) as client:
            await client.query("wait a minute")
            async for message in client.receive_messages():
                if isinstance(message, SystemMessage) and message.subtype == "init":
                    break
            while not srv.requests:  # the turn is under way
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # the slow command runs
            started = time.monotonic()
            await client.interrupt()
            interrupted = await _reply(client)
            took = time.monotonic() - started
            await client.query("are you there?")
            after = await _reply(client)
        return interrupted, took, after

    with FakeServer(Script.model_validate(script)) as srv:
        interrupted, took, after = run(talk(srv))
    assert took < 10, stderr
    lines = [
        b.text
        for m in interrupted
        if isinstance(m, UserMessage) and isinstance(m.content, list)
        for b in m.content
        if isinstance(b, TextBlock)
    ]
    assert lines == ["[Request interrupted by user]"]
    result = interrupted[-1]
    assert isinstance(result, ResultMessage) and result.is_error
    assert result.subtype == "error_during_execution"
    last = after[-1]
    assert isinstance(last, ResultMessage) and last.subtype == "success"
    assert last.result == "back again" and last.session_id == result.session_id
