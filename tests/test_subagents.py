"""The Agent tool and the subagent runtime in the agent layer alone: scripted model, no store."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from covey.agent.definitions import AgentDefinition, load_definitions
from covey.agent.loop import Agent
from covey.agent.subagents import (
    AgentTool,
    MemoryRecorder,
    SubagentLimits,
    SubagentRuntime,
)
from covey.agent.subagents_inbox import BackgroundTasks
from covey.agent.subagents_run import child_mode
from covey.errors import MaxTurnsExceeded
from covey.messages import ToolResultBlock
from covey.models.script import Script
from covey.models.scripted import ScriptedModel
from covey.tools import core_tools
from covey.tools.base import ToolContext
from covey.tools.edit import EditTool
from covey.tools.permissions import PermissionPolicy
from covey.tools.read import ReadTool

CUSTOM = {
    "auditor": {
        "description": "Audits",
        "prompt": "You audit.",
        "model": "haiku",
        "permissionMode": "plan",
        "tools": ["Read", "Agent"],
    },
    "nester": {"description": "Nests", "prompt": "You delegate.", "tools": ["Agent", "Glob"]},
}


def call(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"name": "Agent", "input": {"description": prompt, "prompt": prompt, **extra}}


class Run:
    def __init__(self, ws: Path, script: dict[str, Any], *, mode: str = "default", **kw: Any):
        self.model = ScriptedModel(Script.model_validate(script), name="scripted:parent")
        self.recorder = MemoryRecorder()
        self.runtime = SubagentRuntime(
            load_definitions(ws, cli_json=json.dumps(CUSTOM), home=ws / "home"),
            recorder=self.recorder,
            resolve=lambda spec: ScriptedModel(
                Script.model_validate(script), name=f"scripted:{spec}"
            ),
            **{"env": {}, **kw},
        )
        tool = self.runtime.agent_tool(model=self.model, mode=mode)
        assert tool is not None
        self.agent = Agent(
            self.model,
            [*core_tools(), tool],
            "parent",
            ToolContext(ws),
            PermissionPolicy(mode, ["Agent"], [], [], ws, ws),
            max_turns=5,
            inbox=tool.inbox,
        )

    def results(self) -> list[ToolResultBlock]:
        return [b for m in self.agent.messages for b in m.content if isinstance(b, ToolResultBlock)]


def test_concurrent_flag_defaults_to_read_only() -> None:
    assert ReadTool.concurrent and not EditTool.concurrent
    assert AgentTool.concurrent and not AgentTool.read_only


def test_unknown_type_is_a_tool_error_listing_the_names(tmp_path: Path) -> None:
    script = {"turns": [{"tool_calls": [call("x", subagent_type="nope")]}, {"text": "ok"}]}
    run = Run(tmp_path, script)
    asyncio.run(run.agent.run("go"))
    (result,) = run.results()
    assert result.is_error and "'nope'" in result.content
    for name in ("general-purpose", "Explore", "Plan", "auditor"):
        assert name in result.content


def test_model_resolution_order(tmp_path: Path) -> None:
    run = Run(tmp_path, {"turns": []})
    rt, parent = run.runtime, run.model
    auditor = rt.definition("auditor")
    general = rt.definition("general-purpose")
    assert rt.child_model(None, general, parent) is parent  # inherit
    assert rt.child_model(None, auditor, parent).name == "scripted:haiku"
    assert rt.child_model("opus", auditor, parent).name == "scripted:opus"
    rt.env["COVEY_SUBAGENT_MODEL"] = "sonnet"
    assert rt.child_model("opus", auditor, parent).name == "scripted:sonnet"
    rt.env["COVEY_SUBAGENT_MODEL"] = "inherit"
    assert rt.child_model(None, general, parent) is parent


def test_depth_limits_the_agent_tool(tmp_path: Path) -> None:
    script = {
        "turns": [{"tool_calls": [call("a", subagent_type="nester")]}, {"text": "done"}],
        "agents": {"nester": {"turns": [{"tool_calls": [call("b")]}, {"text": "nested"}]}},
    }
    deep = Run(tmp_path, script, limits=SubagentLimits(max_depth=2))
    asyncio.run(deep.agent.run("go"))
    paths = [c.agent_path for c in deep.recorder.children]
    assert paths == ["main/nester-1", "main/nester-1/general-purpose-1"]
    flat = Run(tmp_path, script)  # max_depth 1: the nester has no Agent tool
    asyncio.run(flat.agent.run("go"))
    assert [c.agent_path for c in flat.recorder.children] == ["main/nester-1"]
    assert flat.recorder.children[0].state == "completed"
    assert Run(tmp_path, {"turns": []}).runtime.agent_tool  # depth 0 may spawn
    none = SubagentRuntime(load_definitions(tmp_path), limits=SubagentLimits(max_depth=0))
    assert none.agent_tool(model=ScriptedModel(Script()), mode="default") is None


def test_failed_child_is_an_error_result_with_its_trailer(tmp_path: Path) -> None:
    script = {
        "turns": [{"tool_calls": [call("x")]}, {"text": "saw the failure"}],
        "agents": {"general-purpose": {"turns": [{"tool_calls": [call("deeper")]}]}},
    }
    run = Run(tmp_path, script)
    asyncio.run(run.agent.run("go"))
    (result,) = run.results()
    assert result.is_error and result.content.startswith("Agent terminated early")
    assert json.loads(result.content.splitlines()[-1])["agentId"] == "agent0001"
    assert run.recorder.children[0].state == "failed"


def test_parent_mode_overrides_and_plan_stays(tmp_path: Path) -> None:
    script = {
        "turns": [{"tool_calls": [call("x", subagent_type="auditor")]}, {"text": "ok"}],
        "agents": {"auditor": {"turns": [{"text": "fine"}]}},
    }
    run = Run(tmp_path, script, mode="bypassPermissions")
    seen: list[str] = []
    run.runtime.make_policy = lambda mode, ws: (
        seen.append(mode) or PermissionPolicy(mode, [], [], [], ws, ws)  # type: ignore[func-returns-value]
    )
    asyncio.run(run.agent.run("go"))
    run2 = Run(tmp_path, script, mode="default")
    run2.runtime.make_policy = run.runtime.make_policy
    asyncio.run(run2.agent.run("go"))
    assert seen == ["bypassPermissions", "plan"]


def test_background_children_are_cancelled_when_the_parent_fails(tmp_path: Path) -> None:
    script = {
        "turns": [
            {"tool_calls": [call("slow", run_in_background=True)]},
            {"tool_calls": [{"name": "Glob", "input": {"pattern": "*"}}]},
        ],
        "agents": {"general-purpose": {"turns": [{"delay_s": 30, "text": "never"}]}},
    }
    run = Run(tmp_path, script)
    run.agent.max_turns = 2
    with pytest.raises(MaxTurnsExceeded):
        asyncio.run(run.agent.run("go"))
    assert run.recorder.children[0].state == "stopped"
    assert run.agent.inbox.running == 0


def test_background_tasks_deliver_notices_in_order() -> None:
    async def body() -> tuple[list[str], bool]:
        inbox = BackgroundTasks()

        async def work(n: int) -> str:
            await asyncio.sleep(0)
            return f"notice {n}"

        inbox.launch(work(1))
        inbox.launch(work(2))
        waited = await inbox.wait_pending()
        return inbox.drain(), waited

    notices, waited = asyncio.run(body())
    assert waited and sorted(notices) == ["notice 1", "notice 2"]


def test_definition_roster_is_in_the_tool_description(tmp_path: Path) -> None:
    run = Run(tmp_path, {"turns": []})
    spec = next(t for t in run.agent.tools.values() if t.name == "Agent").spec()
    assert "- auditor: Audits" in spec.description and "- Explore:" in spec.description
    assert set(spec.input_schema["properties"]) >= {
        "description",
        "prompt",
        "subagent_type",
        "model",
        "run_in_background",
    }


def test_definition_fields_used_by_the_runtime() -> None:
    defn = AgentDefinition(name="x", description="d", prompt="p")
    assert defn.model == "inherit" and defn.tools is None and not defn.background


def _helper(folder: Path, mode: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "helper.md").write_text(
        f"---\nname: helper\ndescription: Helps\npermissionMode: {mode}\n---\nYou help.\n"
    )


@pytest.mark.parametrize("folder", [".claude/agents", ".covey/agents"])
def test_a_project_definition_cannot_raise_the_session_mode(tmp_path: Path, folder: str) -> None:
    """An agent in acceptEdits once wrote .claude/agents/helper.md with bypassPermissions;
    the next session's subagent launch (which never asks) ran Bash outside the workspace."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    _helper(tmp_path / folder, "bypassPermissions")
    script = {
        "turns": [{"tool_calls": [call("x", subagent_type="helper")]}, {"text": "ok"}],
        "agents": {"helper": {"turns": [{"text": "fine"}]}},
    }
    seen: list[str] = []

    def make_policy(mode: str, ws: Path) -> PermissionPolicy:
        seen.append(mode)
        return PermissionPolicy(mode, [], [], [], ws, ws)

    run = Run(tmp_path, script, mode="default", make_policy=make_policy)
    asyncio.run(run.agent.run("go"))
    (result,) = run.results()
    trailer = json.loads(result.content.splitlines()[-1])
    assert seen == ["default"]
    assert "cannot raise the session's permission mode" in trailer["warning"]
    assert "helper.md" in trailer["warning"]
    _helper(tmp_path / folder, "plan")  # lowering it is fine
    asyncio.run(Run(tmp_path, script, mode="default", make_policy=make_policy).agent.run("go"))
    assert seen == ["default", "plan"]


def test_a_users_own_definition_may_raise_the_mode(tmp_path: Path) -> None:
    _helper(tmp_path / "home" / "agents", "acceptEdits")
    helper = Run(tmp_path, {"turns": []}).runtime.definition("helper")
    assert helper.scope == "user"
    assert child_mode("default", helper) == ("acceptEdits", None)
    assert child_mode("plan", helper) == ("acceptEdits", None)
    helper.scope = "claude-project"
    mode, warning = child_mode("plan", helper)
    assert mode == "plan" and warning is not None
    assert child_mode("bypassPermissions", helper) == ("bypassPermissions", None)
