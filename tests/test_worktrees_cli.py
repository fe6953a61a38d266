"""`covey worktree list|remove|prune|restore`, run as the real command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from clitools import covey
from covey.git.worktrees import lock_worktree, open_worktree
from test_worktrees_support import commit, git, settings

HEAD = settings(baseRef="head")


@pytest.fixture
def repo(git_repo: Path) -> Path:
    commit(git_repo, {".gitignore": ".covey/worktrees/\n"})
    return git_repo


def test_list_json(repo: Path) -> None:
    assert covey("worktree", "list", "--json", cwd=repo).json() == {
        "repo": str(repo),
        "worktrees": [],
        "pool": {"ready": 0},
    }
    a = open_worktree(repo, "a", HEAD)
    (a.path / "wip.txt").write_text("wip")
    b = open_worktree(repo, "b", HEAD)
    commit(b.path, {"b.txt": "b"})
    lock_worktree(b, "covey session s7")
    run = covey("worktree", "list", "--json", cwd=a.path)  # from inside a worktree, too
    assert run.code == 0, run.err
    rows = {r["name"]: r for r in run.json()["worktrees"]}
    assert set(rows) == {"a", "b"}
    assert set(rows["a"]) >= {"name", "path", "branch", "base", "dirty", "ahead", "size_bytes",
                              "locked_by", "state", "snapshots"}  # fmt: skip
    assert (rows["a"]["dirty"], rows["a"]["ahead"], rows["a"]["locked_by"]) == (True, 0, None)
    assert (rows["b"]["dirty"], rows["b"]["ahead"], rows["b"]["locked_by"]) == (
        False,
        1,
        "covey session s7",
    )
    assert rows["a"]["path"] == str(a.path) and rows["a"]["branch"] == "worktree-a"
    assert rows["a"]["size_bytes"] > 0


def test_list_text_and_gitignore_hint(git_repo: Path) -> None:
    open_worktree(git_repo, "shown", HEAD)
    run = covey("worktree", "list", cwd=git_repo)
    assert run.code == 0
    lines = run.out.splitlines()
    assert lines[0].split() == ["NAME", "BRANCH", "BASE", "DIRTY", "AHEAD", "SIZE", "LOCKED",
                                "BY", "STATE"]  # fmt: skip
    assert lines[1].split()[:2] == ["shown", "worktree-shown"]
    assert "covey: hint: add '.covey/worktrees/'" in run.err


def test_remove_needs_force_for_unmerged_work(repo: Path) -> None:
    wt = open_worktree(repo, "feat", HEAD)
    commit(wt.path, {"f.txt": "f"}, "the feature")
    refused = covey("worktree", "remove", "feat", cwd=repo)
    assert refused.code == 2 and refused.out == ""
    assert refused.err.count("\n") == 1
    assert refused.err.startswith("covey: error: branch worktree-feat of worktree feat has 1 ")
    assert "the feature" in refused.err and wt.path.is_dir()
    done = covey("worktree", "remove", "feat", "--force", cwd=repo)
    assert done.code == 0, done.err
    assert "removed worktree feat (HEAD kept at refs/covey/snapshots/feat/1" in done.out
    assert "1 unmerged commit(s) stay reachable from refs/covey/snapshots/feat/1" in done.out
    assert not wt.path.exists()


def test_bad_input_is_one_line_and_exit_2(repo: Path, tmp_path: Path) -> None:
    bad = covey("worktree", "remove", "../etc", cwd=repo)
    assert bad.code == 2 and bad.err.startswith("covey: error: invalid worktree name '../etc'")
    missing = covey("worktree", "remove", "nope", cwd=repo)
    assert missing.code == 2 and "no worktree named 'nope'" in missing.err
    outside = tmp_path / "outside"
    outside.mkdir()
    run = covey("worktree", "list", cwd=outside)
    assert run.code == 2 and run.err.startswith("covey: error: not a git repository")


def test_prune_and_restore(repo: Path) -> None:
    open_worktree(repo, "clean", HEAD)
    dirty = open_worktree(repo, "dirty", HEAD)
    (dirty.path / "wip.txt").write_text("wip\n")
    run = covey("worktree", "prune", cwd=repo)
    assert run.code == 0, run.err
    assert run.out.splitlines() == [
        "removed worktree clean (HEAD kept at refs/covey/snapshots/clean/1; "
        "deleted branch worktree-clean)",
        "kept dirty: uncommitted changes",
    ]
    removed = covey("worktree", "remove", "dirty", cwd=repo)
    assert "uncommitted work and HEAD kept at refs/covey/snapshots/dirty/1" in removed.out
    back = covey("worktree", "restore", "dirty", cwd=repo)
    assert back.code == 0, back.err
    assert back.out.splitlines()[0] == f"restored worktree dirty at {dirty.path} on worktree-dirty"
    assert (dirty.path / "wip.txt").read_text() == "wip\n"
    again = covey("worktree", "restore", "dirty", cwd=repo)
    assert again.code == 2 and "open it with: covey -w dirty" in again.err


@pytest.mark.parametrize(
    ("flag", "why"),
    [
        ("-w=-x", "it starts with '=' (write -w NAME or --worktree=NAME, not -w=NAME)"),
        ("--worktree=héllo", "it holds 'é'"),
        ("--worktree=a..b", "it holds '..'"),
        ("--worktree=x.lock", "it ends with '.' or '.lock'"),
    ],
)
def test_a_bad_name_for_covey_w_is_exit_2_and_makes_nothing(
    repo: Path, flag: str, why: str
) -> None:
    run = covey(flag, "-p", "--model", "scripted:/dev/null", "hi", cwd=repo)
    assert run.code == 2 and run.out == ""
    assert run.err.startswith("covey: error: invalid worktree name ") and why in run.err
    assert run.err.count("\n") == 1
    assert not (repo / ".covey" / "worktrees").exists()
    assert "worktree-" not in git(repo, "branch")
