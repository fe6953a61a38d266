"""A session on a Ray node asks, as a local background session does: a permission prompt or
AskUserQuestion shows `needs_input` with its question on the user's machine (`covey agents`),
`covey reply` reaches the node and the session goes on there. The answer is not lost when the
supervisor is killed while the session waits (the next one catches up and forwards the
reply), nor when the node is lost (the session waits at home; the reply continues it on
another node, the allowed call run once)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bgtools import (
    DEADLINE_S,
    agents,
    background,
    git_out,
    kill_supervisor,
    supervisor,  # noqa: F401  (fixture)
    transcript_entries,
    wait_for_state,
    write_script,
)
from clitools import covey
from covey.executors.ray_loopback import LoopbackCluster
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer
from raytools import use_cluster

FINISHED = ("completed", "failed", "stopped")


def _row(repo: Path, sid: str) -> dict[str, Any]:
    return next(r for r in agents(repo) if r["id"] == sid)


def _wait(what: str, check: Any) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _alive_nodes(repo: Path) -> set[str]:
    shown = covey("cluster", "status", "--json", cwd=repo)
    assert shown.code == 0, shown.err
    return {n["node"] for n in shown.json()["nodes"] if n["alive"]}


def _bash(marker: Path) -> dict[str, Any]:
    return {"tool_calls": [{"name": "Bash", "input": {"command": f"echo ran >> {marker}"}}]}


def _results(sid: str) -> list[str]:
    return [
        str(block.get("content"))
        for entry in transcript_entries(sid)
        if entry.get("role") == "user" and isinstance(entry.get("content"), list)
        for block in entry["content"]
        if block.get("type") == "tool_result"
    ]


def _asks(repo: Path, sid: str, waiting_for: str) -> dict[str, Any]:
    row = wait_for_state(repo, sid, ("needs_input", *FINISHED))
    assert row["state"] == "needs_input" and row["waiting_for"] == waiting_for, row
    assert row["node"] != "local"
    return row


def test_a_permission_prompt_on_a_node_is_answered_by_covey_reply_always(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    ray_cluster: LoopbackCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = supervisor
    use_cluster(covey_home, ray_cluster, monkeypatch)
    marker = tmp_path / "ran"
    turns = [_bash(marker), _bash(marker), {"text": "Ran it twice."}]
    sid = background(
        repo, "run it", "--model", write_script(tmp_path / "s.yaml", turns),
        "--permission-mode", "default",
    )  # fmt: skip
    row = _asks(repo, sid, "permission prompt")
    assert f"Bash(echo ran >> {marker}" in row["question"]
    assert not marker.exists()
    replied = covey("reply", sid, "always", cwd=repo)  # the same call later runs unasked
    assert replied.code == 0 and replied.out.strip() == f"replied · {sid}", replied.err
    row = wait_for_state(repo, sid, FINISHED)
    assert row["state"] == "completed" and row["waiting_for"] is None, row
    assert row["node"] != "local"
    assert marker.read_text() == "ran\nran\n"


def test_a_question_on_a_node_gets_the_reply_and_its_work_comes_back(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    ray_cluster: LoopbackCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = supervisor
    use_cluster(covey_home, ray_cluster, monkeypatch)
    ask = {"name": "AskUserQuestion", "input": {"question": "Which colour?"}}
    ask["input"]["options"] = ["red", "blue"]
    write = {"name": "Write", "input": {"file_path": "colour.txt", "content": "blue\n"}}
    turns = [{"tool_calls": [ask]}, {"tool_calls": [write]}, {"text": "Painted."}]
    sid = background(repo, "paint it", "--model", write_script(tmp_path / "s.yaml", turns))
    row = _asks(repo, sid, "input needed")
    assert row["question"] == "Which colour?"
    assert covey("reply", sid, "blue please", cwd=repo).code == 0
    row = wait_for_state(repo, sid, FINISHED)
    assert row["state"] == "completed", row
    assert "The user answered: blue please" in _results(sid)
    assert git_out(repo, "show", f"{row['branch']}:colour.txt") == "blue\n"


def test_a_reply_raising_the_budget_continues_a_node_session_with_the_raise(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    ray_cluster: LoopbackCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """$0.0975 a request: a $1 budget stops the session on its node after ten; "raise to 5"
    is stored with the session before it goes to a node again, so it holds there."""
    repo = supervisor
    use_cluster(covey_home, ray_cluster, monkeypatch)
    usage = {"input": 30_000, "output": 500}
    glob = {"tool_calls": [{"name": "Glob", "input": {"pattern": "*"}}], "usage": usage}
    script = Script.model_validate({"turns": [glob] * 13 + [{"text": "Done.", "usage": usage}]})
    with FakeServer(script) as server:
        env = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": server.url}
        model = "anthropic:claude-sonnet-4-5"
        run = covey(
            "--bg", "list the files", "--model", model, "--max-budget-usd", "1",
            cwd=repo, env=env,
        )  # fmt: skip
        assert run.code == 0, run.err
        sid = run.out.split(" · ")[1]
        row = _asks(repo, sid, "budget")
        assert "session budget of $1.00 reached" in row["question"]
        assert len(server.requests) == 10
        assert covey("reply", sid, "raise to 5", cwd=repo).code == 0
        row = wait_for_state(repo, sid, FINISHED)
        assert row["state"] == "completed", row
        assert len(server.requests) == 14
    assert row["node"] != "local"


def test_a_reply_after_a_supervisor_kill_reaches_the_node_that_waits(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    ray_cluster: LoopbackCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The node keeps the session waiting; the next supervisor (started by `covey reply`)
    catches up with it at the same epoch and forwards the reply."""
    repo = supervisor
    use_cluster(covey_home, ray_cluster, monkeypatch)
    marker = tmp_path / "ran"
    model = write_script(tmp_path / "s.yaml", [_bash(marker), {"text": "Ran it."}])
    sid = background(repo, "run it", "--model", model, "--permission-mode", "default")
    node = _asks(repo, sid, "permission prompt")["node"]
    kill_supervisor(repo)
    assert covey("reply", sid, "yes", cwd=repo).code == 0
    row = wait_for_state(repo, sid, FINISHED)
    assert row["state"] == "completed", row
    assert row["node"] == node  # caught up there, not started again elsewhere
    assert marker.read_text() == "ran\n"


