"""The overlap radar: files changed in two or more live worktrees, over real repositories."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from clitools import covey
from covey.git import overlaps as overlaps_module
from covey.git.fsmonitor import stop_watcher
from covey.git.layout import Meta, write_meta
from covey.git.merge import MergeConflict, merge_worktree
from covey.git.overlaps import Overlap, find_overlaps


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


def write(cwd: Path, path: str, text: str) -> None:
    (cwd / path).parent.mkdir(parents=True, exist_ok=True)
    (cwd / path).write_text(text)


def commit(cwd: Path, path: str, text: str) -> None:
    write(cwd, path, text)
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "-m", f"edit {path}")


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    """A repository; the file watcher a scan starts in it is stopped afterwards."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@covey.invalid")
    git(root, "config", "user.name", "covey test")
    (root / ".git" / "info" / "exclude").write_text(".covey/worktrees/\n")
    for name in ("shared.py", "lib/util.py", "solo.py", "docs.md"):
        write(root, name, f"{name}\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    yield root
    assert stop_watcher(root)


def add_worktree(repo: Path, name: str) -> Path:
    path = repo / ".covey" / "worktrees" / name
    git(repo, "worktree", "add", "-q", "-b", f"worktree-{name}", str(path), "HEAD")
    return path


@pytest.fixture
def three(repo: Path) -> tuple[Path, Path, Path]:
    """a, b, c with committed, uncommitted and untracked changes; some paths shared."""
    a, b, c = (add_worktree(repo, n) for n in ("a", "b", "c"))
    commit(a, "shared.py", "a\n")  # committed in a ...
    write(b, "shared.py", "b\n")  # ... uncommitted in b
    write(a, "lib/util.py", "a\n")  # uncommitted in a ...
    commit(c, "lib/util.py", "c\n")  # ... committed in c
    write(b, "lib/new.py", "b\n")  # untracked in b ...
    write(c, "lib/new.py", "c\n")  # ... and in c
    write(a, "solo.py", "only a\n")  # changed in one worktree only
    git(c, "rm", "-q", "docs.md")  # deleted in c only
    return a, b, c


def test_overlaps_across_three_worktrees(repo: Path, three: tuple[Path, Path, Path]) -> None:
    assert find_overlaps(repo) == [
        Overlap("lib/new.py", ["b", "c"]),
        Overlap("lib/util.py", ["a", "c"]),
        Overlap("shared.py", ["a", "b"]),
    ]


def test_overlaps_from_inside_a_worktree(repo: Path, three: tuple[Path, Path, Path]) -> None:
    a = three[0]
    assert [o.path for o in find_overlaps(a / "lib")] == ["lib/new.py", "lib/util.py", "shared.py"]


def test_a_merged_worktree_counts_only_what_it_changed_since(repo: Path) -> None:
    a, b = add_worktree(repo, "a"), add_worktree(repo, "b")
    commit(a, "shared.py", "a\n")
    write(b, "shared.py", "b\n")
    assert find_overlaps(repo) == [Overlap("shared.py", ["a", "b"])]
    git(repo, "merge", "-q", "--ff-only", "worktree-a")  # a's work is on main now
    assert find_overlaps(repo) == []


def test_new_commits_show_up_on_the_next_scan(repo: Path) -> None:
    a, b = add_worktree(repo, "a"), add_worktree(repo, "b")
    commit(a, "shared.py", "a\n")
    write(b, "docs.md", "b\n")
    assert find_overlaps(repo) == []
    commit(a, "docs.md", "a\n")  # a new HEAD: not answered from the previous scan's cache
    assert find_overlaps(repo) == [Overlap("docs.md", ["a", "b"])]


def test_pooled_foreign_missing_and_covey_files_are_ignored(repo: Path, tmp_path: Path) -> None:
    a, b = add_worktree(repo, "a"), add_worktree(repo, "b")
    write(a, "shared.py", "a\n")
    pooled = repo / ".covey" / "worktrees" / ".pool" / "x1"
    git(repo, "worktree", "add", "-q", "--detach", str(pooled), "HEAD")
    write(pooled, "shared.py", "pool\n")
    foreign = tmp_path / "elsewhere"
    git(repo, "worktree", "add", "-q", "-b", "foreign", str(foreign), "HEAD")
    write(foreign, "shared.py", "foreign\n")
    gone = add_worktree(repo, "gone")
    write(gone, "shared.py", "gone\n")
    shutil.rmtree(gone)  # git now calls it prunable
    for wt in (a, b):  # covey's copy of the project settings is not the agent's work
        write(wt, ".covey/settings.local.json", "{}\n")
    assert find_overlaps(repo) == []


def test_the_recorded_base_wins_when_it_is_later(repo: Path) -> None:
    a, b = add_worktree(repo, "a"), add_worktree(repo, "b")
    commit(a, "shared.py", "a\n")
    # b was started from a's commit (as if from a fetched origin/HEAD ahead of main)
    git(b, "reset", "-q", "--hard", "worktree-a")
    write_meta(b, Meta(base=git(a, "rev-parse", "HEAD").strip(), name="b"))
    write(b, "docs.md", "b\n")
    write(a, "docs.md", "a\n")
    assert find_overlaps(repo) == [Overlap("docs.md", ["a", "b"])]


def test_merge_conflict_names_worktrees_from_the_radar(repo: Path) -> None:
    a, b = add_worktree(repo, "a"), add_worktree(repo, "b")
    write(a, "shared.py", "a\n")
    write(b, "shared.py", "b\n")
    commit(repo, "shared.py", "main\n")
    with pytest.raises(MergeConflict) as caught:
        merge_worktree(repo, "a")
    assert "shared.py  also changed in worktrees: b" in caught.value.report()


def test_cli_json_shape(repo: Path, three: tuple[Path, Path, Path]) -> None:
    run = covey("overlaps", "--json", cwd=repo)
    assert run.code == 0, run.err
    data = run.json()
    assert data["repo"] == str(repo)
    assert data["worktrees"] == ["a", "b", "c"]
    assert data["overlaps"][0] == {"path": "lib/new.py", "worktrees": ["b", "c"]}
    assert [o["path"] for o in data["overlaps"]] == ["lib/new.py", "lib/util.py", "shared.py"]


def test_cli_table_and_empty_and_outside(repo: Path, tmp_path: Path) -> None:
    a, b = add_worktree(repo, "a"), add_worktree(repo, "b")
    run = covey("overlaps", cwd=repo)
    assert run.code == 0 and "no file is changed in more than one of 2 worktree(s)" in run.out
    write(a, "shared.py", "a\n")
    write(b, "shared.py", "b\n")
    assert covey("overlaps", cwd=repo).out == "shared.py  a, b\n"
    outside = tmp_path / "plain"
    outside.mkdir()
    run = covey("overlaps", cwd=outside)
    assert run.code == 2 and "not inside a git repository" in run.err


def test_public_surface() -> None:
    assert sorted(overlaps_module.__all__) == [
        "Checkout",
        "LiveWorktrees",
        "Overlap",
        "base_args",
        "find_overlaps",
        "live_worktrees",
        "overlaps_of",
        "scan_changes",
        "scan_overlaps",
        "worktree_changes",
    ]
