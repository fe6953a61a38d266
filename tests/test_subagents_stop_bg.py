"""`covey stop SUBAGENT_ID` of a subagent of a background session: the supervisor stops that
subagent only (its parent's Agent call returns an error and the parent goes on); the
supervisor and its other sessions are not touched (the stop used to be a SIGINT to the
subagent's host process, which for a background session is the supervisor itself)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from bgtools import (  # noqa: F401  (fixture)
    LONG_SUBAGENT_SCRIPT,
    background,
    child_working,
    daemon_status,
    stop_commands,
    supervisor,
    wait_for_state,
)
from clitools import covey
from covey.store import Store
from covey.store.sessions import get_session

FINISHED = ("completed", "failed", "stopped", "interrupted")


def test_covey_stop_of_a_background_sessions_subagent_stops_it_alone(
    supervisor: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = supervisor
    script = tmp_path / "sub.yaml"
    script.write_text(yaml.safe_dump(LONG_SUBAGENT_SCRIPT))
    bystander_script = tmp_path / "slow.yaml"
    bystander_script.write_text(json.dumps({"turns": [{"delay_s": 3, "text": "done"}]}))
    sid = background(repo, "use a helper", "--model", f"scripted:{script}")
    helper = child_working(sid, "subagent")
    bystander = background(repo, "a slow job", "--model", f"scripted:{bystander_script}")
    wait_for_state(repo, bystander, ("working",))
    pid = daemon_status(repo)["pid"]
    assert covey("stop", helper, cwd=repo).code == 0
    row = wait_for_state(repo, sid, FINISHED)
    assert row["state"] == "completed", row
    assert wait_for_state(repo, bystander, FINISHED)["state"] == "completed"
    assert daemon_status(repo)["pid"] == pid  # the supervisor was not stopped
    with Store.open() as store, store.read() as conn:
        child = get_session(conn, helper)
        assert child is not None and (child.state, child.reason) == ("stopped", "stopped by user")
    assert stop_commands(helper) == [("done", {"stopped": True})]
