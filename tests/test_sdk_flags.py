"""The flags the Claude Agent SDK passes, through `covey -p` and stream-json input, with the
fake Anthropic server (what the model was sent) or the scripted model."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from clitools import CliRun, covey
from covey.models.registry import parse_model
from covey.models.script import Script
from covey.store import Store
from covey.store.transcript import read_entries
from covey.testing.fakeserver import FakeServer

TEXT = {"turns": [{"text": "ok"}]}
STREAM = ["--input-format", "stream-json", "--output-format", "stream-json", "--verbose"]


def ask(
    repo: Path, *args: str, script: dict[str, Any] = TEXT, stdin: str | None = None
) -> tuple[CliRun, list[dict[str, Any]]]:
    """Run covey on the fake server; the run and the request bodies the model got."""
    with FakeServer(Script.model_validate(script)) as srv:
        env = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": srv.url}
        mode = [*STREAM] if stdin is not None else ["-p", "hi", "--output-format", "json"]
        run = covey(*mode, "--model", "claude-sonnet-4-5", *args, cwd=repo, env=env, stdin=stdin)
        return run, [r["body"] for r in srv.requests]


def prompt(text: str) -> str:
    return json.dumps({"type": "user", "message": {"role": "user", "content": text}}) + "\n"


def system_text(body: dict[str, Any]) -> str:
    system = body.get("system") or ""
    return system if isinstance(system, str) else "".join(b["text"] for b in system)


def test_a_bare_claude_model_id_is_an_anthropic_model() -> None:
    assert parse_model("claude-opus-4-5") == ("anthropic", "claude-opus-4-5")


def test_system_prompt_replaces_covey_s_and_the_append_still_applies(git_repo: Path) -> None:
    run, bodies = ask(
        git_repo, "--system-prompt", "You are terse.", "--append-system-prompt", "P.S."
    )
    assert run.code == 0, run.err
    assert system_text(bodies[0]) == "You are terse.\n\nP.S."
    (git_repo.parent / "prompt.md").write_text("From a file.")
    run, bodies = ask(git_repo, "--system-prompt-file", "../prompt.md", "--verbose")
    assert run.code == 0, run.err
    assert system_text(bodies[0]) == "From a file."


def test_tools_limits_what_the_model_is_offered(git_repo: Path) -> None:
    run, bodies = ask(git_repo, "--tools", "Read,Task,WebFetch")
    assert run.code == 0, run.err
    assert [t["name"] for t in bodies[0]["tools"]] == ["Read", "Agent"]
    assert "covey has no WebFetch tool" in run.err
    run, bodies = ask(git_repo, "--tools", "")
    assert run.code == 0 and not bodies[0].get("tools")


def test_session_id_names_the_new_session_once(git_repo: Path) -> None:
    chosen = str(uuid.uuid4())
    run, _ = ask(git_repo, f"--session-id={chosen}")
    assert run.code == 0 and run.json()["session_id"] == chosen
    again, _ = ask(git_repo, f"--session-id={chosen}", stdin=prompt("hi"))
    assert again.code == 2 and "taken" in again.err
    bad, _ = ask(git_repo, "--session-id", "not-a-uuid")
    assert bad.code == 2 and "--session-id" in bad.err


def test_settings_and_setting_sources(git_repo: Path, covey_home: Path) -> None:
    (covey_home / "settings.json").write_text(json.dumps({"permissions": {"deny": ["Bash"]}}))
    run, bodies = ask(git_repo, "--settings", json.dumps({"permissions": {"deny": ["Write"]}}))
    tools = {t["name"] for t in bodies[0]["tools"]}
    assert run.code == 0 and "Write" not in tools and "Bash" not in tools
    run, bodies = ask(git_repo, "--setting-sources=project,local")
    assert run.code == 0 and "Bash" in {t["name"] for t in bodies[0]["tools"]}
    (git_repo.parent / "s.json").write_text(json.dumps({"permissions": {"deny": ["Read"]}}))
    run, bodies = ask(git_repo, "--settings", "../s.json", "--setting-sources", "project")
    assert run.code == 0 and "Read" not in {t["name"] for t in bodies[0]["tools"]}
    for bad in (["--settings", "{oops"], ["--setting-sources", "team"]):
        run, _ = ask(git_repo, *bad)
        assert run.code == 2 and bad[0] in run.err


def test_add_dir_lets_tools_reach_another_directory(git_repo: Path) -> None:
    other = git_repo.parent / "other"
    other.mkdir()
    (other / "notes.txt").write_text("from elsewhere\n")
    read = {"name": "Read", "input": {"file_path": str(other / "notes.txt")}}
    script = {"turns": [{"tool_calls": [read]}, {"text": "read it"}]}
    for args, reached in (([], False), (["--add-dir", "../other"], True)):
        run, bodies = ask(git_repo, *args, script=script)
        assert run.code == 0, run.err
        result = bodies[1]["messages"][-1]["content"][0]
        assert ("from elsewhere" in str(result["content"])) is reached


def test_permission_mode_auto_is_accept_edits(git_repo: Path) -> None:
    run, _ = ask(git_repo, "--permission-mode", "auto", stdin=prompt("hi"))
    assert run.code == 0, run.err
    assert run.events()[0]["permissionMode"] == "acceptEdits"


def test_fallback_model_answers_when_the_model_fails(git_repo: Path) -> None:
    script = {"turns": [{"text": "from the fallback", "faults": [{"status": 500}]}]}
    no_retries = json.dumps({"retries": {"maxRetries": 0}})
    args = ("--settings", no_retries, "--fallback-model", "claude-haiku-4-5")
    run, bodies = ask(git_repo, *args, script=script)
    assert run.code == 0, run.err
    assert [b["model"] for b in bodies] == ["claude-sonnet-4-5", "claude-haiku-4-5"]
    assert run.json()["result"] == "from the fallback"


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--mcp-config", "{}"), ("--plugin-dir", "plugins"), ("--json-schema", "{}")],
)
def test_unsupported_flags_are_refused_in_one_line(git_repo: Path, flag: str, value: str) -> None:
    run, bodies = ask(git_repo, flag, value, stdin=prompt("hi"))
    assert run.code == 2 and run.err.count("\n") == 1 and flag in run.err
    assert bodies == [] and run.out == ""


def test_cosmetic_flags_are_accepted_and_sdk_flags_need_a_headless_run(git_repo: Path) -> None:
    cosmetic = ("--thinking", "adaptive", "--effort", "high", "--max-thinking-tokens", "9")
    run, _ = ask(git_repo, *cosmetic, "--include-hook-events", "--strict-mcp-config")
    assert run.code == 0, run.err
    screen = covey("--system-prompt", "x", cwd=git_repo)
    assert screen.code == 2 and "--system-prompt works with -p" in screen.err


def test_fork_session_continues_a_conversation_in_a_new_session(git_repo: Path) -> None:
    script = {"turns": [{"text": "first"}, {"text": "forked"}]}
    run, _ = ask(git_repo, script=script)
    original = run.json()["session_id"]
    args = ("--resume", original, "--fork-session")
    fork, bodies = ask(git_repo, *args, script=script, stdin=prompt("and then?"))
    assert fork.code == 0, fork.err
    result = fork.events()[-1]
    assert result["result"] == "forked" and result["session_id"] != original
    assert "first" in json.dumps(bodies[-1]["messages"])  # the fork knows the conversation
    with Store.open() as store, store.read() as conn:
        kept = [e.kind for e in read_entries(conn, original)]
        copied = [e.kind for e in read_entries(conn, result["session_id"])]
    assert copied[: len(kept)] == kept and len(copied) > len(kept)


def test_hooks_in_settings_flag_run(git_repo: Path) -> None:
    guard = {"type": "command", "command": "echo 'not via --settings' >&2; exit 2"}
    settings = {"hooks": {"PreToolUse": [{"matcher": "Write", "hooks": [guard]}]}}
    write = {"name": "Write", "input": {"file_path": "x.txt", "content": "x"}}
    script = {"turns": [{"tool_calls": [write]}, {"text": "ok"}]}
    args = ("--settings", json.dumps(settings), "--permission-mode", "acceptEdits")
    run, bodies = ask(git_repo, *args, script=script)
    assert run.code == 0, run.err
    assert not (git_repo / "x.txt").exists()
    assert "not via --settings" in json.dumps(bodies[1]["messages"][-1])
