"""The agent loop with the scripted model and test-local tools: no store, no network."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pytest

from covey.agent import Agent, AgentEvent, MessageAdded, ToolStarted
from covey.agent.tool_runner import Approval
from covey.errors import MaxTurnsExceeded
from covey.messages import INVALID_ARGUMENTS_KEY, ToolUseBlock
from covey.models.script import Script
from covey.models.scripted import ScriptedModel
from covey.tools.base import Tool, ToolContext, ToolInput
from covey.tools.permissions import Decision, PermissionPolicy


class EchoInput(ToolInput):
    text: str


class Meet(Tool[EchoInput]):
    """Read-only; waits at a barrier, so two calls only finish if they run concurrently."""

    name: ClassVar[str] = "Meet"
    description: ClassVar[str] = "Meets another call."
    input_model: ClassVar[type[ToolInput]] = EchoInput
    read_only: ClassVar[bool] = True

    def __init__(self, parties: int) -> None:
        self.barrier = asyncio.Barrier(parties)

    async def run(self, args: EchoInput, ctx: ToolContext) -> str:
        await asyncio.wait_for(self.barrier.wait(), timeout=5)
        return f"met {args.text}"


class Record(Tool[EchoInput]):
    name: ClassVar[str] = "Record"
    description: ClassVar[str] = "Records its text."
    input_model: ClassVar[type[ToolInput]] = EchoInput

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def run(self, args: EchoInput, ctx: ToolContext) -> str:
        await asyncio.sleep(0)
        self.seen.append(args.text)
        return f"recorded {args.text}"


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "input": args}


def make_agent(
    tmp_path: Path, turns: list[dict[str, Any]], tools: list[Tool[Any]], **kw: Any
) -> Agent:
    mode = kw.pop("mode", "bypassPermissions")
    policy = PermissionPolicy(
        mode,
        kw.pop("allow", []),
        kw.pop("ask", []),
        kw.pop("deny", []),
        project_root=tmp_path,
        workspace=tmp_path,
    )
    model = ScriptedModel(Script.model_validate({"turns": turns}))
    return Agent(model, tools, "system", ToolContext(workspace=tmp_path), policy, **kw)


def test_loop_runs_tools_and_returns_the_final_text(tmp_path: Path) -> None:
    events: list[AgentEvent] = []
    rec = Record()
    agent = make_agent(
        tmp_path,
        [{"tool_calls": [call("Record", text="a")]}, {"text": "all done"}],
        [rec],
        observers=[events.append],
    )
    result = asyncio.run(agent.run("go"))
    assert result.result == "all done" and result.num_turns == 2
    assert rec.seen == ["a"]
    roles = [e.message.role for e in events if isinstance(e, MessageAdded)]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert [e.call.name for e in events if isinstance(e, ToolStarted)] == ["Record"]
    assert result.usage.output > 0
    assert agent.messages[2].tool_results[0].content == "recorded a"


def test_read_only_calls_in_one_turn_run_concurrently(tmp_path: Path) -> None:
    agent = make_agent(
        tmp_path,
        [{"tool_calls": [call("Meet", text="x"), call("Meet", text="y")]}, {"text": "ok"}],
        [Meet(parties=2)],
    )
    asyncio.run(agent.run("go"))
    results = agent.messages[2].tool_results
    assert [r.content for r in results] == ["met x", "met y"]
    assert not any(r.is_error for r in results)


def test_other_calls_run_in_order(tmp_path: Path) -> None:
    rec = Record()
    calls = [call("Record", text=str(i)) for i in range(5)]
    agent = make_agent(tmp_path, [{"tool_calls": calls}, {"text": "ok"}], [rec])
    asyncio.run(agent.run("go"))
    assert rec.seen == ["0", "1", "2", "3", "4"]


def test_bad_calls_become_error_results_and_the_run_goes_on(tmp_path: Path) -> None:
    turns = [
        {
            "tool_calls": [
                call("Nope"),
                call("Record"),
                {"name": "Record", "input": {INVALID_ARGUMENTS_KEY: "{oops"}},
            ]
        },
        {"text": "recovered"},
    ]
    agent = make_agent(tmp_path, turns, [Record()])
    assert asyncio.run(agent.run("go")).result == "recovered"
    errors = agent.messages[2].tool_results
    assert all(r.is_error for r in errors)
    assert "no tool named 'Nope'" in errors[0].content
    assert "text" in errors[1].content
    assert "not a JSON object" in errors[2].content


def test_denied_calls_are_reported_and_ask_goes_to_the_approver(tmp_path: Path) -> None:
    rec = Record()
    asked: list[str] = []

    async def approve(c: ToolUseBlock, decision: Decision) -> bool:
        asked.append(c.input["text"])
        return c.input["text"] == "yes"

    turns = [
        {"tool_calls": [call("Record", text="yes"), call("Record", text="no")]},
        {"text": "ok"},
    ]
    agent = make_agent(tmp_path, turns, [rec], mode="default", approver=approve)
    result = asyncio.run(agent.run("go"))
    assert asked == ["yes", "no"] and rec.seen == ["yes"]
    assert [d["tool_input"] for d in result.permission_denials] == [{"text": "no"}]
    assert "denied" in agent.messages[2].tool_results[1].content


def test_an_approval_can_change_the_input_or_tell_the_model_why_not(tmp_path: Path) -> None:
    rec = Record()

    async def approve(c: ToolUseBlock, decision: Decision) -> Approval:
        if c.input["text"] == "draft":
            return Approval(True, updated_input={"text": "final"})
        return Approval(False, message="not this one, try draft")

    turns = [
        {"tool_calls": [call("Record", text="draft"), call("Record", text="other")]},
        {"text": "ok"},
    ]
    agent = make_agent(tmp_path, turns, [rec], mode="default", approver=approve)
    result = asyncio.run(agent.run("go"))
    assert rec.seen == ["final"]
    results = agent.messages[2].tool_results
    assert results[0].content == "recorded final"
    assert results[1].is_error and results[1].content == "not this one, try draft"
    assert [d["tool_input"] for d in result.permission_denials] == [{"text": "other"}]


def test_a_bare_deny_rule_removes_the_tool(tmp_path: Path) -> None:
    agent = make_agent(tmp_path, [{"text": "ok"}], [Record()], deny=["Record"])
    assert agent.tools == {}


def test_max_turns_is_an_exception_with_its_reason(tmp_path: Path) -> None:
    turns = [{"tool_calls": [call("Record", text=str(i))]} for i in range(5)]
    agent = make_agent(tmp_path, turns, [Record()], max_turns=2)
    with pytest.raises(MaxTurnsExceeded, match="2 turns") as info:
        asyncio.run(agent.run("go"))
    assert info.value.reason == "max_turns" and agent.num_turns == 2
