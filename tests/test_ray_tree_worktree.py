"""A child's own worktree (`isolation: worktree`) of a session on a Ray node: a teammate's and
a subagent's work comes back to the user's repository as their branches (the names a local
run gives them), with their local worktrees, so `covey diff` and `covey merge` work."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from bgtools import (
    background,
    supervisor,  # noqa: F401  (fixture)
    wait_for_state,
)
from clitools import covey
from covey.executors.ray_loopback import LoopbackCluster
from covey.git.repo import git
from covey.store import Store
from covey.store.sessions import list_sessions
from raytools import TEAMS_ON, use_cluster
from teamtools import spawn


def _write(path: str, content: str) -> dict[str, object]:
    return {"tool_calls": [{"name": "Write", "input": {"file_path": path, "content": content}}]}


SCRIPT = {
    "turns": [
        {
            "tool_calls": [
                spawn("alice", "Write your file.", isolation="worktree"),
                {
                    "name": "Agent",
                    "input": {
                        "description": "helper",
                        "prompt": "Write the helper's file.",
                        "subagent_type": "general-purpose",
                        "isolation": "worktree",
                    },
                },
            ]
        },
        {"text": "waiting for alice"},
        {"text": "LEAD-FINAL"},
        {"text": "spare"},
        {"text": "spare"},
    ],
    "agents": {
        "alice": {"turns": [_write("alice.txt", "from alice\n"), {"text": "ALICE done"}]},
        "general-purpose": {
            "turns": [_write("helper.txt", "from the helper\n"), {"text": "helper done"}]
        },
    },
}


def _wait_for_file(path: Path, content: str) -> None:
    deadline = time.monotonic() + 30
    while not (path.is_file() and path.read_text() == content):
        assert time.monotonic() < deadline, f"{path} never held {content!r}"
        time.sleep(0.1)


def test_childrens_own_worktrees_come_back_as_their_branches(
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
    row = wait_for_state(repo, sid, ("completed", "failed", "stopped", "interrupted"))
    assert row["state"] == "completed", row
    assert row["node"] != "local"
    with Store.open() as store, store.read() as conn:
        children = {r.kind: r for r in list_sessions(conn) if r.parent_id == sid}
    for kind, file, content in (
        ("teammate", "alice.txt", "from alice\n"),
        ("subagent", "helper.txt", "from the helper\n"),
    ):
        child = children[kind]
        branch, worktree = child.meta.branch, child.meta.worktree
        assert branch is not None and worktree is not None, child
        name = branch.removeprefix("worktree-")
        assert Path(worktree) == repo / ".covey" / "worktrees" / name
        assert git("show", f"{branch}:{file}", cwd=repo) == content
        _wait_for_file(Path(worktree) / file, content)  # checked out as the run ends
        shown = covey("diff", name, cwd=repo)
        assert shown.code == 0 and file in shown.out, shown.err
    assert children["teammate"].meta.branch == f"worktree-team-{sid}-alice"
    merged = covey("merge", f"team-{sid}-alice", cwd=repo)
    assert merged.code == 0, merged.err
    assert (repo / "alice.txt").read_text() == "from alice\n"
