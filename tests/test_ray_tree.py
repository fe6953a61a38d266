"""A session's tree on a Ray node: `covey stop TEAMMATE` of a teammate its lead started on
the node, or `covey stop SUBAGENT_ID` of a subagent, reaches that node (the supervisor
forwards the tree's commands) and stops that child only; the lead goes on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bgtools import (
    LONG_SUBAGENT_SCRIPT,
    background,
    child_working,
    stop_commands,
    supervisor,  # noqa: F401  (fixture)
    wait_for_state,
)
from clitools import covey
from covey.executors.ray_loopback import LoopbackCluster
from covey.store import Store
from covey.store.sessions import get_session
from raytools import TEAMS_ON, use_cluster
from teamtools import spawn

SCRIPT = {
    "turns": [
        {"tool_calls": [spawn("alice", "Do the long job.")]},
        {"text": "waiting for alice"},
        {"text": "LEAD-FINAL after alice stopped"},
        {"text": "spare"},
    ],
    "agents": {"alice": {"turns": [{"text": "never reached", "delay_s": 60}]}},
}


def test_covey_stop_of_a_teammate_on_a_node_stops_it_and_the_lead_finishes(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    ray_cluster: LoopbackCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = supervisor
    use_cluster(covey_home, ray_cluster, monkeypatch, settings=TEAMS_ON)
    script = tmp_path / "team.yaml"
    script.write_text(yaml.safe_dump(SCRIPT))
    sid = background(repo, "lead a team", "--model", f"scripted:{script}")
    alice = child_working(sid)
    assert covey("stop", alice, cwd=repo).code == 0
    row = wait_for_state(repo, sid, ("completed", "failed", "stopped", "interrupted"))
    assert row["state"] == "completed", row
    assert row["node"] != "local"
    with Store.open() as store, store.read() as conn:
        teammate = get_session(conn, alice)
        assert teammate is not None and teammate.state == "stopped", teammate
    assert stop_commands(alice) == [("done", {"stopped": True})]


def test_covey_stop_of_a_subagent_on_a_node_stops_it_and_its_parent_finishes(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    ray_cluster: LoopbackCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = supervisor
    use_cluster(covey_home, ray_cluster, monkeypatch)
    script = tmp_path / "sub.yaml"
    script.write_text(yaml.safe_dump(LONG_SUBAGENT_SCRIPT))
    sid = background(repo, "use a helper", "--model", f"scripted:{script}")
    helper = child_working(sid, "subagent")
    assert covey("stop", helper, cwd=repo).code == 0
    row = wait_for_state(repo, sid, ("completed", "failed", "stopped", "interrupted"))
    assert row["state"] == "completed", row
    with Store.open() as store, store.read() as conn:
        child = get_session(conn, helper)
        assert child is not None and (child.state, child.reason) == ("stopped", "stopped by user")
    assert stop_commands(helper) == [("done", {"stopped": True})]
