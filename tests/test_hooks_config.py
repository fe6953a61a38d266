"""covey.hooks.config: Claude Code's hook settings shape, one-line errors, warnings, merging."""

from __future__ import annotations

from typing import Any

import pytest

import covey.hooks
from covey.errors import UserError
from covey.hooks import (
    CommandHook,
    HooksConfig,
    MatcherGroup,
    callback_hooks,
    matcher_matches,
    merge_hooks,
    validate_hooks,
)

SRC = "/p/.covey/settings.json"


def command(cmd: str = "true", **fields: Any) -> dict[str, Any]:
    return {"type": "command", "command": cmd, **fields}


def test_public_surface() -> None:
    assert covey.hooks.__all__ == [
        "EVENTS",
        "OUTPUT_CAP",
        "TOOL_EVENTS",
        "CallbackHook",
        "CommandHook",
        "HookCallback",
        "HookResult",
        "HookRunner",
        "HookStatistics",
        "HooksConfig",
        "MatcherGroup",
        "callback_hooks",
        "matcher_matches",
        "merge_hooks",
        "validate_hooks",
    ]


def test_valid_config_is_typed() -> None:
    raw = {
        "PreToolUse": [
            {
                "matcher": "Bash",
                "hooks": [
                    command("./guard.sh", timeout=5, statusMessage="checking", once=True),
                    command("./git.sh", **{"if": "Bash(git *)"}),
                ],
            }
        ],
        "Stop": [{"hooks": [command("./stop.sh", timeout=1.5)]}],
    }
    config, warnings = validate_hooks(raw, SRC)
    assert warnings == []
    (group,) = config.groups("PreToolUse")
    assert group.matcher == "Bash"
    assert group.hooks[0] == CommandHook(
        command="./guard.sh", timeout=5.0, statusMessage="checking", once=True
    )
    assert group.hooks[1].if_ == "Bash(git *)"
    assert config.groups("Stop")[0].matcher == ""
    assert config.groups("Stop")[0].hooks[0].timeout == 1.5
    assert config.groups("Notification") == ()
    assert config.handler_count() == 3


def test_every_event_covey_knows_is_accepted_without_warning() -> None:
    events = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"]
    events += ["PreCompact", "PostCompact", "Notification", "SubagentStart", "SubagentStop"]
    events += ["TeammateIdle", "TaskCreated", "TaskCompleted", "WorktreeCreate", "WorktreeRemove"]
    config, warnings = validate_hooks({e: [{"hooks": [command()]}] for e in events}, SRC)
    assert warnings == []
    assert sorted(config.events) == sorted(events)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": 3}]}]},
            "key hooks.PreToolUse[0].hooks[0].command must be a string (got int)",
        ),
        (
            {"Stop": [{"hooks": [{"type": "command"}]}]},
            "key hooks.Stop[0].hooks[0].command is required",
        ),
        (
            {"Stop": [{"hooks": [command("  ")]}]},
            "key hooks.Stop[0].hooks[0].command: must not be empty",
        ),
        (
            {"Stop": [{"hooks": [command(timeout=-1)]}]},
            "key hooks.Stop[0].hooks[0].timeout must be a number > 0 (got -1)",
        ),
        (
            {"Stop": [{"hooks": [command(timeout="10")]}]},
            "key hooks.Stop[0].hooks[0].timeout must be a number (got string)",
        ),
        (
            {"Stop": [{"hooks": [command(once="yes")]}]},
            "key hooks.Stop[0].hooks[0].once must be true or false (got string)",
        ),
        (
            {"PreToolUse": [{"hooks": [command(**{"if": "Bash(git"})]}]},
            "key hooks.PreToolUse[0].hooks[0].if: unbalanced parentheses",
        ),
        (
            {"Stop": [{"hooks": [command(), {"type": "comand", "command": "x"}]}]},
            "key hooks.Stop[0].hooks[1].type must be one of command, http, mcp_tool, prompt, "
            'agent (got "comand")',
        ),
        (
            {"Stop": [{"hooks": [{"command": "x"}]}]},
            "key hooks.Stop[0].hooks[0].type must be one of",
        ),
        ({"Stop": [{"hooks": ["x"]}]}, "key hooks.Stop[0].hooks[0] must be an object (got string)"),
        ({"Stop": [{"matcher": "*"}]}, "key hooks.Stop[0].hooks must be a list of handlers"),
        ({"Stop": [{"matcher": 1, "hooks": []}]}, "key hooks.Stop[0].matcher must be a string"),
        (
            {"PreToolUse": [{"matcher": "Bash(", "hooks": []}]},
            "key hooks.PreToolUse[0].matcher is not a valid regular expression",
        ),
        ({"Stop": {"hooks": []}}, "key hooks.Stop must be a list of matcher groups (got object)"),
        ({"Stop": ["x"]}, "key hooks.Stop[0] must be an object (got string)"),
    ],
)
def test_errors_are_one_line_naming_file_and_dotted_key(raw: Any, message: str) -> None:
    with pytest.raises(UserError) as info:
        validate_hooks(raw, SRC)
    text = str(info.value)
    assert text.startswith(f"{SRC}: {message}")
    assert "\n" not in text


