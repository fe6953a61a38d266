"""covey.hooks.runner: real hook scripts run by /bin/sh, read by Claude Code's contract."""

from __future__ import annotations

import asyncio
import itertools
import json
import shlex
from pathlib import Path
from typing import Any

from covey.hooks import OUTPUT_CAP, HookResult, HookRunner, merge_hooks, validate_hooks

_n = itertools.count()


def script(tmp_path: Path, body: str) -> str:
    """An executable shell script holding `body`; returns the command that runs it."""
    path = tmp_path / f"hook{next(_n)}.sh"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return shlex.quote(str(path))


def on(event: str, *commands: str, matcher: str | None = None, **fields: Any) -> dict[str, Any]:
    group: dict[str, Any] = {
        "hooks": [{"type": "command", "command": c, **fields} for c in commands]
    }
    if matcher is not None:
        group["matcher"] = matcher
    return {event: [group]}


def make(tmp_path: Path, *parts: dict[str, Any], **kwargs: Any) -> HookRunner:
    raw: dict[str, Any] = {}
    for part in parts:
        for event, groups in part.items():
            raw.setdefault(event, []).extend(groups)
    config, warnings = validate_hooks(raw, "test")
    assert warnings == []
    kwargs.setdefault("session_id", "s-1")
    kwargs.setdefault("cwd", tmp_path)
    kwargs.setdefault("project_dir", tmp_path)
    return HookRunner(config, **kwargs)


def run(
    runner: HookRunner, event: str, payload: Any = None, match: str | None = None
) -> HookResult:
    return asyncio.run(runner.run(event, payload, match=match))


def echo_json(tmp_path: Path, data: dict[str, Any]) -> str:
    return script(tmp_path, f"cat <<'EOF'\n{json.dumps(data)}\nEOF\n")


BASH = {"tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_use_id": "t1"}


def test_continue_false_and_system_message(tmp_path: Path) -> None:
    data = {"continue": False, "stopReason": "tests are red", "systemMessage": "heads up"}
    r = run(make(tmp_path, on("Stop", echo_json(tmp_path, data))), "Stop", {})
    assert not r.continue_ and r.stop_reason == "tests are red"
    assert r.system_messages == ["heads up"]
    assert not r.blocked and r.errors == [] and r.ran == 1 and r.output == ""


def pre(decision: str, reason: str, **extra: Any) -> dict[str, Any]:
    specific = {"hookEventName": "PreToolUse", "permissionDecision": decision}
    return {"hookSpecificOutput": {**specific, "permissionDecisionReason": reason, **extra}}


def test_permission_deny_wins_and_blocks(tmp_path: Path) -> None:
    allow = echo_json(tmp_path, pre("allow", "fine", updatedInput={"command": "ls -a"}))
    deny = echo_json(tmp_path, pre("deny", "no ls here"))
    ask = echo_json(tmp_path, pre("ask", "sure?"))
    r = run(make(tmp_path, on("PreToolUse", allow, deny, ask)), "PreToolUse", BASH, "Bash")
    assert r.permission_decision == "deny" and r.permission_reason == "no ls here"
    assert r.blocked and r.feedback == "no ls here"
    assert r.updated_input is None  # a blocked call has no input to update
    assert r.ran == 3


def test_permission_allow_with_updated_input(tmp_path: Path) -> None:
    allow = echo_json(tmp_path, pre("allow", "fine", updatedInput={"command": "ls -a"}))
    ask = echo_json(tmp_path, pre("ask", "sure?"))
    r = run(make(tmp_path, on("PreToolUse", allow)), "PreToolUse", BASH, "Bash")
    assert r.permission_decision == "allow" and r.permission_reason == "fine"
    assert r.updated_input == {"command": "ls -a"} and not r.blocked
    r = run(make(tmp_path, on("PreToolUse", allow, ask)), "PreToolUse", BASH, "Bash")
    assert r.permission_decision == "ask" and r.permission_reason == "sure?"
    assert r.updated_input == {"command": "ls -a"}


def test_additional_context(tmp_path: Path) -> None:
    def ctx(event: str) -> str:
        specific = {"hookEventName": event, "additionalContext": f"ctx for {event}"}
        return echo_json(tmp_path, {"hookSpecificOutput": specific})

    for event in ("UserPromptSubmit", "SessionStart", "PostToolUse", "SubagentStart"):
        r = run(make(tmp_path, on(event, ctx(event))), event, {})
        assert r.additional_context == [f"ctx for {event}"], event
    assert run(make(tmp_path, on("Stop", ctx("Stop"))), "Stop", {}).additional_context == []
    wrong = run(make(tmp_path, on("SessionStart", ctx("Stop"))), "SessionStart", {})
    assert wrong.additional_context == [] and "hookSpecificOutput is for Stop" in wrong.errors[0]


