"""Compaction end to end: `covey -p` announces it in stream-json and records how it went."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from clitools import covey
from covey.agent.compact import COMPACT_INSTRUCTIONS
from covey.messages import Usage
from covey.models.script import Script
from covey.store import Store
from covey.store.transcript import read_entries
from covey.store.usage import session_usage
from covey.testing.fakeserver import FakeServer


def tiny_window(repo: Path) -> None:
    (repo / ".covey").mkdir(exist_ok=True)
    (repo / ".covey" / "settings.json").write_text(json.dumps({"autoCompactWindow": 2000}))


def boundaries(store_events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in store_events if e.get("subtype") == "compact_boundary"]


def test_stream_json_prints_each_compact_boundary(git_repo: Path, tmp_path: Path) -> None:
    tiny_window(git_repo)
    turns: list[dict[str, Any]] = [
        {
            "text": f"step {i}",
            "tool_calls": [{"name": "Write", "input": {"file_path": f"f{i}.txt", "content": "x"}}],
            "usage": {"input": 800 + 400 * i, "output": 40},
        }
        for i in range(8)
    ]
    script = tmp_path / "s.yaml"
    script.write_text(yaml.safe_dump({"turns": [*turns, {"text": "all written"}]}))
    run = covey(
        "-p", "write eight files", "--model", f"scripted:{script}",
        "--permission-mode", "acceptEdits", "--output-format", "stream-json", cwd=git_repo,
    )  # fmt: skip
    assert run.code == 0, run.err
    events = run.events()
    assert events[-1]["result"] == "all written"
    found = boundaries(events)
    assert found, [e["type"] for e in events]
    sid = events[0]["session_id"]
    for boundary in found:
        assert set(boundary) == {"type", "subtype", "session_id", "compact_metadata", "uuid"}
        assert boundary["type"] == "system" and boundary["session_id"] == sid
        at = events.index(boundary)
        before = next(e for e in reversed(events[:at]) if e["type"] == "assistant")
        usage = before["message"]["usage"]
        expected = usage["input_tokens"] + usage["output_tokens"]
        assert boundary["compact_metadata"] == {"trigger": "auto", "pre_tokens": expected}
        assert expected >= 2000


def test_a_model_that_will_not_summarise_gets_its_old_tool_outputs_trimmed(
    git_repo: Path,
) -> None:
    tiny_window(git_repo)
    turns: list[dict[str, Any]] = [
        {
            "tool_calls": [{"name": "Bash", "input": {"command": f"seq {i} 400"}}],
            "usage": {"input": 800 + 400 * i, "output": 40},
        }
        for i in range(8)
    ]
    script = Script.model_validate({"turns": [*turns, {"text": "counted"}]})
    with FakeServer(script) as srv:
        env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": srv.url}
        run = covey(
            "-p", "count", "--model", "anthropic:claude-sonnet-4-5",
            "--permission-mode", "bypassPermissions", "--output-format", "stream-json",
            cwd=git_repo, env=env,
        )  # fmt: skip
    assert run.code == 0, run.err
    events = run.events()
    assert events[-1]["result"] == "counted"
    assert boundaries(events), "the trimming is announced like a compaction"
    asks = [r for r in srv.requests if COMPACT_INSTRUCTIONS in json.dumps(r["body"])]
    assert len(asks) >= 2
    first, retry = asks[:2]
    assert "tool_choice" not in first["body"]
    assert retry["body"]["tool_choice"] == {"type": "none"} and retry["body"]["tools"]
    last = json.dumps(srv.requests[-1]["body"])
    assert "trimmed to save context" in last, "the next turns see the trimmed outputs"
    store = Store.open()
    try:
        with store.read() as conn:
            entries = read_entries(conn, events[0]["session_id"])
    finally:
        store.close()
    kept = [e.data for e in entries if e.kind == "compact_boundary"]
    assert kept and all(d["method"] == "trimmed_tool_outputs" for d in kept)
    assert "no summary" in kept[0]["summary"]
    logs = covey("logs", events[0]["session_id"], cwd=git_repo).out
    assert "── compacted (auto) ──" in logs and "no summary" in logs


def _server_usage(srv: FakeServer) -> Usage:
    return sum((Usage(**r["usage"]) for r in srv.requests if "usage" in r), Usage())


def test_a_summary_request_is_billed_to_the_session(
    git_repo: Path,
) -> None:
    tiny_window(git_repo)
    turns: list[dict[str, Any]] = [
        {
            "text": f"step {i}",
            "tool_calls": [{"name": "Glob", "input": {"pattern": "*"}}],
            "usage": {"input": 800 + 400 * i, "output": 40},
        }
        for i in range(6)
    ]
    script = Script.model_validate({"turns": [*turns, {"text": "globbed"}]})
    args = ["-p", "glob", "--model", "anthropic:claude-sonnet-4-5"]
    args += ["--permission-mode", "bypassPermissions", "--output-format", "json"]
    with FakeServer(script) as srv:
        env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": srv.url}
        run = covey(*args, cwd=git_repo, env=env)
        billed = _server_usage(srv)
        asks = [r for r in srv.requests if COMPACT_INSTRUCTIONS in json.dumps(r["body"])]
    assert run.code == 0, run.err
    assert asks, "the tiny window made covey ask for a summary"
    result = json.loads(run.out)
    store = Store.open()
    try:
        with store.read() as conn:
            recorded, cost = session_usage(conn, result["session_id"])
    finally:
        store.close()
    assert recorded == billed, "every request the server billed is in the usage ledger"
    assert result["usage"]["input_tokens"] == billed.input
    assert cost == pytest.approx(result["total_cost_usd"])
