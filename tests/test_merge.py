"""covey diff / covey merge: real repositories (with a bare remote), real git, the real CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from clitools import covey
from covey.errors import UserError
from covey.git import merge as merge_module
from covey.git.layout import Meta, write_meta
from covey.git.merge import MergeConflict, merge_worktree, worktree_diff


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


def commit(cwd: Path, path: str, text: str, message: str) -> str:
    (cwd / path).parent.mkdir(parents=True, exist_ok=True)
    (cwd / path).write_text(text)
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "-m", message)
    return git(cwd, "rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A main checkout on `main` with a bare `origin`, `.covey/worktrees/` excluded."""
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@covey.invalid")
    git(root, "config", "user.name", "covey test")
    (root / ".git" / "info" / "exclude").write_text(".covey/worktrees/\n")
    (root / "app.py").write_text("one\ntwo\nthree\n")
    commit(root, "README.md", "sample\n", "init")
    git(root, "remote", "add", "origin", str(remote))
    git(root, "push", "-q", "-u", "origin", "main")
    return root


def add_worktree(repo: Path, name: str, base: str = "origin/main") -> Path:
    path = repo / ".covey" / "worktrees" / name
    git(repo, "worktree", "add", "-q", "-b", f"worktree-{name}", str(path), base)
    return path


def head(cwd: Path, ref: str = "HEAD") -> str:
    return git(cwd, "rev-parse", ref).strip()


def assert_untouched(repo: Path, before: str) -> None:
    assert git(repo, "status", "--porcelain") == ""
    assert not (repo / ".git" / "MERGE_HEAD").exists()
    assert not (repo / ".git" / "rebase-merge").exists()
    assert head(repo) == before


def test_default_merge_fast_forwards_when_main_has_not_moved(repo: Path) -> None:
    wt = add_worktree(repo, "a")
    tip = commit(wt, "feature.py", "x = 1\n", "add feature")
    result = merge_worktree(repo, "a")
    assert (result.outcome, result.into, result.new_head) == ("fast-forward", "main", tip)
    assert head(repo) == tip and (repo / "feature.py").read_text() == "x = 1\n"
    assert git(repo, "status", "--porcelain") == ""


def test_default_merge_makes_a_merge_commit_when_main_moved(repo: Path) -> None:
    wt = add_worktree(repo, "a")
    tip = commit(wt, "feature.py", "x = 1\n", "add feature")
    old = commit(repo, "other.py", "y = 2\n", "meanwhile on main")
    result = merge_worktree(repo, "a")
    assert result.outcome == "merge commit"
    assert git(repo, "log", "-1", "--format=%P").split() == [old, tip]
    assert "Merge worktree a" in git(repo, "log", "-1", "--format=%s")
    assert (repo / "feature.py").exists() and (repo / "other.py").exists()


def test_uncommitted_work_is_committed_to_the_worktree_branch_first(repo: Path) -> None:
    wt = add_worktree(repo, "a")
    (wt / "app.py").write_text("one\nTWO\nthree\n")
    (wt / "new_module.py").write_text("fresh = True\n")  # untracked
    result = merge_worktree(repo, "a")
    assert result.work_commit is not None
    assert head(wt, "worktree-a") == result.work_commit == head(repo)
    assert git(wt, "log", "-1", "--format=%s") == "covey: uncommitted work in worktree a\n"
    assert git(wt, "status", "--porcelain") == ""
    assert (repo / "app.py").read_text() == "one\nTWO\nthree\n"
    assert (repo / "new_module.py").read_text() == "fresh = True\n"