def test_plain_stdout_is_output_and_prompt_context(tmp_path: Path) -> None:
    hello = script(tmp_path, "echo hello; echo world\n")
    r = run(make(tmp_path, on("UserPromptSubmit", hello)), "UserPromptSubmit", {"prompt": "x"})
    assert r.output == "hello\nworld" and r.additional_context == ["hello\nworld"]
    r = run(make(tmp_path, on("PostToolUse", hello)), "PostToolUse", BASH)
    assert r.output == "hello\nworld" and r.additional_context == []


def test_exit_2_blocks_with_stderr_and_ignores_json(tmp_path: Path) -> None:
    body = (
        'echo \'{"decision": "approve", "systemMessage": "no"}\'\necho "not on main" >&2\nexit 2\n'
    )
    r = run(make(tmp_path, on("PreToolUse", script(tmp_path, body))), "PreToolUse", BASH, "Bash")
    assert r.blocked and r.feedback == "not on main"
    assert r.system_messages == [] and r.permission_decision is None and r.errors == []


def test_decision_block_with_reason(tmp_path: Path) -> None:
    block = echo_json(tmp_path, {"decision": "block", "reason": "keep going: tests fail"})
    r = run(make(tmp_path, on("Stop", block)), "Stop", {"stop_hook_active": False})
    assert r.blocked and r.feedback == "keep going: tests fail"


def test_exit_1_does_not_block(tmp_path: Path) -> None:
    fails = script(tmp_path, "echo oops >&2\nexit 1\n")
    r = run(make(tmp_path, on("PreToolUse", fails)), "PreToolUse", BASH, "Bash")
    assert not r.blocked and r.feedback == "" and r.continue_
    assert len(r.errors) == 1 and "exited with 1: oops" in r.errors[0]


def test_invalid_json_is_kept_as_text(tmp_path: Path) -> None:
    r = run(make(tmp_path, on("Stop", script(tmp_path, "echo '{nope'\n"))), "Stop", {})
    assert r.output == "{nope" and "invalid JSON" in r.errors[0] and not r.blocked


def test_a_hook_past_its_timeout_is_killed_and_does_not_block(tmp_path: Path) -> None:
    hangs = script(tmp_path, "echo started\nsleep 60\nexit 2\n")
    runner = make(tmp_path, on("PreToolUse", hangs, timeout=0.5))
    r = run(runner, "PreToolUse", BASH, "Bash")
    assert not r.blocked and r.continue_
    assert len(r.errors) == 1 and "timed out after 0.5s and was killed" in r.errors[0]
    stats = runner.statistics()
    assert (stats.events, stats.handlers, stats.timeouts, stats.errors) == (1, 1, 1, 1)


def test_handlers_run_in_parallel(tmp_path: Path) -> None:
    def waits_for(mine: str, other: str) -> str:
        body = f"""touch {tmp_path / mine}
i=0
while [ ! -e {tmp_path / other} ]; do
  i=$((i + 1)); [ $i -gt 400 ] && exit 1
  sleep 0.05
done
"""
        return script(tmp_path, body)

    both = on("Stop", waits_for("a", "b"), waits_for("b", "a"))
    r = run(make(tmp_path, both), "Stop", {})
    assert r.errors == [] and r.ran == 2


def test_matchers_select_groups(tmp_path: Path) -> None:
    log = tmp_path / "log"

    def note(name: str) -> str:
        return script(tmp_path, f"echo {name} >> {log}\n")

    runner = make(
        tmp_path,
        on("PreToolUse", note("exact"), matcher="Bash"),
        on("PreToolUse", note("list"), matcher="Edit|Write"),
        on("PreToolUse", note("regex"), matcher="^mcp__.*"),
        on("PreToolUse", note("star"), matcher="*"),
        on("PreToolUse", note("none")),
    )

    def ran(tool: str) -> list[str]:
        log.write_text("")
        run(runner, "PreToolUse", {"tool_name": tool, "tool_input": {}}, tool)
        return sorted(log.read_text().split())

    assert ran("Bash") == ["exact", "none", "star"]
    assert ran("Write") == ["list", "none", "star"]
    assert ran("mcp__memory__save") == ["none", "regex", "star"]
    assert ran("Read") == ["none", "star"]


def test_if_rule_filters_tool_calls(tmp_path: Path) -> None:
    log = tmp_path / "log"
    git = script(tmp_path, f"echo git >> {log}\n")
    src = script(tmp_path, f"echo src >> {log}\n")
    runner = make(
        tmp_path,
        on("PreToolUse", git, matcher="Bash", **{"if": "Bash(git *)"}),
        on("PreToolUse", src, **{"if": "Edit(src/**)"}),
    )

    def ran(tool: str, tool_input: dict[str, Any]) -> list[str]:
        log.write_text("")
        run(runner, "PreToolUse", {"tool_name": tool, "tool_input": tool_input}, tool)
        return log.read_text().split()

    assert ran("Bash", {"command": "git status"}) == ["git"]
    assert ran("Bash", {"command": "ls -la"}) == []
    assert ran("Bash", {"command": "ls && git push"}) == ["git"]
    assert ran("Write", {"file_path": str(tmp_path / "src" / "a.py")}) == ["src"]
    assert ran("Write", {"file_path": str(tmp_path / "docs" / "a.md")}) == []


