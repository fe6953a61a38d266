"""Files covey copies into a worktree (the project's `.covey/` settings and agents,
`.worktreeinclude` matches) are not the agent's work: they never count as uncommitted changes,
never land in a snapshot or a commit, and a worktree holding nothing else can be pruned. The
personal `settings.local.json` (which may hold a key) in particular. Real repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import covey
from covey.git.include import IGNORE_FILE
from covey.git.worktrees import list_worktrees, open_worktree, remove_worktree
from test_worktrees_support import commit, git, settings

HEAD = settings(baseRef="head")
KEY = "sk-ant-personal-key"


@pytest.fixture
def repo(git_repo: Path) -> Path:
    """A project with untracked shared and personal settings, an agent, and an ignored `.env`
    that `.worktreeinclude` copies."""
    commit(
        git_repo,
        {".gitignore": ".env\n.covey/worktrees/\n", ".worktreeinclude": ".env\n"},
    )
    covey_dir = git_repo / ".covey"
    (covey_dir / "agents").mkdir(parents=True)
    (covey_dir / "settings.json").write_text(json.dumps({"model": "sonnet"}))
    (covey_dir / "settings.local.json").write_text(json.dumps({"env": {"ANTHROPIC_API_KEY": KEY}}))
    (covey_dir / "agents" / "helper [v2].md").write_text("---\nname: helper\n---\nHelp.\n")
    (git_repo / ".env").write_text("SECRET=1\n")
    return git_repo


def snapshot_files(repo: Path, ref: str) -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", ref).splitlines())


def test_copied_files_are_not_changes_nor_snapshotted(repo: Path) -> None:
    wt = open_worktree(repo, "feat", HEAD)
    assert (wt.path / ".covey" / "settings.local.json").read_text().count(KEY) == 1
    assert (wt.path / ".env").exists()
    assert git(wt.path, "status", "--porcelain", "--untracked-files=all") == ""
    [info] = list_worktrees(repo)
    assert not info.dirty
    (wt.path / "work.txt").write_text("mine\n")
    report = remove_worktree(repo, "feat", force=True)
    assert report.dirty
    files = snapshot_files(repo, report.snapshot)
    assert "work.txt" in files
    assert not [f for f in files if f.startswith(".covey/") or f == ".env"]
    assert KEY not in git(repo, "log", "-p", "--all")


def test_the_agents_own_git_add_all_leaves_them_out(repo: Path) -> None:
    wt = open_worktree(repo, "feat", HEAD)
    (wt.path / ".covey" / "agents" / "mine.md").write_text("---\nname: mine\n---\nNew.\n")
    git(wt.path, "add", "-A")
    git(wt.path, "commit", "-qm", "agent work")
    committed = git(wt.path, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert committed == [".covey/agents/mine.md"]  # a new file of the agent's is work
    assert KEY not in git(repo, "log", "-p", "--all")


def test_a_projects_own_covey_gitignore_is_left_alone_and_still_nothing_leaks(
    repo: Path,
) -> None:
    (repo / IGNORE_FILE).write_text("worktrees/\n")
    git(repo, "add", IGNORE_FILE)
    git(repo, "commit", "-qm", "the project's own")
    wt = open_worktree(repo, "feat", HEAD)
    assert (wt.path / IGNORE_FILE).read_text() == "worktrees/\n"
    [info] = list_worktrees(repo)
    assert not info.dirty
    report = remove_worktree(repo, "feat")
    assert not report.dirty
    assert not [f for f in snapshot_files(repo, report.snapshot) if "settings" in f]
    assert KEY not in git(repo, "log", "-p", "--all")


def test_prune_removes_a_worktree_holding_only_copies(repo: Path) -> None:
    open_worktree(repo, "clean", HEAD)
    busy = open_worktree(repo, "busy", HEAD)
    (busy.path / "README.md").write_text("edited\n")
    run = covey("worktree", "prune", cwd=repo)
    assert run.code == 0, run.err
    assert run.out.splitlines() == [
        "removed worktree clean (HEAD kept at refs/covey/snapshots/clean/1; "
        "deleted branch worktree-clean)",
        "kept busy: uncommitted changes",
    ]
