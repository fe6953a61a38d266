"""Budgets: `--max-budget-usd`, settings `budget.*`: a warning at 80%, a stop before the request
the remaining budget cannot cover; checked against what the fake server billed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clitools import covey
from covey.budget.spend_limits import OUTPUT_SHARE
from covey.messages import Usage
from covey.models.pricing import cost_usd, price_for
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer

MODEL_ID = "claude-sonnet-4-5"
MODEL = ["--model", f"anthropic:{MODEL_ID}"]
GLOB = {"tool_calls": [{"name": "Glob", "input": {"pattern": "*"}}]}


def _env(server: FakeServer) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": server.url}


def _script(turns: int, usage: dict[str, int] | None = None) -> Script:
    """`turns - 1` tool calls, then a final answer; the server bills each by its size, or
    `usage` when given."""
    steps: list[dict[str, Any]] = [GLOB] * (turns - 1) + [{"text": "Done."}]
    if usage is not None:
        steps = [{**step, "usage": usage} for step in steps]
    return Script.model_validate({"turns": steps})


def _billed(server: FakeServer) -> list[float]:
    return [cost_usd(MODEL_ID, Usage(**r["usage"])) for r in server.requests if "usage" in r]


def _output_estimate() -> float:
    """What a request's estimate counts for its output (its input comes on top)."""
    price = price_for(MODEL_ID)
    assert price is not None
    return 16_000 * OUTPUT_SHARE * price.output / 1e6


def _settings(repo: Path, data: dict[str, Any]) -> None:
    path = repo / ".covey" / "settings.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data))


def test_print_stops_within_one_request_of_the_session_budget(git_repo: Path) -> None:
    heard = git_repo.parent / "heard.jsonl"
    hook = {"type": "command", "command": f"cat >> {heard}; echo >> {heard}"}
    _settings(git_repo, {"hooks": {"Notification": [{"hooks": [hook]}]}})
    limit = 1.0
    # each request bills $0.0975: nine leave $0.1225, more than the next one's estimate
    # (≈ $0.061); ten leave $0.025, less
    with FakeServer(_script(40, {"input": 30_000, "output": 500})) as server:
        run = covey(
            "-p", "list the files", "--output-format", "stream-json", "--max-budget-usd",
            str(limit), *MODEL, cwd=git_repo, env=_env(server),
        )  # fmt: skip
        billed = _billed(server)
        sent = len(server.requests)
    assert run.code == 1, run.err
    lines = run.events()
    result = lines[-1]
    assert result["type"] == "result" and result["subtype"] == "error_budget", result
    assert result["is_error"] is True
    assert "session budget of $1.00 reached" in result["result"]
    assert "--max-budget-usd" in result["result"]
    # it stopped early, never spent past the limit, and stopped only when the next request
    # could have overrun it
    assert sent == len(billed) == 10
    assert sum(billed) == pytest.approx(0.975)
    assert sum(billed) <= limit < sum(billed) + _output_estimate()
    assert result["total_cost_usd"] == pytest.approx(sum(billed), abs=1e-6)
    # one warning, at 80%, before the result
    warnings = [e for e in lines if e.get("subtype") == "budget_warning"]
    assert len(warnings) == 1, warnings
    [warning] = warnings
    assert warning["type"] == "system" and warning["budget"] == "session"
    assert warning["limit_usd"] == limit
    assert 0.8 * limit <= warning["spent_usd"] <= limit
    assert warning["session_id"] == result["session_id"]
    heard_kinds = [json.loads(x)["notification_type"] for x in heard.read_text().split("\n") if x]
    assert heard_kinds == ["budget_warning"]
    sessions = covey("sessions", "--json", cwd=git_repo)
    [row] = [r for r in json.loads(sessions.out) if r["id"] == result["session_id"]]
    assert row["state"] == "stopped" and row["reason"].startswith("budget: session budget")


def test_the_daily_budget_counts_every_process_of_the_day(git_repo: Path, covey_home: Path) -> None:
    with FakeServer(_script(3)) as server:
        first = covey("-p", "go", "--output-format", "json", *MODEL, cwd=git_repo, env=_env(server))
        assert first.code == 0, first.err
        spent = sum(_billed(server))
    assert spent > 0
    # the user's settings: today's first run leaves less than one request's estimate
    (covey_home / "settings.json").write_text(
        json.dumps({"budget": {"dailyUsd": spent + _output_estimate() / 2}})
    )
    with FakeServer(_script(3)) as server:
        second = covey(
            "-p", "go", "--output-format", "json", *MODEL, cwd=git_repo, env=_env(server)
        )
        assert server.requests == []  # not one request sent
    assert second.code == 1
    result = second.json()
    assert result["subtype"] == "error_budget" and result["is_error"] is True
    assert "daily budget" in result["result"] and "budget.dailyUsd" in result["result"]
    assert result["total_cost_usd"] == 0


def test_subagents_spend_from_the_sessions_budget(git_repo: Path) -> None:
    script = Script.model_validate(
        {
            "turns": [
                {"tool_calls": [{"name": "Agent", "input": {"description": "d", "prompt": "p"}}]},
                {"text": "Done."},
            ],
            "agents": {"general-purpose": {"turns": [GLOB] * 30 + [{"text": "Found."}]}},
        }
    )
    limit = 0.1
    with FakeServer(script) as server:
        run = covey(
            "-p", "go", "--output-format", "json", "--max-budget-usd", str(limit), *MODEL,
            cwd=git_repo, env=_env(server),
        )  # fmt: skip
        billed = _billed(server)
        by_subagent = [r for r in server.requests if r.get("agent") == "general-purpose"]
    assert run.code == 1, run.err
    assert run.json()["subtype"] == "error_budget"
    assert len(by_subagent) >= 3
    assert sum(billed) <= limit


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf"])
def test_a_bad_max_budget_is_refused_naming_the_flag(git_repo: Path, value: str) -> None:
    for mode in (["-p"], ["--bg"]):
        run = covey(*mode, "go", "--max-budget-usd", value, *MODEL, cwd=git_repo)
        assert run.code == 2, (mode, value, run.err)
        assert "--max-budget-usd" in run.err
        assert run.err.strip().count("\n") == 0


@pytest.mark.parametrize(
    ("budget", "field"),
    [
        ({"sessionUsd": "5"}, "budget.sessionUsd"),
        ({"dailyUsd": -2}, "budget.dailyUsd"),
        ({"dailyUsd": 0}, "budget.dailyUsd"),
    ],
)
def test_bad_budget_settings_are_one_line_naming_the_field(
    git_repo: Path, budget: dict[str, Any], field: str
) -> None:
    _settings(git_repo, {"budget": budget})
    run = covey("-p", "go", *MODEL, cwd=git_repo, env={"ANTHROPIC_API_KEY": "k"})
    assert run.code == 2
    assert field in run.err and run.err.strip().count("\n") == 0