def test_hooks_must_be_an_object() -> None:
    with pytest.raises(UserError, match=r"^/p/.covey/settings.json: key hooks must be an object"):
        validate_hooks([], SRC)


def test_unsupported_handler_types_are_warned_about_and_skipped() -> None:
    raw = {
        "PreToolUse": [
            {"hooks": [{"type": "http", "url": "http://x"}, command("./a.sh")]},
            {"hooks": [{"type": "prompt", "prompt": "ok?"}]},
        ],
        "Stop": [{"hooks": [{"type": "agent", "prompt": "check"}]}],
    }
    config, warnings = validate_hooks(raw, SRC)
    assert [h.command for g in config.groups("PreToolUse") for h in g.hooks] == ["./a.sh"]
    assert len(config.groups("PreToolUse")) == 1  # the group left empty is dropped
    assert "Stop" not in config.events
    assert len(warnings) == 3
    assert warnings[0] == (
        f"{SRC}: key hooks.PreToolUse[0].hooks[0].type: http hooks are not supported yet;"
        " the handler is skipped"
    )
    assert "prompt hooks" in warnings[1] and "agent hooks" in warnings[2]


def test_unknown_events_and_keys_are_warnings() -> None:
    raw = {
        "PreTooluse": [{"hooks": [command()]}],
        "StopFailure": [{"hooks": [command()]}],
        "Stop": [{"mather": "x", "hooks": [command(asyncc=True, **{"async": True})]}],
    }
    config, warnings = validate_hooks(raw, SRC)
    assert list(config.events) == ["Stop"]
    assert f"{SRC}: unknown hook event hooks.PreTooluse (did you mean PreToolUse?)" in warnings[0]
    assert "hooks.StopFailure" in warnings[1] and "ignored" in warnings[1]
    assert f"{SRC}: unknown key hooks.Stop[0].mather; it is ignored" in warnings
    assert (
        f"{SRC}: key hooks.Stop[0].hooks[0].async is not supported yet; it is ignored" in warnings
    )
    assert f"{SRC}: unknown key hooks.Stop[0].hooks[0].asyncc; it is ignored" in warnings


def test_if_outside_tool_events_is_a_warning_and_the_handler_never_runs() -> None:
    config, warnings = validate_hooks({"Stop": [{"hooks": [command(**{"if": "Bash"})]}]}, SRC)
    assert config.events == {}
    assert warnings == [
        f"{SRC}: key hooks.Stop[0].hooks[0].if applies only to tool events; the handler never runs"
    ]


@pytest.mark.parametrize(
    ("matcher", "value", "expected"),
    [
        (None, "Bash", True),
        ("", "Bash", True),
        ("*", "anything", True),
        ("Bash", "Bash", True),
        ("Bash", "BashOutput", False),  # exact, not a prefix
        ("Edit|Write", "Write", True),
        ("Edit|Write", "Read", False),
        ("Edit, Write", "Write", True),
        ("manual", "auto", False),
        ("mcp__memory__.*", "mcp__memory__save", True),
        ("^Notebook", "NotebookEdit", True),
        ("Edit.*", "MultiEdit", True),  # unanchored search
        ("^Edit$", "MultiEdit", False),
    ],
)
def test_matcher_forms(matcher: str | None, value: str, expected: bool) -> None:
    assert matcher_matches(matcher, value) is expected


def test_merge_concatenates_and_drops_identical_handlers() -> None:
    user, _ = validate_hooks(
        {"PreToolUse": [{"matcher": "Bash", "hooks": [command("./a.sh"), command("./b.sh")]}]},
        "user",
    )
    project, _ = validate_hooks(
        {
            "PreToolUse": [
                {"matcher": "Bash", "hooks": [command("./a.sh"), command("./c.sh")]},
                {"matcher": "Bash", "hooks": [command("./b.sh")]},
                {"matcher": "Edit", "hooks": [command("./a.sh")]},
            ],
            "Stop": [{"hooks": [command("./s.sh")]}],
        },
        "project",
    )
    merged = merge_hooks([user, project, user])
    assert [(g.matcher, [h.command for h in g.hooks]) for g in merged.groups("PreToolUse")] == [
        ("Bash", ["./a.sh", "./b.sh"]),
        ("Bash", ["./c.sh"]),
        ("Edit", ["./a.sh"]),
    ]
    assert merged.groups("Stop") == (MatcherGroup(hooks=(CommandHook(command="./s.sh"),)),)
    assert merge_hooks([]) == HooksConfig()


@pytest.mark.parametrize("timeout", [0, -5, True, "30", None])
def test_an_sdk_callbacks_timeout_that_is_not_positive_seconds_is_the_default(
    timeout: object,
) -> None:
    raw = {"PreToolUse": [{"matcher": "Bash", "hookCallbackIds": ["hook_0"], "timeout": timeout}]}
    config, _ = callback_hooks(raw)
    (group,) = config.events["PreToolUse"]
    assert [h.timeout for h in group.hooks] == [None]


def test_an_sdk_callbacks_positive_timeout_is_kept() -> None:
    raw = {"PreToolUse": [{"matcher": "Bash", "hookCallbackIds": ["hook_0"], "timeout": 30}]}
    config, _ = callback_hooks(raw)
    (group,) = config.events["PreToolUse"]
    assert [h.timeout for h in group.hooks] == [30.0]