def test_squash_makes_one_commit_summarising_the_branch(repo: Path) -> None:
    wt = add_worktree(repo, "a")
    commit(wt, "a.py", "a\n", "first step")
    branch_tip = commit(wt, "b.py", "b\n", "second step")
    old = commit(repo, "other.py", "y\n", "meanwhile on main")
    result = merge_worktree(repo, "a", "squash")
    assert result.outcome == "squash commit"
    assert git(repo, "log", "-1", "--format=%P").split() == [old]
    message = git(repo, "log", "-1", "--format=%B")
    assert message.startswith("Squash worktree a (branch worktree-a): 2 commit(s)")
    assert "* first step\n* second step" in message
    assert (repo / "a.py").exists() and (repo / "b.py").exists()
    assert head(repo, "worktree-a") == branch_tip  # the branch itself is left alone


def test_rebase_replays_the_branch_onto_main_then_fast_forwards(repo: Path) -> None:
    wt = add_worktree(repo, "a")
    commit(wt, "a.py", "a\n", "first step")
    (wt / "b.py").write_text("b\n")
    git(wt, "add", "b.py")
    git(wt, "commit", "-q", "-m", "second step", "--author", "Ada <ada@covey.invalid>")
    (wt / "c.py").write_text("c\n")  # uncommitted, so committed first
    old = commit(repo, "other.py", "y\n", "meanwhile on main")
    result = merge_worktree(repo, "a", "rebase")
    assert result.outcome == "rebased"
    log = git(repo, "log", "--format=%s|%an", f"{old}..HEAD").splitlines()
    assert log == [
        "covey: uncommitted work in worktree a|covey test",
        "second step|Ada",
        "first step|covey test",
    ]
    assert git(repo, "log", "--merges", "--format=%H") == ""
    assert head(wt) == head(repo) and (wt / "other.py").exists()
    assert git(wt, "status", "--porcelain") == ""


def test_rebase_that_would_conflict_changes_nothing(repo: Path) -> None:
    wt = add_worktree(repo, "a")
    commit(wt, "app.py", "one\nWORKTREE\nthree\n", "change line two")
    tip = commit(wt, "app.py", "one\ntwo\nthree\n", "change it back")
    before = commit(repo, "app.py", "one\nMAIN\nthree\n", "main changes line two")
    with pytest.raises(MergeConflict) as caught:
        merge_worktree(repo, "a", "rebase")
    assert [f.path for f in caught.value.files] == ["app.py"]
    assert "change line two" in str(caught.value)
    assert_untouched(repo, before)
    assert head(wt) == tip and git(wt, "status", "--porcelain") == ""


def test_conflict_changes_nothing_and_names_files_and_worktrees(repo: Path) -> None:
    a = add_worktree(repo, "a")
    b = add_worktree(repo, "b")
    add_worktree(repo, "c")
    (a / "app.py").write_text("one\nfrom a\nthree\n")  # uncommitted
    (b / "app.py").write_text("one\nfrom b\nthree\n")
    before = commit(repo, "app.py", "one\nfrom main\nthree\n", "main edits")
    a_head = head(a)
    run = covey("merge", "a", cwd=repo)
    assert run.code == 1
    assert "would conflict" in run.err and "nothing was changed" in run.err
    assert "app.py  also changed in worktrees: b" in run.err
    assert_untouched(repo, before)
    assert head(a) == a_head and git(a, "status", "--porcelain") == " M app.py\n"


def test_dirty_main_checkout_is_refused_naming_the_files(repo: Path) -> None:
    wt = add_worktree(repo, "a")
    commit(wt, "feature.py", "x\n", "feature")
    (repo / "app.py").write_text("my own work in progress\n")
    before = head(repo)
    run = covey("merge", "a", "--squash", cwd=repo)
    assert run.code == 2
    assert len(run.err.strip().splitlines()) == 1
    assert "uncommitted changes in app.py" in run.err
    assert head(repo) == before and (repo / "app.py").read_text() == "my own work in progress\n"


def test_untracked_file_in_the_way_is_refused(repo: Path) -> None:
    wt = add_worktree(repo, "a")
    commit(wt, "notes.txt", "from the agent\n", "notes")
    (repo / "notes.txt").write_text("the user's own notes\n")
    with pytest.raises(UserError, match=r"would be overwritten: notes\.txt"):
        merge_worktree(repo, "a")
    assert (repo / "notes.txt").read_text() == "the user's own notes\n"


