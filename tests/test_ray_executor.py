"""Background sessions on a real 2-node Ray cluster on loopback (`raytools.ray_cluster`):
they spread over both nodes, each row names its node, and the work comes back as the
session's branch in the user's repository, the local worktree moved to it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bgtools import (
    background,
    git_out,
    supervisor,  # noqa: F401  (fixture)
    wait_for_state,
    write_script,
)
from clitools import covey
from covey.executors.ray_loopback import LoopbackCluster
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer
from raytools import held_until, row_of, use_cluster, wait_until


def _writer(path: Path, name: str, release: Path) -> str:
    """Writes `name`, then holds its node until `release` exists."""
    return write_script(
        path,
        [
            {"tool_calls": [{"name": "Write", "input": {"file_path": name, "content": "hi\n"}}]},
            held_until(release),
            {"text": f"Wrote {name}."},
        ],
    )


def test_sessions_spread_over_both_nodes_and_come_back_as_branches(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    ray_cluster: LoopbackCluster,
    tmp_path: Path,
) -> None:
    repo = supervisor
    use_cluster(covey_home, ray_cluster, maxSessionsPerNode=1)
    os.environ.update(ray_cluster.env)  # the shell that runs covey has the cluster's token
    release = tmp_path / "release"
    try:
        sids = [
            background(
                repo,
                f"write {name}",
                "--model",
                _writer(tmp_path / f"{name}.yaml", name, release),
                "--permission-mode",
                "bypassPermissions",
            )
            for name in ("a.txt", "b.txt")
        ]
        # both run at once (a session done before the next is placed frees its node)
        wait_until("both placed", lambda: all(row_of(repo, s)["node"] != "local" for s in sids))
        release.touch()
        rows = [wait_for_state(repo, sid, ("completed", "failed", "stopped")) for sid in sids]
        shown = covey("cluster", "status", "--json", cwd=repo)
        text = covey("cluster", "status", cwd=repo)
    finally:
        for key in ray_cluster.env:
            os.environ.pop(key, None)
    for row, name in zip(rows, ("a.txt", "b.txt"), strict=True):
        assert row["state"] == "completed", row
        assert row["branch"] == f"worktree-bg-{row['id']}"
        assert git_out(repo, "show", f"{row['branch']}:{name}") == "hi\n"
        assert (Path(row["worktree"]) / name).read_text() == "hi\n"
        assert not (repo / name).exists()
    assert {r["node"] for r in rows} != {"local"}
    assert len({r["node"] for r in rows}) == 2  # one session per node at most: both used
    assert shown.code == 0, shown.err
    status = shown.json()
    assert status["address"] == ray_cluster.address
    nodes = {n["node"]: n for n in status["nodes"] if n["alive"]}
    assert {r["node"] for r in rows} <= set(nodes)
    for row in rows:  # each node used has its host actor, its memory shown
        host = nodes[row["node"]]["host"]
        assert host["node"] == row["node"] and host["pid"] > 0 and host["rss"] > 10 * 2**20
        assert host["sessions"] == []  # both finished
    assert text.code == 0 and text.out.startswith(f"cluster {ray_cluster.address} · ")
    assert "host pid" in text.out


def test_cluster_status_without_the_ray_executor_is_one_line_exit_2(git_repo: Path) -> None:
    run = covey("cluster", "status", cwd=git_repo)
    assert run.code == 2
    assert run.err.strip() == (
        'covey: error: background.executor is "local": there is no cluster to show; set it '
        'to "ray" and background.ray.address in $COVEY_HOME/settings.json'
    )


def test_credentials_reach_the_node_in_its_environment_and_nowhere_else(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    ray_cluster: LoopbackCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = supervisor
    key = "sk-ray-test-" + "7" * 24
    use_cluster(covey_home, ray_cluster, monkeypatch)
    script = Script.model_validate({"turns": [{"text": "hello from the node"}]})
    with FakeServer(script, require_key=key) as srv:  # 401 without this very key
        monkeypatch.setenv("ANTHROPIC_API_KEY", key)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
        sid = background(repo, "hi", "--model", "anthropic:claude-sonnet-4-5")
        row = wait_for_state(repo, sid, ("completed", "failed", "stopped"))
    assert row["state"] == "completed", row
    assert row["node"] != "local" and row["summary"].startswith("hello from the node")
    stored = [covey_home / "covey.db", *ray_cluster.temp_dir.glob("covey-nodes/*/*/node.db*")]
    assert len(stored) > 1
    for path in stored:
        assert key.encode() not in path.read_bytes(), path


def test_stop_reaches_the_node_and_the_session_ends_stopped(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    ray_cluster: LoopbackCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = supervisor
    use_cluster(covey_home, ray_cluster, monkeypatch)
    model = write_script(tmp_path / "slow.yaml", [{"text": "too late", "delay_s": 60}])
    sid = background(repo, "wait", "--model", model)
    row = wait_for_state(repo, sid, ("working",))
    assert row["node"] != "local"
    assert covey("stop", sid, cwd=repo).code == 0
    row = wait_for_state(repo, sid, ("completed", "failed", "stopped"))
    assert row["state"] == "stopped", row
