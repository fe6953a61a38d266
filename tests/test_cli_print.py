"""End to end: `covey -p` in a real git repo, through each provider (real SDKs over HTTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from clitools import CliRun, covey
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer

WRITE_BASH_EDIT: dict[str, Any] = {
    "turns": [
        {
            "text": "Creating the module.",
            "tool_calls": [
                {
                    "name": "Write",
                    "input": {"file_path": "greet.py", "content": "print('helo')\n"},
                }
            ],
        },
        {"tool_calls": [{"name": "Bash", "input": {"command": "python3 greet.py"}}]},
        {
            "tool_calls": [
                {
                    "name": "Edit",
                    "input": {
                        "file_path": "greet.py",
                        "old_string": "helo",
                        "new_string": "hello",
                    },
                }
            ]
        },
        {"text": "Wrote greet.py and fixed the typo."},
    ]
}
ALLOW = ["--permission-mode", "acceptEdits", "--allowedTools", "Bash(python3 *)"]


@contextmanager
def provider(kind: str, script: dict[str, Any], tmp: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """Yields (--model value, extra environment) for a provider kind."""
    if kind == "scripted":
        path = tmp / "script.yaml"
        path.write_text(yaml.safe_dump(script))
        yield f"scripted:{path}", {}
        return
    with FakeServer(Script.model_validate(script)) as srv:
        if kind == "anthropic":
            yield (
                "anthropic:claude-sonnet-4-5",
                {
                    "ANTHROPIC_API_KEY": "test-key",
                    "ANTHROPIC_BASE_URL": srv.url,
                },
            )
        else:
            yield (
                "openai:gpt-4.1",
                {"OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": srv.url + "/v1"},
            )


def run_script(
    kind: str, script: dict[str, Any], repo: Path, *args: str, fmt: str = "json"
) -> CliRun:
    with provider(kind, script, repo.parent) as (model, env):
        return covey(
            "-p",
            "make greet.py",
            "--model",
            model,
            "--output-format",
            fmt,
            *args,
            cwd=repo,
            env=env,
        )


@pytest.mark.parametrize("kind", ["scripted", "anthropic", "openai"])
def test_write_bash_edit_through_each_provider(kind: str, git_repo: Path) -> None:
    run = run_script(kind, WRITE_BASH_EDIT, git_repo, *ALLOW, fmt="stream-json")
    assert run.code == 0, run.err
    assert (git_repo / "greet.py").read_text() == "print('hello')\n"
    events = run.events()
    assert events[0]["type"] == "system" and events[0]["subtype"] == "init"
    assert {"Read", "Write", "Edit", "Bash"} <= set(events[0]["tools"])
    assert [e["type"] for e in events[1:]] == ["assistant", "user"] * 3 + ["assistant", "result"]
    bash_result = events[4]["message"]["content"][0]
    assert bash_result["type"] == "tool_result" and "helo" in bash_result["content"]
    result = events[-1]
    assert result["subtype"] == "success" and result["is_error"] is False
    assert result["result"] == "Wrote greet.py and fixed the typo."
    assert result["num_turns"] == 4 and result["permission_denials"] == []
    assert result["usage"]["output_tokens"] > 0


@pytest.mark.parametrize("kind", ["scripted", "anthropic"])
def test_text_and_json_outputs(kind: str, git_repo: Path) -> None:
    text = run_script(kind, WRITE_BASH_EDIT, git_repo, *ALLOW, fmt="text")
    assert text.code == 0, text.err
    assert text.out == "Wrote greet.py and fixed the typo.\n"
    (git_repo / "greet.py").unlink()
    result = run_script(kind, WRITE_BASH_EDIT, git_repo, *ALLOW).json()
    assert result["type"] == "result" and result["subtype"] == "success"
    assert set(result) >= {
        "session_id",
        "num_turns",
        "total_cost_usd",
        "usage",
        "permission_denials",
        "result",
    }


def test_ask_is_denied_in_print_mode_and_reported(git_repo: Path) -> None:
    run = run_script("scripted", WRITE_BASH_EDIT, git_repo, "--permission-mode", "acceptEdits")
    assert run.code == 0, run.err
    denials = run.json()["permission_denials"]
    assert [d["tool_name"] for d in denials] == ["Bash"]
    assert denials[0]["tool_input"] == {"command": "python3 greet.py"}


def test_escapes_are_tool_errors_and_nothing_outside_changes(git_repo: Path) -> None:
    outside = git_repo.parent / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("original\n")
    (git_repo / "link").symlink_to(outside)
    escape = {
        "turns": [
            {
                "tool_calls": [
                    {"name": "Write", "input": {"file_path": "../outside/new.txt", "content": "x"}},
                    {
                        "name": "Write",
                        "input": {"file_path": str(outside / "keep.txt"), "content": "x"},
                    },
                    {
                        "name": "Edit",
                        "input": {
                            "file_path": "link/keep.txt",
                            "old_string": "original",
                            "new_string": "x",
                        },
                    },
                    {"name": "Read", "input": {"file_path": "link/keep.txt"}},
                ]
            },
            {"text": "I could not touch those files."},
        ]
    }
    run = run_script("scripted", escape, git_repo, *ALLOW, fmt="stream-json")
    assert run.code == 0, run.err
    results = run.events()[2]["message"]["content"]
    assert len(results) == 4
    assert all(r["is_error"] for r in results), results
    assert all("outside the workspace" in r["content"] for r in results), results
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert (outside / "keep.txt").read_text() == "original\n"
    assert run.events()[-1]["result"] == "I could not touch those files."


def _fast_retries(repo: Path, max_retries: int) -> None:
    settings = {"retries": {"maxRetries": max_retries, "initialDelay": 0.01, "maxDelay": 0.05}}
    (repo / ".covey").mkdir(exist_ok=True)
    (repo / ".covey" / "settings.json").write_text(json.dumps(settings))


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_rate_limit_and_dropped_stream_are_retried(kind: str, git_repo: Path) -> None:
    _fast_retries(git_repo, 3)
    script = {
        "turns": [
            {
                "faults": [{"status": 429, "retry_after": 0.05}, {"drop": "before_blocks"}],
                "tool_calls": [{"name": "Write", "input": {"file_path": "a.txt", "content": "a"}}],
            },
            {"faults": [{"status": 500}], "text": "done"},
        ]
    }
    run = run_script(kind, script, git_repo, *ALLOW)
    assert run.code == 0, run.err
    assert run.json()["result"] == "done"
    assert (git_repo / "a.txt").read_text() == "a"
    assert "retrying" in run.err


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_overload_beyond_the_retry_count_fails_the_run(kind: str, git_repo: Path) -> None:
    _fast_retries(git_repo, 2)
    script = {"turns": [{"faults": [{"status": 529}] * 3, "text": "never"}]}
    run = run_script(kind, script, git_repo, fmt="text")
    assert run.code == 1
    assert "gave up after 2 retries" in run.err
    assert "Traceback" not in run.err
    json_run = run_script(kind, script, git_repo)
    assert json_run.code == 1
    result = json_run.json()
    assert result["is_error"] is True and result["subtype"] == "error_during_execution"


def _one_line_exit_2(run: CliRun, *needles: str) -> None:
    assert run.code == 2, (run.out, run.err)
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert "Traceback" not in run.err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_input_is_one_line_and_exit_2(git_repo: Path) -> None:
    _one_line_exit_2(covey("-p", "hi", "--model", "gemini:x", cwd=git_repo), "gemini")
    _one_line_exit_2(
        covey("-p", "hi", "--model", "anthropic:claude-sonnet-4-5", cwd=git_repo),
        "ANTHROPIC_API_KEY",
    )
    _one_line_exit_2(covey("-p", "hi", "--model", "openai:gpt-4.1", cwd=git_repo), "OPENAI_API_KEY")
    missing = git_repo / "nope.yaml"
    _one_line_exit_2(covey("-p", "hi", "--model", f"scripted:{missing}", cwd=git_repo), "nope.yaml")
    (git_repo / ".covey").mkdir()
    broken = git_repo / ".covey" / "settings.json"
    broken.write_text('{"permissions": {"allow": [}')
    _one_line_exit_2(covey("-p", "hi", "--model", "scripted:x", cwd=git_repo), "settings.json")
    assert broken.read_text() == '{"permissions": {"allow": [}'
    _one_line_exit_2(covey("-p", "hi", "--max-turns", "0", cwd=git_repo), "--max-turns")
    _one_line_exit_2(covey("-p", "--nope", cwd=git_repo), "--nope")


def test_prompt_from_stdin_max_turns_and_version(git_repo: Path, tmp_path: Path) -> None:
    script = tmp_path / "s.yaml"
    script.write_text(yaml.safe_dump(WRITE_BASH_EDIT))
    run = covey(
        "-p",
        "--model",
        f"scripted:{script}",
        "--max-turns",
        "1",
        "--output-format",
        "json",
        *ALLOW,
        cwd=git_repo,
        stdin="make greet.py",
    )
    assert run.code == 1
    result = run.json()
    assert result["subtype"] == "error_max_turns" and result["num_turns"] == 1
    version = covey("--version", cwd=git_repo)
    assert version.code == 0 and version.out.startswith("covey ")
