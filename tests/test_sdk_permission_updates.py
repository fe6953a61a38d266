"""`updatedPermissions` in the real Claude Agent SDK's `can_use_tool` answers: rules and modes
for the session (its running turn included) or kept in a settings file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from claude_agent_sdk import (
    PermissionResultAllow,
    PermissionUpdate,
    ResultMessage,
    ToolPermissionContext,
)
from claude_agent_sdk.types import PermissionRuleValue

from clitools import covey
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer
from sdktools import collect, one_prompt, run, sdk_options, tool_results

ECHO = {"name": "Bash", "input": {"command": "echo hi"}}


def write(path: str) -> dict[str, Any]:
    return {"name": "Write", "input": {"file_path": path, "content": "x\n"}}


def _run(
    repo: Path, calls: list[dict[str, Any]], updates: list[PermissionUpdate]
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Each call in a turn of its own; the first ask is allowed with `updates`, later ones
    plainly. Returns what was asked, stderr, and the last request's tool results."""
    script = {"turns": [*({"tool_calls": [c]} for c in calls), {"text": "done"}]}
    asked: list[str] = []

    async def can_use_tool(
        name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResultAllow:
        asked.append(name)
        return PermissionResultAllow(updated_permissions=updates if len(asked) == 1 else None)

    stderr: list[str] = []
    with FakeServer(Script.model_validate(script)) as srv:
        options = sdk_options(srv, repo, stderr, can_use_tool=can_use_tool)
        messages = run(collect(one_prompt("go"), options))
        results = tool_results(srv, len(calls))
    assert isinstance(messages[-1], ResultMessage) and messages[-1].subtype == "success"
    return asked, stderr, results


def test_a_session_rule_spares_the_next_ask_and_is_not_kept(git_repo: Path) -> None:
    rule = PermissionUpdate(
        type="addRules", rules=[PermissionRuleValue("Bash", "echo hi")], behavior="allow"
    )
    asked, stderr, results = _run(git_repo, [ECHO, ECHO], [rule])
    assert asked == ["Bash"], stderr
    assert [r.get("is_error", False) for r in results] == [False, False]
    assert not (git_repo / ".covey" / "settings.local.json").exists()


def test_a_local_settings_rule_is_written_and_used_by_the_next_run(git_repo: Path) -> None:
    rule = PermissionUpdate(
        type="addRules",
        rules=[PermissionRuleValue("Bash", "echo hi")],
        behavior="allow",
        destination="localSettings",
    )
    asked, stderr, _ = _run(git_repo, [ECHO, ECHO], [rule])
    assert asked == ["Bash"], stderr
    kept = json.loads((git_repo / ".covey" / "settings.local.json").read_text())
    assert kept["permissions"]["allow"] == ["Bash(echo hi)"]
    script = Script.model_validate({"turns": [{"tool_calls": [ECHO]}, {"text": "ok"}]})
    with FakeServer(script) as srv:
        env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": srv.url}
        later = covey("-p", "echo", "--model", "anthropic:claude-sonnet-4-5", "--output-format",
                      "json", cwd=git_repo, env=env)  # fmt: skip
    assert later.code == 0, later.err
    assert json.loads(later.out)["permission_denials"] == []


def test_set_mode_applies_to_the_running_turn(git_repo: Path) -> None:
    mode = PermissionUpdate(type="setMode", mode="acceptEdits")
    asked, stderr, results = _run(git_repo, [write("a.txt"), write("b.txt")], [mode])
    assert asked == ["Write"], stderr
    assert (git_repo / "a.txt").exists() and (git_repo / "b.txt").exists()
    assert not any(r.get("is_error") for r in results)


def test_one_malformed_update_applies_none(git_repo: Path) -> None:
    good = PermissionUpdate(
        type="addRules", rules=[PermissionRuleValue("Bash", "echo hi")], behavior="allow"
    )
    bad = PermissionUpdate(
        type="addRules", rules=[PermissionRuleValue("Bash", "echo (")], behavior="allow"
    )
    asked, stderr, _ = _run(git_repo, [ECHO, ECHO], [good, bad])
    assert asked == ["Bash", "Bash"], "nothing was applied, so the second call asked again"
    assert any("updatedPermissions not applied" in line for line in stderr), stderr
