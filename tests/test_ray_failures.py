"""Failures on the Ray cluster: a node lost mid-session (its raylet killed with SIGKILL) →
the session finishes on another node, the tool call in flight answered as interrupted and
never run again, nothing acknowledged lost, the row's `node` changed. A supervisor killed:
the next one catches up. The cluster gone: sessions interrupted, `covey respawn` runs them
here; `covey cluster status` against a head frozen (SIGSTOP) or killed is one line, exit 2."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from bgtools import (
    background,
    git_out,
    kill_supervisor,
    supervisor,  # noqa: F401  (fixture)
    transcript_entries,
    wait_for_state,
    write_script,
)
from clitools import covey
from covey.executors.ray_loopback import LoopbackCluster, start_loopback_cluster
from raytools import held_until, row_of, use_cluster, wait_until

FINAL = ("completed", "failed", "stopped")
_BYPASS = ("--permission-mode", "bypassPermissions")


def _files(repo: Path, branch: str) -> str:
    """The file names at the tip of `branch` ("" while it does not exist)."""
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", branch], cwd=repo, capture_output=True, text=True
    )
    return listed.stdout


def _alive_nodes(repo: Path) -> set[str]:
    shown = covey("cluster", "status", "--json", cwd=repo)
    assert shown.code == 0, shown.err
    return {n["node"] for n in shown.json()["nodes"] if n["alive"]}


def _frozen_head_is_one_line(
    repo: Path, cluster: LoopbackCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`covey cluster status` while the head's GCS is frozen (SIGSTOP: its port accepts,
    nobody answers; Ray's client would retry for minutes): one line, exit 2, in bounded time."""
    monkeypatch.setenv("COVEY_RAY_TIMEOUT_S", "3")
    gcs = cluster.nodes[0].pid_of("gcs_server")
    assert gcs is not None
    os.kill(gcs, signal.SIGSTOP)
    try:
        started = time.monotonic()
        frozen = covey("cluster", "status", "--json", cwd=repo)
        took = time.monotonic() - started
    finally:
        os.kill(gcs, signal.SIGCONT)
    monkeypatch.delenv("COVEY_RAY_TIMEOUT_S")
    address = cluster.address
    assert frozen.code == 2 and frozen.out == ""
    assert frozen.err.strip() == (
        f"covey: error: background.ray.address: the Ray cluster at {address} accepted the "
        "connection but did not answer within 3 s (its head stopped or overloaded?); check "
        f"it with `ray status --address {address}`, or set COVEY_RAY_TIMEOUT_S to wait longer"
    )
    assert took < 3 + 20  # Python's and Ray's import, then the bound


