"""SDK hook callbacks as a handler type beside `command`: same input, same output contract."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from covey.hooks import HookRunner, callback_hooks, merge_hooks, validate_hooks


def _runner(tmp_path: Path, raw: dict[str, Any], answer: Any, seen: list[Any]) -> HookRunner:
    config, warnings = callback_hooks(raw)
    assert warnings == []

    async def callback(callback_id: str, data: dict[str, Any]) -> dict[str, Any]:
        seen.append((callback_id, data))
        if isinstance(answer, Exception):
            raise answer
        if answer == "slow":
            await asyncio.sleep(10)
        return answer  # type: ignore[no-any-return]

    return HookRunner(
        config, session_id="s1", cwd=tmp_path, project_dir=tmp_path, callback=callback
    )


def test_a_deny_answer_blocks_with_the_reason(tmp_path: Path) -> None:
    seen: list[Any] = []
    deny = {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": "no writes today",
        }
    }
    raw = {"PreToolUse": [{"matcher": "Write|Bash", "hookCallbackIds": ["hook_0"]}]}
    runner = _runner(tmp_path, raw, deny, seen)
    payload = {"tool_name": "Write", "tool_input": {"file_path": "a"}, "tool_use_id": "t1"}
    result = asyncio.run(runner.run("PreToolUse", payload, match="Write"))
    assert result.blocked and result.feedback == "no writes today"
    callback_id, data = seen[0]
    assert callback_id == "hook_0"
    assert data["hook_event_name"] == "PreToolUse" and data["session_id"] == "s1"
    assert data["tool_input"] == {"file_path": "a"} and data["tool_use_id"] == "t1"
    # the matcher applies as for command hooks
    assert asyncio.run(runner.run("PreToolUse", payload, match="Read")).ran == 0


def test_an_empty_answer_is_neutral_and_failures_do_not_block(tmp_path: Path) -> None:
    raw = {"PreToolUse": [{"matcher": "", "hookCallbackIds": ["hook_0"], "timeout": 0.2}]}
    for answer in ({}, RuntimeError("callback raised"), "slow"):
        runner = _runner(tmp_path, raw, answer, [])
        result = asyncio.run(runner.run("PreToolUse", {"tool_name": "Bash"}, match="Bash"))
        assert not result.blocked and result.ran == 1
        assert bool(result.errors) == (answer != {})


def test_callbacks_merge_with_command_hooks_and_unknown_events_warn(tmp_path: Path) -> None:
    config, warnings = callback_hooks(
        {"PreToolUse": [{"hookCallbackIds": ["hook_0"]}], "PermissionRequest": []}
    )
    assert warnings and "PermissionRequest" in warnings[0]
    files, _ = validate_hooks(
        {"PreToolUse": [{"hooks": [{"type": "command", "command": "true"}]}]}, "s.json"
    )
    merged = merge_hooks([files, config])
    assert merged.handler_count() == 2
