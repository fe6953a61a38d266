"""A child's own worktree survives its node's loss: the session resumed on another node
carries each child branch's work since its base (`child_worktrees`), the node makes the
child's worktree there at the branch's tip (`restore_children`, from the node's base
repository, a main checkout), and the child's next snapshot goes on from that tip onto its
branch in the user's repository (`SnapshotReceiver`). Real git repositories, no Ray."""

from __future__ import annotations

import subprocess
from pathlib import Path

from covey.executors.ray_worktrees import (
    ChildSnapshot,
    NodeWorktrees,
    SnapshotReceiver,
    child_worktrees,
    restore_children,
)
from covey.executors.replica_records import SnapshotRecord
from covey.git.bundles import pack_workspace, unpack_workspace
from covey.git.repo import git, repo_root
from covey.store import Store
from covey.store.session_meta import SessionMeta
from covey.store.sessions import SessionRow, insert_session

SID = "root0001"
BRANCH = f"worktree-team-{SID}-alice"


def _user_side(repo: Path, store: Store) -> str:
    """The user's repository after alice's first run: her branch one snapshot ahead of the
    base, the rows of the session and of alice; the base."""
    base = git("rev-parse", "HEAD", cwd=repo).strip()
    wt = repo / ".covey" / "worktrees" / f"team-{SID}-alice"
    subprocess.run(["git", "worktree", "add", "-q", "-b", BRANCH, str(wt), base], cwd=repo)
    (wt / "alice.txt").write_text("first\n")
    subprocess.run(["git", "add", "-A"], cwd=wt, check=True)
    subprocess.run(["git", "commit", "-qm", "covey: step"], cwd=wt, check=True)
    with store.write() as conn:
        root = SessionRow.new(
            id=SID, kind="background", cwd=str(repo), model="m", meta=SessionMeta(base=base)
        )
        insert_session(conn, root)
        meta = SessionMeta(worktree=str(wt), branch=BRANCH, repo=str(repo))
        child = SessionRow.new(
            id="alice001", kind="teammate", cwd=str(wt), model="m", parent_id=SID, meta=meta
        )
        insert_session(conn, child)
    return base


def test_a_childs_worktree_is_made_again_on_the_next_node_and_goes_on_from_its_tip(
    git_repo: Path, tmp_path: Path
) -> None:
    with Store.open(tmp_path / "user.db") as user:
        base = _user_side(git_repo, user)
        tip = git("rev-parse", BRANCH, cwd=git_repo).strip()
        (child,) = child_worktrees(user, SID, git_repo)
        assert (child.name, child.branch) == (f"team-{SID}-alice", BRANCH)
        assert (child.progress.parent, child.progress.sha) == (base, tip)

        # the next node: the session's worktree from the base pack, then alice's again
        node = tmp_path / "node2"
        dest = unpack_workspace(
            pack_workspace(git_repo, base), node / "work" / SID, f"worktree-bg-{SID}",
            cache_dir=node / "bases",
        )  # fmt: skip
        base_repo = repo_root(dest)
        assert base_repo is not None and base_repo.parent == node / "bases"
        with Store.open(tmp_path / "node.db") as node_store:
            worktrees = NodeWorktrees(node_store, SID, dest, base)
            restore_children(base_repo, [child], worktrees)
            there = base_repo / ".covey" / "worktrees" / child.name
            assert (there / "alice.txt").read_text() == "first\n"
            assert worktrees.parents == {there: tip}

            # alice works on there; her snapshot goes on from the tip, onto her branch
            (there / "alice.txt").write_text("second\n")
            receiver = SnapshotReceiver(git_repo, f"worktree-bg-{SID}", git_repo, base)
            with node_store.write() as conn:  # alice's row on the node (seeded, moved)
                meta = SessionMeta(worktree=str(there), branch=BRANCH, repo=str(base_repo))
                insert_session(
                    conn, SessionRow.new(id=SID, kind="background", cwd=str(dest), model="m")
                )
                insert_session(conn, SessionRow.new(
                    id="alice001", kind="teammate", cwd=str(there), model="m", parent_id=SID,
                    meta=meta,
                ))  # fmt: skip
            (snap,) = worktrees.snapshot()
    assert isinstance(snap, ChildSnapshot) and (snap.parent, snap.branch) == (tip, BRANCH)
    receiver(SnapshotRecord(1, snap.sha, snap.parent, snap.bundle, snap.branch))
    assert git("show", f"{BRANCH}:alice.txt", cwd=git_repo) == "second\n"
    receiver.finish()  # the user's local worktree of alice follows her branch
    assert (git_repo / ".covey" / "worktrees" / child.name / "alice.txt").read_text() == "second\n"
