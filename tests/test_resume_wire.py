"""Resumed sessions stay well-formed on the wire: every tool result is sent once, in the one
user turn that follows its tool call (`covey -p` end to end, real SDKs, the fake server)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from clitools import CliRun, covey
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer
from test_sessions_cli import _kill_leftovers

BYPASS = ["--permission-mode", "bypassPermissions"]


@contextmanager
def provider(kind: str, script: dict[str, Any]) -> Iterator[tuple[FakeServer, dict[str, str]]]:
    """The fake server and the environment (including --model) that points covey at it."""
    with FakeServer(Script.model_validate(script)) as srv:
        if kind == "anthropic":
            env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": srv.url}
            env["COVEY_TEST_MODEL"] = "anthropic:claude-sonnet-4-5"
        else:
            env = {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": srv.url + "/v1"}
            env["COVEY_TEST_MODEL"] = "openai:gpt-4.1"
        yield srv, env


def run(repo: Path, env: dict[str, str], *args: str) -> CliRun:
    return covey(
        "-p", *args, "--model", env["COVEY_TEST_MODEL"], *BYPASS, "--output-format", "json",
        cwd=repo, env=env,
    )  # fmt: skip


def answered_ids(body: dict[str, Any]) -> Counter[str]:
    """How many times each tool call id is answered in a request body (either provider)."""
    seen: Counter[str] = Counter()
    for message in body["messages"]:
        if message["role"] == "tool":
            seen[message["tool_call_id"]] += 1
        elif message["role"] == "user" and isinstance(message["content"], list):
            for block in message["content"]:
                if block.get("type") == "tool_result":
                    seen[block["tool_use_id"]] += 1
    return seen


def assert_answered_once(srv: FakeServer) -> None:
    for record in srv.requests:
        assert record["body"] is not None
        twice = [i for i, n in answered_ids(record["body"]).items() if n > 1]
        assert not twice, f"turn {record['turn']} answers {twice} more than once"
        roles = [m["role"] for m in record["body"]["messages"] if m["role"] != "tool"]
        assert all(a != b for a, b in itertools.pairwise(roles)), roles


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_resuming_after_max_turns_sends_each_tool_result_once(kind: str, git_repo: Path) -> None:
    script = {
        "turns": [
            {"tool_calls": [{"name": "Bash", "input": {"command": "echo ran >> runs.txt"}}]},
            {"text": "Continuing."},
            {"text": "Third answer."},
        ]
    }
    with provider(kind, script) as (srv, env):
        first = run(git_repo, env, "start", "--max-turns", "1")
        assert first.code == 1 and first.json()["subtype"] == "error_max_turns", first.err
        sid = first.json()["session_id"]
        second = run(git_repo, env, "--resume", sid, "continue")
        assert second.code == 0, second.err
        third = run(git_repo, env, "--resume", sid, "third")
        assert third.code == 0, third.err
    assert third.json()["result"] == "Third answer."
    assert (git_repo / "runs.txt").read_text() == "ran\n"
    assert [r["turn"] for r in srv.requests] == [0, 1, 2]
    assert_answered_once(srv)
    logs = covey("logs", sid, cwd=git_repo).out
    assert logs.count("← (no output)") == 1, logs


def test_a_background_notice_after_tool_results_resumes_well_formed(git_repo: Path) -> None:
    launch = {"description": "audit", "prompt": "quick audit", "run_in_background": True}
    script = {
        "turns": [
            {"tool_calls": [{"name": "Agent", "input": launch}]},
            {"tool_calls": [{"name": "Bash", "input": {"command": "sleep 3"}}]},
            {"text": "Audit noted."},
            {"text": "Resumed fine."},
        ],
        "agents": {"general-purpose": {"turns": [{"text": "AUDIT-RESULT ok"}]}},
    }
    with provider("anthropic", script) as (srv, env):
        first = run(git_repo, env, "go")
        assert first.code == 0, first.err
        sid = first.json()["session_id"]
        again = run(git_repo, env, "--resume", sid, "again")
        assert again.code == 0, again.err
    assert again.json()["result"] == "Resumed fine."
    main = [r for r in srv.requests if r["agent"] is None]
    joined = [
        m["content"]
        for r in main
        for m in r["body"]["messages"]
        if m["role"] == "user" and "AUDIT-RESULT ok" in json.dumps(m)
    ]
    assert joined[0][0]["type"] == "tool_result", "the notice came right after tool results"
    notice = json.dumps(main[-1]["body"]["messages"])
    assert notice.count("AUDIT-RESULT ok") == 1, "the notice is sent once"
    assert_answered_once(srv)


def test_a_kill_between_a_tool_result_and_the_reply_resumes_well_formed(
    git_repo: Path,
) -> None:
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "Bash", "input": {"command": "echo ran >> runs.txt"}}]},
        {"text": "After the kill."},
        {"text": "Third answer."},
    ]
    slow = [turns[0], {**turns[1], "delay_s": 30}, turns[2]]
    with provider("anthropic", {"turns": slow}) as (srv, env):
        proc = subprocess.Popen(
            [sys.executable, "-m", "covey", "-p", "go", "--model", env["COVEY_TEST_MODEL"],
             *BYPASS, "--output-format", "json"],
            cwd=git_repo, env={**os.environ, **env}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not any(r["turn"] == 1 for r in srv.requests) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(r["turn"] == 1 for r in srv.requests), "the run never asked for its reply"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        srv.script = Script.model_validate({"turns": turns})
        sid = json.loads(covey("sessions", "--json", cwd=git_repo).out)[0]["id"]
        second = run(git_repo, env, "--resume", sid, "go on")
        assert second.code == 0, second.err
        third = run(git_repo, env, "--resume", sid, "third")
        assert third.code == 0, third.err
    assert third.json()["result"] == "Third answer."
    assert (git_repo / "runs.txt").read_text() == "ran\n", "the finished call is not re-run"
    assert_answered_once(srv)


def test_a_kill_during_a_tool_call_resumes_twice_well_formed(git_repo: Path) -> None:
    slow = "echo started >> runs.txt; sleep 59; : resume-twice-marker"
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "Bash", "input": {"command": slow}}]},
        {"text": "It was interrupted."},
        {"text": "Third answer."},
    ]
    with provider("anthropic", {"turns": turns}) as (srv, env):
        proc = subprocess.Popen(
            [sys.executable, "-m", "covey", "-p", "go", "--model", env["COVEY_TEST_MODEL"],
             *BYPASS, "--output-format", "json"],
            cwd=git_repo, env={**os.environ, **env}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        runs = git_repo / "runs.txt"
        deadline = time.monotonic() + 60
        while not runs.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runs.exists(), "the slow Bash call never started"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        _kill_leftovers("resume-twice-marker")  # the Bash call's own process group
        sid = json.loads(covey("sessions", "--json", cwd=git_repo).out)[0]["id"]
        second = run(git_repo, env, "--resume", sid, "go on")
        assert second.code == 0, second.err
        third = run(git_repo, env, "--resume", sid, "third")
        assert third.code == 0, third.err
    assert third.json()["result"] == "Third answer."
    assert runs.read_text() == "started\n", "the interrupted call is not re-run"
    assert_answered_once(srv)
    logs = covey("logs", sid, cwd=git_repo).out
    assert logs.count("✗ Interrupted") == 1, logs
