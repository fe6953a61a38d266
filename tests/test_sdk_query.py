"""The real Claude Agent SDK's `query()` with covey as its CLI, against the fake server:
tools, a `can_use_tool` callback, a PreToolUse hook callback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from claude_agent_sdk import (
    AgentDefinition,
    AssistantMessage,
    HookMatcher,
    PermissionResultAllow,
    PermissionResultDeny,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    ToolPermissionContext,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

from covey.models.script import Script
from covey.store import Store
from covey.store.sessions import get_session
from covey.testing.fakeserver import FakeServer
from sdktools import collect, one_prompt, run, sdk_options, tool_results


def write(path: str, content: str) -> dict[str, Any]:
    return {"name": "Write", "input": {"file_path": path, "content": content}}


def test_query_runs_tools_in_a_stored_session(git_repo: Path) -> None:
    script = {
        "turns": [
            {"text": "Writing.", "tool_calls": [write("hello.txt", "hi\n")]},
            {"tool_calls": [{"name": "Read", "input": {"file_path": "hello.txt"}}]},
            {"text": "Done: hello.txt says hi."},
        ]
    }
    stderr: list[str] = []
    with FakeServer(Script.model_validate(script)) as srv:
        options = sdk_options(
            srv, git_repo, stderr, permission_mode="acceptEdits", include_partial_messages=True
        )
        messages = run(collect("write hello.txt", options))
        system = srv.requests[0]["body"].get("system")
    assert (git_repo / "hello.txt").read_text() == "hi\n", stderr
    init = messages[0]
    assert isinstance(init, SystemMessage) and init.subtype == "init"
    assert init.data["claude_code_version"] >= "2.0.0" and "Write" in init.data["tools"]
    calls = [b for m in messages if isinstance(m, AssistantMessage) for b in m.content]
    assert [b.name for b in calls if isinstance(b, ToolUseBlock)] == ["Write", "Read"]
    results = [b for m in messages if isinstance(m, UserMessage) for b in m.content]
    assert [isinstance(b, ToolResultBlock) and not b.is_error for b in results] == [True, True]
    deltas = [
        m.event["delta"]["text"]
        for m in messages
        if isinstance(m, StreamEvent) and m.event["type"] == "content_block_delta"
    ]
    assert "".join(deltas).endswith("Done: hello.txt says hi.")
    result = messages[-1]
    assert isinstance(result, ResultMessage) and result.subtype == "success"
    assert not result.is_error and result.num_turns == 3
    assert result.result == "Done: hello.txt says hi." and result.duration_api_ms >= 0
    assert not system  # the SDK asked for no system prompt (`--system-prompt ""`)
    with Store.open() as store, store.read() as conn:
        row = get_session(conn, result.session_id)
    assert row is not None and row.state == "completed" and row.cwd == str(git_repo)


def test_can_use_tool_denies_bash_with_a_message_and_allows_write(git_repo: Path) -> None:
    script = {
        "turns": [
            {"tool_calls": [{"name": "Bash", "input": {"command": "touch by-bash"}}]},
            {"tool_calls": [write("notes.txt", "draft\n")]},
            {"text": "ok"},
        ]
    }
    asked: list[tuple[str, dict[str, Any]]] = []

    async def can_use_tool(
        name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResultAllow | PermissionResultDeny:
        asked.append((name, tool_input))
        if name == "Bash":
            return PermissionResultDeny(message="Bash is off limits here")
        return PermissionResultAllow(updated_input={**tool_input, "content": "final\n"})

    stderr: list[str] = []
    with FakeServer(Script.model_validate(script)) as srv:
        options = sdk_options(srv, git_repo, stderr, can_use_tool=can_use_tool)
        messages = run(collect(one_prompt("make notes"), options))
        denied = tool_results(srv, 1)
    assert [name for name, _ in asked] == ["Bash", "Write"], stderr
    assert denied[0]["is_error"] and "Bash is off limits here" in str(denied[0]["content"])
    assert not (git_repo / "by-bash").exists()
    assert (git_repo / "notes.txt").read_text() == "final\n"  # the SDK's updatedInput ran
    result = messages[-1]
    assert isinstance(result, ResultMessage) and result.subtype == "success"
    assert [d["tool_name"] for d in result.permission_denials or []] == ["Bash"]


def test_a_pre_tool_use_hook_callback_denies(git_repo: Path) -> None:
    script = {"turns": [{"tool_calls": [write("blocked.txt", "x\n")]}, {"text": "ok"}]}
    seen: list[dict[str, Any]] = []

    async def guard(hook_input: Any, tool_use_id: str | None, context: Any) -> dict[str, Any]:
        seen.append(dict(hook_input))
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": "no writes in this repository",
            }
        }

    hooks: Any = {"PreToolUse": [HookMatcher(matcher="Write|Edit", hooks=[guard])]}
    stderr: list[str] = []
    with FakeServer(Script.model_validate(script)) as srv:
        options = sdk_options(srv, git_repo, stderr, permission_mode="acceptEdits", hooks=hooks)
        messages = run(collect(one_prompt("write it"), options))
        blocked = tool_results(srv, 1)
    assert not (git_repo / "blocked.txt").exists(), stderr
    assert seen and seen[0]["hook_event_name"] == "PreToolUse" and seen[0]["tool_name"] == "Write"
    assert seen[0]["tool_input"]["file_path"] == "blocked.txt"
    assert blocked[0]["is_error"] and "no writes in this repository" in str(blocked[0]["content"])
    result = messages[-1]
    assert isinstance(result, ResultMessage) and result.subtype == "success"


def test_the_sdk_s_agents_are_subagent_definitions(git_repo: Path) -> None:
    delegate = {
        "name": "Agent",
        "input": {"description": "review", "prompt": "Review it.", "subagent_type": "reviewer"},
    }
    script = {
        "turns": [{"tool_calls": [delegate]}, {"text": "The reviewer is happy."}],
        "agents": {"reviewer": {"turns": [{"text": "Looks good to me."}]}},
    }
    agents = {"reviewer": AgentDefinition(description="Reviews", prompt="You review.")}
    stderr: list[str] = []
    with FakeServer(Script.model_validate(script)) as srv:
        options = sdk_options(srv, git_repo, stderr, agents=agents)
        messages = run(collect("get a review", options))
        asked = [r["agent"] for r in srv.requests]
        reviewer_system = srv.requests[1]["body"].get("system")
    result = messages[-1]
    assert isinstance(result, ResultMessage) and result.result == "The reviewer is happy.", stderr
    assert asked[1] == "reviewer" and "You review." in str(reviewer_system)
    assert "Looks good to me." in str(tool_results(srv, 2))