def test_cli_merge_reports_success_and_nothing_to_merge(repo: Path) -> None:
    wt = add_worktree(repo, "a")
    (wt / "feature.py").write_text("x\n")
    run = covey("merge", "a", cwd=wt)  # from inside the worktree: it still finds main
    assert run.code == 0, run.err
    assert run.out.startswith("merged worktree a into main: fast-forward")
    assert "uncommitted work first committed" in run.out
    again = covey("merge", "a", cwd=repo)
    assert again.code == 0 and "nothing to merge" in again.out


def test_cli_refuses_squash_with_rebase(repo: Path) -> None:
    add_worktree(repo, "a")
    run = covey("merge", "a", "--squash", "--rebase", cwd=repo)
    assert run.code == 2 and "exclude each other" in run.err


def test_diff_shows_committed_uncommitted_and_untracked_work(repo: Path) -> None:
    wt = add_worktree(repo, "a")
    commit(wt, "committed.py", "c = 1\n", "committed")
    (wt / "app.py").write_text("one\nchanged\nthree\n")
    (wt / "untracked.py").write_text("u = 1\n")
    commit(repo, "main_only.py", "m\n", "main moved")  # not part of the worktree's diff
    run = covey("diff", "a", cwd=repo)
    assert run.code == 0, run.err
    for expected in ("+++ b/committed.py", "+changed", "+++ b/untracked.py", "+u = 1"):
        assert expected in run.out
    assert "main_only.py" not in run.out
    stat = covey("diff", "a", "--stat", cwd=repo)
    assert "3 files changed" in stat.out
    assert git(wt, "status", "--porcelain") == " M app.py\n?? untracked.py\n"  # index untouched


def test_diff_uses_the_recorded_base_when_it_is_ahead_of_main(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(other))
    git(other, "config", "user.email", "upstream@covey.invalid")
    git(other, "config", "user.name", "upstream")
    commit(other, "upstream.py", "u\n", "upstream work")
    git(other, "push", "-q")
    git(repo, "fetch", "-q")
    wt = add_worktree(repo, "a", "origin/main")
    write_meta(wt, Meta(base=head(repo, "origin/main"), name="a"))
    (wt / "mine.py").write_text("m\n")
    diff = worktree_diff(repo, "a", stat=True)
    assert "mine.py" in diff and "upstream.py" not in diff


def test_unknown_worktree_and_outside_a_repository(repo: Path, tmp_path: Path) -> None:
    add_worktree(repo, "a")
    add_worktree(repo, "b")
    run = covey("diff", "nope", cwd=repo)
    assert run.code == 2
    assert "no worktree named 'nope'" in run.err and "existing worktrees: a, b" in run.err
    outside = tmp_path / "plain"
    outside.mkdir()
    run = covey("merge", "a", cwd=outside)
    assert run.code == 2 and "not inside a git repository" in run.err


def test_public_surface() -> None:
    assert sorted(merge_module.__all__) == [
        "ConflictFile",
        "MergeConflict",
        "MergeMode",
        "MergeResult",
        "Outcome",
        "merge_worktree",
        "worktree_base",
        "worktree_diff",
    ]


def test_merge_refuses_a_worktree_a_live_session_has_locked(repo: Path) -> None:
    wt = add_worktree(repo, "busy")
    commit(wt, "half.py", "x = 1\n", "half done")
    git(repo, "worktree", "lock", "--reason", "covey session abcd1234", str(wt))
    before = head(repo)
    run = covey("merge", "busy", cwd=repo)
    assert run.code == 2, run.err
    assert "locked by covey session abcd1234" in run.err and "--force" in run.err
    assert_untouched(repo, before)
    forced = covey("merge", "busy", "--force", cwd=repo)
    assert forced.code == 0, forced.err
    assert (repo / "half.py").exists()
