"""A background session at its budget waits in `needs_input` (`waiting_for: "budget"`); a reply
raising it, or a settings change and `covey respawn`, continues it. Real daemon, fake server."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from bgtools import DEADLINE_S, agents, supervisor, wait_for_state
from clitools import covey
from covey.messages import Usage
from covey.models.pricing import cost_usd
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer

__all__ = ["supervisor"]  # the fixture, used by name

MODEL_ID = "claude-sonnet-4-5"
FINISHED = ("completed", "failed", "stopped")
USAGE = {"input": 30_000, "output": 500}
"""$0.0975 a request: a $1 budget stops after ten (see test_budget)."""


def _script(turns: int) -> Script:
    glob = {"tool_calls": [{"name": "Glob", "input": {"pattern": "*"}}], "usage": USAGE}
    return Script.model_validate(
        {"turns": [glob] * (turns - 1) + [{"text": "Done.", "usage": USAGE}]}
    )


def _env(server: FakeServer) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": server.url}


def _dispatch(repo: Path, server: FakeServer, *flags: str) -> str:
    run = covey(
        "--bg", "list the files", "--model", f"anthropic:{MODEL_ID}", *flags,
        cwd=repo, env=_env(server),
    )  # fmt: skip
    assert run.code == 0, run.err
    return run.out.split(" · ")[1]


def _billed(server: FakeServer) -> float:
    return sum(cost_usd(MODEL_ID, Usage(**r["usage"])) for r in server.requests if "usage" in r)


def _meta(sid: str) -> dict[str, Any]:
    db = sqlite3.connect(os.environ["COVEY_HOME"] + "/covey.db")
    [(meta,)] = db.execute("select meta from sessions where id = ?", (sid,)).fetchall()
    db.close()
    return json.loads(meta)  # type: ignore[no-any-return]


def _waits_for_budget(repo: Path, sid: str) -> dict[str, Any]:
    row = wait_for_state(repo, sid, ("needs_input", *FINISHED))
    assert row["state"] == "needs_input", row
    assert row["waiting_for"] == "budget"
    assert "session budget of $1.00 reached" in row["question"]
    assert f'covey reply {sid} "raise to' in row["question"]
    return row


def _wait_for_update(repo: Path, sid: str, updated: float) -> None:
    """Until the session's row changed after `updated` and the session waits again."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        row = next(r for r in agents(repo) if r["id"] == sid)
        if row["updated"] > updated and row["state"] != "working":
            return
        time.sleep(0.1)
    raise AssertionError(f"session {sid} was not continued")


def test_a_reply_raising_the_budget_continues_a_background_session(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    with FakeServer(_script(14)) as server:
        sid = _dispatch(repo, server, "--max-budget-usd", "1")
        _waits_for_budget(repo, sid)
        assert len(server.requests) == 10
        assert _billed(server) <= 1.0
        replied = covey("reply", sid, "raise to 5", cwd=repo)
        assert replied.code == 0, replied.err
        row = wait_for_state(repo, sid, FINISHED)
        assert row["state"] == "completed", row
        assert len(server.requests) == 14
    assert _meta(sid)["budget_raises"] == {"session": 5.0}


def test_a_settings_change_and_respawn_continue_a_background_session(
    supervisor: Path, covey_home: Path
) -> None:
    repo = supervisor
    settings = covey_home / "settings.json"  # the user's: a background worktree reads them
    settings.write_text(json.dumps({"budget": {"sessionUsd": 1}}))
    with FakeServer(_script(12)) as server:
        sid = _dispatch(repo, server)
        before = _waits_for_budget(repo, sid)
        assert len(server.requests) == 10
        respawned = covey("respawn", sid, cwd=repo)  # still $1: it stops again, sending nothing
        assert respawned.code == 0, respawned.err
        _wait_for_update(repo, sid, before["updated"])
        _waits_for_budget(repo, sid)
        assert len(server.requests) == 10
        settings.write_text(json.dumps({"budget": {"sessionUsd": 3}}))
        assert covey("respawn", sid, cwd=repo).code == 0
        row = wait_for_state(repo, sid, FINISHED)
        assert row["state"] == "completed", row
        assert len(server.requests) == 12