def test_stdin_holds_common_input_and_payload(tmp_path: Path) -> None:
    seen = tmp_path / "stdin.json"
    runner = make(
        tmp_path,
        on("PreToolUse", script(tmp_path, f"cat > {seen}\n")),
        transcript_path="/t/s-1.jsonl",
        permission_mode="acceptEdits",
    )
    run(runner, "PreToolUse", BASH, "Bash")
    assert json.loads(seen.read_text()) == {
        "session_id": "s-1",
        "transcript_path": "/t/s-1.jsonl",
        "cwd": str(tmp_path),
        "permission_mode": "acceptEdits",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "ls"},
        "tool_use_id": "t1",
    }


def test_environment_and_working_directory(tmp_path: Path) -> None:
    work, project = tmp_path / "work", tmp_path / "project"
    work.mkdir()
    project.mkdir()
    body = 'echo "$(pwd)|$COVEY_PROJECT_DIR|$CLAUDE_PROJECT_DIR|$EXTRA"\n'
    runner = make(
        tmp_path,
        on("SessionStart", script(tmp_path, body)),
        cwd=work,
        project_dir=project,
        env={"EXTRA": "yes"},
    )
    r = run(runner, "SessionStart", {"source": "startup"})
    assert r.output == f"{work}|{project}|{project}|yes"


def test_worktree_create_fails_on_any_non_zero_exit(tmp_path: Path) -> None:
    ok = script(tmp_path, f"echo creating\necho {tmp_path / 'wt'}\necho\n")
    r = run(make(tmp_path, on("WorktreeCreate", ok)), "WorktreeCreate", {"name": "x"})
    assert not r.blocked and r.last_line == str(tmp_path / "wt")
    bad = script(tmp_path, f"echo {tmp_path / 'wt'}\necho no disk >&2\nexit 1\n")
    r = run(make(tmp_path, on("WorktreeCreate", bad)), "WorktreeCreate", {"name": "x"})
    assert r.blocked and "exited with 1: no disk" in r.feedback and r.last_line == ""


def test_once_handlers_and_duplicate_commands_run_once(tmp_path: Path) -> None:
    log = tmp_path / "log"
    once = script(tmp_path, f"echo once >> {log}\n")
    dup = script(tmp_path, f"echo dup >> {log}\n")
    runner = make(
        tmp_path,
        on("Stop", once, once=True),
        on("Stop", dup, matcher="x"),
        on("Stop", dup, matcher="y"),
    )
    assert run(runner, "Stop", {}).ran == 2
    assert run(runner, "Stop", {}).ran == 1
    # the first run's two handlers run in parallel: their order in the log is not fixed
    assert sorted(log.read_text().split()) == ["dup", "dup", "once"]


def test_merged_identical_handlers_run_once(tmp_path: Path) -> None:
    log = tmp_path / "log"
    cmd = script(tmp_path, f"echo hi >> {log}\n")
    one, _ = validate_hooks(on("Stop", cmd), "user")
    two, _ = validate_hooks(on("Stop", cmd), "project")
    merged = merge_hooks([one, two])
    runner = HookRunner(merged, session_id="s", cwd=tmp_path, project_dir=tmp_path)
    assert run(runner, "Stop", {}).ran == 1 and log.read_text() == "hi\n"


def test_output_strings_are_capped(tmp_path: Path) -> None:
    body = "head -c 50000 /dev/zero | tr '\\0' x >&2\nexit 2\n"
    r = run(make(tmp_path, on("Stop", script(tmp_path, body))), "Stop", {})
    assert r.blocked and len(r.feedback) <= OUTPUT_CAP and r.feedback.startswith("xxx")


def test_hooks_of_other_events_do_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    runner = make(tmp_path, on("Stop", script(tmp_path, f"touch {marker}\n")))
    assert not runner.handles("PreToolUse") and runner.handles("Stop")
    assert run(runner, "PreToolUse", BASH, "Bash") == HookResult()
    assert not marker.exists() and runner.statistics().handlers == 0


def test_empty_runner_spawns_nothing() -> None:
    runner = HookRunner.empty()
    for event in ("SessionStart", "PreToolUse", "Stop", "WorktreeCreate"):
        assert not runner.handles(event)
        assert run(runner, event, BASH, "Bash") == HookResult()
    assert runner.statistics().events == 0 and runner.statistics().handlers == 0


def test_a_missing_working_directory_is_a_non_blocking_error(tmp_path: Path) -> None:
    runner = make(tmp_path, on("Stop", "true"), cwd=tmp_path / "gone")
    r = run(runner, "Stop", {})
    assert not r.blocked and "could not start" in r.errors[0]
