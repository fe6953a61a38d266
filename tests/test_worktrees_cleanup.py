"""Never losing work: snapshots, removal, prune, list and restore, in real repositories."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from covey.errors import UserError
from covey.git.snapshots import list_snapshots, take_snapshot
from covey.git.worktrees import (
    Worktree,
    list_worktrees,
    lock_worktree,
    open_worktree,
    prune_worktrees,
    remove_worktree,
    restore_worktree,
)
from test_worktrees_support import commit, git, settings

HEAD = settings(baseRef="head")


def _dirty(wt: Worktree) -> None:
    """Every kind of change: modified, staged, deleted, untracked, ignored."""
    (wt.path / "README.md").write_text("edited\n")
    (wt.path / "staged.txt").write_text("staged\n")
    git(wt.path, "add", "staged.txt")
    (wt.path / "gone.txt").unlink()
    (wt.path / "notes" / "new.txt").parent.mkdir()
    (wt.path / "notes" / "new.txt").write_text("untracked\n")
    (wt.path / "debug.log").write_text("ignored\n")


@pytest.fixture
def repo(git_repo: Path) -> Path:
    commit(git_repo, {".gitignore": "*.log\n.covey/worktrees/\n", "gone.txt": "bye\n"})
    return git_repo


def test_snapshot_touches_neither_branch_nor_index_nor_files(repo: Path) -> None:
    wt = open_worktree(repo, "snap", HEAD)
    _dirty(wt)
    tip = git(wt.path, "rev-parse", "HEAD")
    status = git(wt.path, "status", "--porcelain")
    staged = git(wt.path, "diff", "--cached", "--name-only")
    snap = take_snapshot(repo, wt.path, "snap", exclude=[])
    assert snap.ref == "refs/covey/snapshots/snap/1" and snap.head == tip
    assert git(wt.path, "rev-parse", "HEAD") == tip
    assert git(wt.path, "status", "--porcelain") == status
    assert git(wt.path, "diff", "--cached", "--name-only") == staged == "staged.txt"
    assert git(repo, "rev-parse", f"{snap.ref}^") == tip
    files = set(git(repo, "ls-tree", "-r", "--name-only", snap.ref).split())
    assert {"README.md", "staged.txt", "notes/new.txt"} <= files
    assert "gone.txt" not in files and "debug.log" not in files
    assert git(repo, "show", f"{snap.ref}:README.md") == "edited"
    assert take_snapshot(repo, wt.path, "snap").number == 2
    assert [s.number for s in list_snapshots(repo, "snap")] == [1, 2]


def test_removing_a_dirty_worktree_keeps_its_work(repo: Path) -> None:
    wt = open_worktree(repo, "dirty", HEAD)
    _dirty(wt)
    report = remove_worktree(repo, "dirty")
    assert report.dirty and report.branch_deleted and report.unmerged == 0
    assert report.snapshot == "refs/covey/snapshots/dirty/1"
    assert not wt.path.exists()
    assert "worktree-dirty" not in git(repo, "branch", "--list")
    assert git(repo, "show", f"{report.snapshot}:notes/new.txt") == "untracked"


def test_an_unmerged_branch_needs_force_and_stays_reachable(repo: Path) -> None:
    wt = open_worktree(repo, "feat", HEAD)
    work = commit(wt.path, {"feature.txt": "f"}, "add the feature")
    with pytest.raises(UserError) as info:
        remove_worktree(repo, "feat")
    said = str(info.value)
    assert "branch worktree-feat of worktree feat has 1 commit(s) not merged anywhere" in said
    assert "add the feature" in said and "--force" in said
    assert wt.path.is_dir() and list_snapshots(repo, "feat") == []
    report = remove_worktree(repo, "feat", force=True)
    assert report.unmerged == 1 and report.branch_deleted and not wt.path.exists()
    git(repo, "merge-base", "--is-ancestor", work, report.snapshot)  # still reachable


def test_a_merged_branch_goes_without_force(repo: Path) -> None:
    wt = open_worktree(repo, "done", HEAD)
    commit(wt.path, {"done.txt": "d"}, "finish")
    git(repo, "merge", "-q", "--ff-only", "worktree-done")
    report = remove_worktree(repo, "done")
    assert report.branch_deleted and report.unmerged == 0 and not report.dirty


def test_unknown_and_missing_worktrees(repo: Path) -> None:
    with pytest.raises(UserError, match="no worktree named 'nope'"):
        remove_worktree(repo, "nope")
    wt = open_worktree(repo, "lost", HEAD)
    tip = commit(wt.path, {"lost.txt": "l"}, "lost work")
    shutil.rmtree(wt.path)  # deleted by hand: the registration and the branch remain
    [info] = list_worktrees(repo)
    assert (info.name, info.state) == ("lost", "missing")
    report = remove_worktree(repo, "lost", force=True)
    assert git(repo, "rev-parse", f"{report.snapshot}^") == tip
    assert "lost" not in git(repo, "worktree", "list")


def test_list_reports_state(repo: Path) -> None:
    a = open_worktree(repo, "a", HEAD)
    b = open_worktree(repo, "b", HEAD)
    commit(b.path, {"b1.txt": "1"})
    commit(b.path, {"b2.txt": "2"})
    (a.path / "wip.txt").write_text("wip")
    lock_worktree(b, "covey session s9")
    orphan = repo / ".covey" / "worktrees" / "orphan"
    orphan.mkdir()
    (orphan / "junk.bin").write_bytes(b"x" * 10000)
    take_snapshot(repo, a.path, "a")
    infos = {i.name: i for i in list_worktrees(repo)}
    assert set(infos) == {"a", "b", "orphan"}
    assert (infos["a"].dirty, infos["a"].ahead, infos["a"].snapshots) == (True, 0, 1)
    assert (infos["b"].dirty, infos["b"].ahead, infos["b"].locked_by) == (
        False,
        2,
        "covey session s9",
    )
    assert infos["a"].branch == "worktree-a" and infos["a"].base == git(repo, "rev-parse", "HEAD")
    assert infos["a"].size_bytes > 0 and infos["a"].state == "ok"
    assert infos["orphan"].state == "orphaned" and infos["orphan"].size_bytes >= 10000


def test_prune_removes_only_clean_merged_unlocked(repo: Path) -> None:
    clean = open_worktree(repo, "clean", HEAD)
    dirty = open_worktree(repo, "dirty", HEAD)
    (dirty.path / "wip.txt").write_text("wip")
    ahead = open_worktree(repo, "ahead", HEAD)
    commit(ahead.path, {"x.txt": "x"})
    locked = open_worktree(repo, "locked", HEAD)
    lock_worktree(locked, "covey session s1")
    report = prune_worktrees(repo)
    assert [r.name for r in report.removed] == ["clean"] and not clean.path.exists()
    assert dict(report.kept) == {
        "ahead": "1 commit(s) not merged anywhere",
        "dirty": "uncommitted changes",
        "locked": "locked by covey session s1",
    }
    assert dirty.path.is_dir() and ahead.path.is_dir() and locked.path.is_dir()


def test_snapshot_then_restore_a_dirty_tree(repo: Path) -> None:
    wt = open_worktree(repo, "back", HEAD)
    work = commit(wt.path, {"feature.txt": "committed\n"}, "committed work")
    _dirty(wt)
    report = remove_worktree(repo, "back", force=True)
    assert not wt.path.exists()
    restored = restore_worktree(repo, "back", HEAD)
    assert restored.snapshot == report.snapshot and restored.conflicts == []
    path = restored.worktree.path
    assert path == wt.path and restored.worktree.branch == "worktree-back"
    assert git(path, "rev-parse", "HEAD") == work
    assert (path / "README.md").read_text() == "edited\n"
    assert (path / "notes" / "new.txt").read_text() == "untracked\n"
    assert (path / "staged.txt").read_text() == "staged\n"
    assert not (path / "gone.txt").exists() and not (path / "debug.log").exists()
    assert git(path, "diff", "--cached", "--name-only") == ""  # back as uncommitted work
    status = subprocess.run(["git", "status", "--porcelain"], cwd=path, capture_output=True)
    assert set(status.stdout.decode().splitlines()) == {
        " M README.md",
        " D gone.txt",
        "?? notes/",
        "?? staged.txt",
    }


def test_restore_onto_a_branch_that_moved(repo: Path) -> None:
    wt = open_worktree(repo, "moved", HEAD)
    (wt.path / "README.md").write_text("mine\n")
    (wt.path / "extra.txt").write_text("extra\n")
    remove_worktree(repo, "moved")
    git(repo, "branch", "worktree-moved")
    git(repo, "checkout", "-q", "worktree-moved")
    commit(repo, {"README.md": "theirs\n"}, "conflicting")
    git(repo, "checkout", "-q", "main")
    restored = restore_worktree(repo, "moved", HEAD)
    assert restored.conflicts == ["README.md"]
    assert "<<<<<<<" in (restored.worktree.path / "README.md").read_text()
    assert (restored.worktree.path / "extra.txt").read_text() == "extra\n"


def test_restore_refusals(repo: Path) -> None:
    with pytest.raises(UserError, match="nothing to restore for ghost"):
        restore_worktree(repo, "ghost", HEAD)
    open_worktree(repo, "here", HEAD)
    with pytest.raises(UserError, match=r"exists at .*; open it with: covey -w here"):
        restore_worktree(repo, "here", HEAD)


def test_another_branch_checked_out_there_is_left_alone(repo: Path) -> None:
    wt = open_worktree(repo, "side", HEAD)
    git(wt.path, "switch", "-q", "-c", "side-work")
    commit(wt.path, {"side.txt": "s"}, "side work")
    report = remove_worktree(repo, "side")  # side-work still holds the commit: no force needed
    assert report.branch == "side-work" and not report.branch_deleted
    assert "side-work" in git(repo, "branch", "--list") and not wt.path.exists()
