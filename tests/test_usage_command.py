"""`covey usage`: the ledger rolled up, token for token what the provider billed."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from clitools import covey
from covey.messages import Usage
from covey.models.pricing import cost_usd
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer

MODEL = ["--model", "anthropic:claude-sonnet-4-5"]


def _env(server: FakeServer) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": server.url}


def _usage(i: int, o: int, read: int = 0, write: int = 0) -> dict[str, int]:
    return {"input": i, "output": o, "cache_read": read, "cache_write": write}


WITH_SUBAGENT = {
    "turns": [
        {
            "usage": _usage(1200, 80, 300, 50),
            "tool_calls": [{"name": "Agent", "input": {"description": "look", "prompt": "look"}}],
        },
        {"usage": _usage(900, 40, 1500), "text": "Done."},
    ],
    "agents": {
        "general-purpose": {
            "turns": [
                {
                    "usage": _usage(2000, 120, 0, 700),
                    "tool_calls": [{"name": "Glob", "input": {"pattern": "*"}}],
                },
                {"usage": _usage(2500, 60, 800), "text": "Found a README."},
            ]
        }
    },
}
PLAIN = {"turns": [{"usage": _usage(400, 20, 100, 0), "text": "Hi."}]}


def _run(git_repo: Path, script: dict[str, Any]) -> tuple[str, list[Usage]]:
    with FakeServer(Script.model_validate(script)) as server:
        run = covey("-p", "go", "--output-format", "json", *MODEL, cwd=git_repo, env=_env(server))
        billed = [Usage(**r["usage"]) for r in server.requests if "usage" in r]
    assert run.code == 0, run.err
    return str(run.json()["session_id"]), billed


def _expected(billed: list[Usage]) -> dict[str, Any]:
    return {
        "input_tokens": sum(u.input for u in billed),
        "output_tokens": sum(u.output for u in billed),
        "cache_read_input_tokens": sum(u.cache_read for u in billed),
        "cache_creation_input_tokens": sum(u.cache_write for u in billed),
        "requests": len(billed),
        "cost_usd": pytest.approx(sum(cost_usd("claude-sonnet-4-5", u) for u in billed), abs=1e-6),
    }


def _usage_json(git_repo: Path, *args: str) -> list[dict[str, Any]]:
    run = covey("usage", "--json", *args, cwd=git_repo)
    assert run.code == 0, run.err
    rows: list[dict[str, Any]] = json.loads(run.out)
    return rows


def test_usage_equals_the_fake_servers_counts_by_every_grouping(git_repo: Path) -> None:
    first, first_billed = _run(git_repo, WITH_SUBAGENT)
    second, second_billed = _run(git_repo, PLAIN)
    assert len(first_billed) == 4  # two of them by the subagent
    by_session = {r.pop("session"): r for r in _usage_json(git_repo, "--by", "session")}
    assert by_session == {first: _expected(first_billed), second: _expected(second_billed)}
    everything = _expected(first_billed + second_billed)
    by_model = _usage_json(git_repo, "--by", "model")
    assert by_model == [{"model": "claude-sonnet-4-5", **everything}]
    assert _usage_json(git_repo, "--by", "day") == [{"day": date.today().isoformat(), **everything}]
    by_agent = {r.pop("agent"): r for r in _usage_json(git_repo, "--by", "agent")}
    assert set(by_agent) == {"main", "main/general-purpose-1"}
    assert by_agent["main/general-purpose-1"] == _expected(first_billed[1:3])
    assert _usage_json(git_repo, "--since", "2999-01-01") == []


def test_usage_table_ends_with_total_and_cache_read_share(git_repo: Path) -> None:
    _run(git_repo, PLAIN)
    run = covey("usage", cwd=git_repo)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[-2].startswith("total")
    assert "400" in lines[-2]
    assert lines[-1] == "cache reads: 20.0% of input tokens"  # 100 of 400 + 100


def test_usage_since_bad_date_is_one_line_exit_2(git_repo: Path) -> None:
    run = covey("usage", "--since", "yesterdayish", cwd=git_repo)
    assert run.code == 2
    assert run.err.strip().count("\n") == 0
    assert "--since 'yesterdayish'" in run.err


def test_settings_pricing_overrides_the_table_for_sessions_and_subagents(git_repo: Path) -> None:
    price = {"input": 10.0, "output": 100.0, "cacheWrite": 20.0, "cacheRead": 1.0}
    settings = git_repo / ".covey" / "settings.json"
    settings.parent.mkdir(exist_ok=True)
    settings.write_text(json.dumps({"pricing": {"claude-sonnet-4-5": price}}))
    session, billed = _run(git_repo, WITH_SUBAGENT)
    expected = sum(
        (u.input * 10 + u.output * 100 + u.cache_write * 20 + u.cache_read * 1) / 1e6
        for u in billed
    )
    [row] = _usage_json(git_repo)
    assert row["session"] == session
    assert row["cost_usd"] == pytest.approx(expected, abs=1e-6)
    by_agent = {r["agent"]: r for r in _usage_json(git_repo, "--by", "agent")}
    sub = billed[1:3]
    assert by_agent["main/general-purpose-1"]["cost_usd"] == pytest.approx(
        sum((u.input * 10 + u.output * 100 + u.cache_write * 20 + u.cache_read) / 1e6 for u in sub),
        abs=1e-6,
    )


def test_a_pricing_entry_missing_a_price_is_refused_naming_the_field(git_repo: Path) -> None:
    settings = git_repo / ".covey" / "settings.json"
    settings.parent.mkdir(exist_ok=True)
    settings.write_text(json.dumps({"pricing": {"claude-sonnet-4-5": {"input": 1, "output": 2}}}))
    run = covey("-p", "go", *MODEL, cwd=git_repo, env={"ANTHROPIC_API_KEY": "k"})
    assert run.code == 2
    assert "pricing" in run.err and "cacheWrite" in run.err
