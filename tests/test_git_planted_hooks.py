"""Hooks and an fsmonitor command planted in a repository (as an agent could do from its Bash)
never run from covey's own git commands: `covey -w`, `covey worktree list|remove|prune`, the
overlap radar, snapshots, `covey diff` and `covey merge`. Real repositories, the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clitools import covey
from covey.git.overlaps import find_overlaps
from covey.git.worktrees import open_worktree, remove_worktree
from test_worktrees_support import git, settings

HOOKS = (
    "post-checkout",
    "pre-commit",
    "commit-msg",
    "post-commit",
    "post-merge",
    "pre-merge-commit",
    "reference-transaction",
    "post-index-change",
    "pre-auto-gc",
)


def plant(repo: Path) -> Path:
    """Hooks and `core.fsmonitor` that append to a marker file; returns the marker."""
    marker = repo.parent / "planted.log"
    hooks = repo / ".git" / "hooks"
    for name in HOOKS:
        (hooks / name).write_text(f'#!/bin/sh\necho "{name}" >> {marker}\n')
        (hooks / name).chmod(0o755)
    git(repo, "config", "core.fsmonitor", f"echo fsmonitor >> {marker}; false")
    return marker


def ran(marker: Path) -> list[str]:
    return marker.read_text().split() if marker.exists() else []


@pytest.fixture
def repo(git_repo: Path) -> Path:
    (git_repo / ".git" / "info" / "exclude").write_text(".covey/worktrees/\n")
    return git_repo


def test_the_planted_hooks_do_run_from_plain_git(repo: Path) -> None:
    """The bait works: what the other tests show is covey turning it off."""
    marker = plant(repo)
    git(repo, "status")
    git(repo, "commit", "-q", "--allow-empty", "-m", "x")
    assert "fsmonitor" in ran(marker) and "pre-commit" in ran(marker)


def test_covey_w_and_the_worktree_commands_run_no_planted_hook(repo: Path, tmp_path: Path) -> None:
    marker = plant(repo)
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"turns": [{"text": "done"}]}))
    run = covey("-w", "feat", "-p", "--model", f"scripted:{script}", "hi", cwd=repo)
    assert run.code == 0, run.err
    wt = repo / ".covey" / "worktrees" / "feat"
    assert (wt / "README.md").exists()
    (wt / "new.txt").write_text("work\n")
    listed = covey("worktree", "list", cwd=repo)
    assert listed.code == 0 and "feat" in listed.out
    assert covey("overlaps", cwd=repo).code == 0
    assert covey("diff", "feat", cwd=repo).code == 0
    merged = covey("merge", "feat", cwd=repo)
    assert merged.code == 0, merged.err
    assert (repo / "new.txt").read_text() == "work\n"
    removed = covey("worktree", "remove", "feat", cwd=repo)
    assert removed.code == 0, removed.err
    assert ran(marker) == []


def test_the_radar_and_snapshots_run_no_planted_hook(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    one = open_worktree(repo, "one", settings(), base=base)
    two = open_worktree(repo, "two", settings(), base=base)
    marker = plant(repo)
    for wt in (one, two):
        (wt.path / "README.md").write_text(f"{wt.name}\n")
        git(wt.path, "config", "core.fsmonitor", f"echo fsmonitor-wt >> {marker}; false")
    overlaps = find_overlaps(repo, watch=False)
    assert [o.path for o in overlaps] == ["README.md"]
    report = remove_worktree(repo, "one", force=True)
    assert report.dirty and report.snapshot == "refs/covey/snapshots/one/1"
    assert ran(marker) == []