@pytest.mark.timeout(300)  # the blockers, a third node, Ray noticing its loss: ~2 min
def test_a_node_lost_while_its_session_waits_keeps_the_question_and_the_reply_goes_on(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    ray_cluster: LoopbackCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = supervisor
    use_cluster(covey_home, ray_cluster, monkeypatch, maxSessionsPerNode=1)
    # the two standing nodes are busy long enough (adding a node takes ~20 s under load),
    # so the session lands on a third one
    blocker = write_script(tmp_path / "b.yaml", [{"text": "blocked", "delay_s": 45}])
    blockers = [background(repo, "wait", "--model", blocker) for _ in range(2)]
    _wait("both nodes busy", lambda: all(_row(repo, b)["node"] != "local" for b in blockers))
    standing = _alive_nodes(repo)
    extra = ray_cluster.add_node(tmp_path / "extra")
    marker = tmp_path / "ran"
    turns = [_bash(marker), _bash(marker), {"text": "Ran it elsewhere."}]
    model = write_script(tmp_path / "s.yaml", turns)
    sid = background(repo, "run it", "--model", model, "--permission-mode", "default")
    try:
        first = _asks(repo, sid, "permission prompt")
        assert first["node"] not in standing, "placed on a standing node: the blockers ended"
        ray_cluster.kill_raylet(extra.index)
        _wait("the session waiting on no node", lambda: _row(repo, sid)["node"] == "local")
    finally:
        ray_cluster.stop_node(extra.index)
    # later tests (and the reply) must not be placed on it while Ray still counts it alive
    _wait("Ray to see the node dead", lambda: first["node"] not in _alive_nodes(repo))
    row = _row(repo, sid)
    assert row["state"] == "needs_input" and row["question"] == first["question"], row
    assert covey("reply", sid, "yes", cwd=repo).code == 0
    row = wait_for_state(repo, sid, FINISHED)
    assert row["state"] == "completed", row
    assert row["node"] not in (first["node"], "local")
    assert marker.read_text() == "ran\n"  # allowed once, run once, never asked again
    for b in blockers:
        assert wait_for_state(repo, b, FINISHED)["state"] == "completed"
