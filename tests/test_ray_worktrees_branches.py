"""A node's snapshot may move only the session's branch or a child worktree's
(`worktree-NAME`): one naming another branch (`main`, a path) is refused and moves
nothing, whatever the node sends."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from covey.errors import UserError
from covey.executors.ray_worktrees import SnapshotReceiver
from covey.executors.replica_records import SnapshotRecord


def _tip(repo: Path, ref: str) -> str:
    out = subprocess.run(["git", "rev-parse", ref], cwd=repo, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.mark.parametrize("branch", ["main", "refs/heads/main", "worktree-../evil", "worktree-"])
def test_a_snapshot_naming_a_branch_not_a_worktrees_is_refused(git_repo: Path, branch: str) -> None:
    head = _tip(git_repo, "HEAD")
    refs = subprocess.run(["git", "show-ref"], cwd=git_repo, capture_output=True, text=True)
    receiver = SnapshotReceiver(git_repo, "worktree-bg-x", git_repo / "wt", None)
    record = SnapshotRecord(id=1, sha="1" * 40, parent=head, bundle=b"", branch=branch)
    with pytest.raises(UserError):
        receiver(record)
    after = subprocess.run(["git", "show-ref"], cwd=git_repo, capture_output=True, text=True)
    assert after.stdout == refs.stdout