def test_a_lost_node_s_session_finishes_elsewhere_without_running_its_tool_again(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    ray_cluster: LoopbackCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = supervisor
    use_cluster(covey_home, ray_cluster, monkeypatch, maxSessionsPerNode=1)
    # the two standing nodes are busy until `release`, so the session lands on a third one
    release = tmp_path / "release"
    blocker = write_script(tmp_path / "b.yaml", [held_until(release), {"text": "released"}])
    blockers = [background(repo, "wait", "--model", blocker, *_BYPASS) for _ in range(2)]
    wait_until("both nodes busy", lambda: all(row_of(repo, b)["node"] != "local" for b in blockers))
    busy = {row_of(repo, b)["node"] for b in blockers}
    extra = ray_cluster.add_node(tmp_path / "extra")
    marker = tmp_path / "ran"
    model = write_script(
        tmp_path / "s.yaml",
        [
            {
                "tool_calls": [
                    {"name": "Write", "input": {"file_path": "kept.txt", "content": "k\n"}}
                ]
            },
            {
                "tool_calls": [
                    {"name": "Bash", "input": {"command": f"echo ran >> {marker}; sleep 60"}}
                ]
            },
            {"text": "finished after the move"},
        ],
    )
    sid = background(repo, "work", "--model", model, *_BYPASS)
    wait_until("the tool to run", marker.exists)
    first_node = row_of(repo, sid)["node"]
    assert len(busy) == 2 and first_node not in (*busy, "local")  # on the extra node
    try:
        ray_cluster.kill_raylet(extra.index)
        release.touch()  # the blockers end: room for the session on a standing node
        row = wait_for_state(repo, sid, FINAL)
    finally:
        ray_cluster.stop_node(extra.index)
    # later tests must not be placed on it while Ray still counts it alive
    wait_until("Ray to see the node dead", lambda: first_node not in _alive_nodes(repo))
    assert row["state"] == "completed", row
    assert row["node"] not in (first_node, "local")
    assert marker.read_text() == "ran\n"  # run once, never again
    assert git_out(repo, "show", f"{row['branch']}:kept.txt") == "k\n"  # acknowledged: kept
    results = [
        block
        for entry in transcript_entries(sid)
        if entry.get("role") == "user" and isinstance(entry.get("content"), list)
        for block in entry["content"]
        if block.get("type") == "tool_result"
    ]
    assert len(results) == 2 and "It was not re-run" in str(results[1]["content"])
    blocked = [wait_for_state(repo, b, FINAL)["state"] for b in blockers]
    assert blocked == ["completed", "completed"]


def test_after_a_supervisor_kill_the_next_one_catches_up_with_the_node(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    ray_cluster: LoopbackCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The detached host keeps the session running (it waits at its next tool batch for
    the supervisor); the next supervisor takes the lease at the same epoch and pumps."""
    repo = supervisor
    use_cluster(covey_home, ray_cluster, monkeypatch)
    write = "Write"
    model = write_script(
        tmp_path / "s.yaml",
        [
            {"tool_calls": [{"name": write, "input": {"file_path": "a.txt", "content": "a\n"}}]},
            {
                "tool_calls": [{"name": write, "input": {"file_path": "b.txt", "content": "b\n"}}],
                "delay_s": 4,
            },
            {"text": "both written"},
        ],
    )
    sid = background(repo, "work", "--model", model)
    wait_until("a.txt on the branch", lambda: "a.txt" in _files(repo, f"worktree-bg-{sid}"))
    node = row_of(repo, sid)["node"]
    kill_supervisor(repo)
    time.sleep(5)  # the node went on alone meanwhile
    assert covey("daemon", "start", cwd=repo).code == 0
    row = wait_for_state(repo, sid, FINAL)
    assert row["state"] == "completed", row
    assert row["node"] == node  # caught up, not started again elsewhere
    assert git_out(repo, "show", f"{row['branch']}:b.txt") == "b\n"
    db = sqlite3.connect(covey_home / "covey.db")
    (epoch,) = db.execute("select epoch from sessions where id = ?", (sid,)).fetchone()
    db.close()
    assert epoch == 1


def test_with_the_cluster_gone_sessions_are_interrupted_and_respawn_runs_them_here(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = supervisor
    # a directory an earlier cluster used: its log's "ready" line is not this head's
    (tmp_path / "gone").mkdir()
    (tmp_path / "gone" / "node-0.log").write_text("This command will now block forever\n")
    with start_loopback_cluster(tmp_path / "gone", nodes=1) as cluster:
        use_cluster(covey_home, cluster, monkeypatch)
        marker = tmp_path / "ran"
        bash = {"command": f"echo ran >> {marker}; sleep 60"}
        model = write_script(
            tmp_path / "s.yaml",
            [
                {
                    "tool_calls": [
                        {"name": "Write", "input": {"file_path": "a.txt", "content": "a\n"}}
                    ]
                },
                {"tool_calls": [{"name": "Bash", "input": bash}]},
                {"text": "finished here"},
            ],
        )
        sid = background(repo, "work", "--model", model, *_BYPASS)
        wait_until("the tool to run", marker.exists)
        kill_supervisor(repo)
        _frozen_head_is_one_line(repo, cluster, monkeypatch)
    # the whole cluster is gone (SIGKILL); the next supervisor cannot reach it
    gone = covey("cluster", "status", cwd=repo)
    assert gone.code == 2 and gone.out == "" and len(gone.err.strip().splitlines()) == 1
    assert gone.err.startswith(
        f"covey: error: background.ray.address: no Ray cluster answers at {cluster.address} "
    )
    assert covey("daemon", "start", cwd=repo).code == 0
    wait_until("the reason", lambda: row_of(repo, sid)["reason"])
    row = row_of(repo, sid)
    assert row["state"] == "interrupted" and row["node"] == "local"
    assert f"no Ray cluster answers at {cluster.address}" in str(row["reason"])
    assert f"covey respawn {sid} runs it again" in str(row["reason"])
    assert covey("respawn", sid, cwd=repo).code == 0
    row = wait_for_state(repo, sid, FINAL)
    assert row["state"] == "completed" and row["node"] == "local", row
    assert row["summary"].startswith("finished here")
    assert marker.read_text() == "ran\n"
    assert git_out(repo, "show", f"{row['branch']}:a.txt") == "a\n"
