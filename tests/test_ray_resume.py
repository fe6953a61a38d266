"""A session continued on the Ray cluster (a reply after its turn, a resume after a lost
node) ships only its progress since its base (`bundles.pack_progress`) with the base's pack,
so the supervisor's bundle cache keeps the base alone and the node reuses its base
repository."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bgtools import (
    DEADLINE_S,
    background,
    git_out,
    supervisor,  # noqa: F401  (fixture)
    wait_for_state,
    write_script,
)
from clitools import covey
from covey.executors.ray_loopback import LoopbackCluster
from raytools import use_cluster

FINAL = ("completed", "failed", "stopped", "interrupted")


def _write(name: str) -> dict[str, object]:
    return {"tool_calls": [{"name": "Write", "input": {"file_path": name, "content": "x\n"}}]}


def test_a_reply_on_the_cluster_ships_the_progress_not_a_bundle_of_the_tip(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    ray_cluster: LoopbackCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = supervisor
    use_cluster(covey_home, ray_cluster, monkeypatch)
    base = git_out(repo, "rev-parse", "HEAD").strip()
    script = [_write("a.txt"), {"text": "first"}, _write("b.txt"), {"text": "second"}]
    sid = background(repo, "write", "--model", write_script(tmp_path / "s.yaml", script))
    row = wait_for_state(repo, sid, FINAL)
    assert row["state"] == "completed", row
    first_tip = git_out(repo, "rev-parse", row["branch"]).strip()
    assert first_tip != base
    assert covey("reply", sid, "go on", cwd=repo).code == 0
    deadline = time.monotonic() + DEADLINE_S
    while "b.txt" not in _files(repo, row["branch"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    row = wait_for_state(repo, sid, FINAL)
    assert row["state"] == "completed", row
    assert row["node"] != "local"
    assert {"a.txt", "b.txt"} <= _files(repo, row["branch"])
    assert git_out(repo, "merge-base", "--is-ancestor", first_tip, row["branch"]) == ""
    cached = repo / ".git" / "covey" / "bundles"
    assert sorted(p.name for p in cached.glob("*.bundle")) == [f"{base}.bundle"]


def _files(repo: Path, branch: str) -> set[str]:
    return set(git_out(repo, "ls-tree", "--name-only", branch).split())
