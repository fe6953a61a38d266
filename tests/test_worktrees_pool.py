"""The warm pool: refill, claim without a checkout, recycling, concurrency, the module CLI."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from covey.git.layout import file_lock, pool_dir, read_meta, write_meta
from covey.git.pool import claim_pooled, pool_entries, refill_pool
from covey.git.worktrees import Worktree, list_worktrees, open_worktree, remove_worktree
from test_worktrees_support import clone_with_remote, commit, git, settings

POOL2 = settings(baseRef="head", pool=2)


@pytest.fixture
def repo(git_repo: Path) -> Path:
    commit(git_repo, {".gitignore": ".env\n.covey/worktrees/\n", ".worktreeinclude": ".env\n"})
    (git_repo / ".env").write_text("TOKEN=1\n")
    return git_repo


def _ready(root: Path) -> list[Path]:
    return [p for p, m in pool_entries(root) if m is not None and m.ready]


def test_refill_makes_ready_detached_trees(repo: Path) -> None:
    report = refill_pool(repo, POOL2)
    assert (report.ready, report.made, report.recycled, report.removed) == (2, 2, 0, 0)
    head = git(repo, "rev-parse", "HEAD")
    for path in _ready(repo):
        assert path.parent == pool_dir(repo)
        assert git(path, "rev-parse", "HEAD") == head
        assert git(path, "status", "--porcelain") == ""
        assert (path / ".env").read_text() == "TOKEN=1\n"  # .worktreeinclude already applied
        assert subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=path).returncode == 1
    again = refill_pool(repo, POOL2)
    assert (again.ready, again.made) == (2, 0)
    assert list_worktrees(repo) == []  # pooled trees are not the user's worktrees


def test_claim_is_a_rename_and_a_branch_not_a_checkout(repo: Path) -> None:
    refill_pool(repo, POOL2)
    first = _ready(repo)[0]
    inode = (first / "README.md").stat().st_ino
    wt = open_worktree(repo, "fast", POOL2)
    assert wt.pooled and wt.created and wt.path == repo / ".covey" / "worktrees" / "fast"
    assert (wt.path / "README.md").stat().st_ino == inode  # the very same files
    assert git(wt.path, "symbolic-ref", "--short", "HEAD") == "worktree-fast"
    assert wt.base == git(repo, "rev-parse", "HEAD") == git(wt.path, "rev-parse", "HEAD")
    assert git(wt.path, "status", "--porcelain") == ""
    assert str(wt.path) in git(repo, "worktree", "list") and not first.exists()
    meta = read_meta(wt.path)
    assert meta is not None and meta.name == "fast"
    assert len(_ready(repo)) == 1
    commit(wt.path, {"f.txt": "f"}, "work in a pooled tree")
    assert remove_worktree(repo, "fast", force=True).unmerged == 1


def test_changed_include_sources_are_copied_again_on_claim(repo: Path) -> None:
    refill_pool(repo, POOL2)
    (repo / ".env").write_text("TOKEN=2, rotated\n")
    wt = open_worktree(repo, "rotated", POOL2)
    assert wt.pooled and (wt.path / ".env").read_text() == "TOKEN=2, rotated\n"


def test_a_tree_whose_base_moved_is_recycled(repo: Path) -> None:
    refill_pool(repo, POOL2)
    old = set(_ready(repo))
    new_head = commit(repo, {"later.txt": "later"})
    cold = open_worktree(repo, "cold", POOL2)  # nothing at the new base: a plain checkout
    assert not cold.pooled and cold.base == new_head and (cold.path / "later.txt").exists()
    report = refill_pool(repo, POOL2)
    assert (report.recycled, report.made, report.ready) == (2, 0, 2)
    assert set(_ready(repo)) == old  # the same directories, moved to the new base
    warm = open_worktree(repo, "warm", POOL2)
    assert warm.pooled and (warm.path / "later.txt").exists()
    assert git(warm.path, "status", "--porcelain") == ""


def test_fresh_pool_follows_the_remote(tmp_path: Path, git_repo: Path) -> None:
    clone, _ = clone_with_remote(tmp_path, git_repo)
    fresh = settings(pool=1)
    refill_pool(clone, fresh)
    commit(clone, {"local.txt": "unpushed"})  # local HEAD moves; the fresh base does not
    wt = open_worktree(clone, "f", fresh)
    assert wt.pooled and wt.base == git(clone, "rev-parse", "origin/HEAD")


def test_other_settings_or_half_made_trees_are_removed(repo: Path) -> None:
    refill_pool(repo, POOL2)
    linked = settings(baseRef="head", pool=2, symlinkDirectories=["node_modules"])
    wt = open_worktree(repo, "other", linked)
    assert not wt.pooled
    [one, two] = _ready(repo)
    meta = read_meta(one)
    assert meta is not None
    meta.ready = False  # as if a refill died while making it
    write_meta(one, meta)
    report = refill_pool(repo, linked)
    assert (report.removed, report.made, report.ready) == (2, 2, 2)
    assert not one.exists() and not two.exists()
    shrink = refill_pool(
        repo, settings(baseRef="head", pool=0, symlinkDirectories=["node_modules"])
    )
    assert shrink.removed == 2 and pool_entries(repo) == []


def test_only_one_refill_at_a_time(repo: Path) -> None:
    with file_lock(repo, "pool-refill"):
        assert refill_pool(repo, POOL2).skipped
    assert pool_entries(repo) == []


def test_concurrent_claims_get_distinct_trees(repo: Path) -> None:
    many = settings(baseRef="head", pool=4)
    refill_pool(repo, many)
    got: list[Worktree | None] = []
    errors: list[BaseException] = []

    def claim(name: str) -> None:
        try:
            got.append(claim_pooled(repo, name, many))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=claim, args=(f"t{i}",)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    claimed = [w for w in got if w is not None]
    assert len(claimed) == 4 and got.count(None) == 1
    assert len({w.path for w in claimed}) == 4 and pool_entries(repo) == []
    for w in claimed:
        assert git(w.path, "symbolic-ref", "--short", "HEAD") == f"worktree-{w.name}"


def test_refill_from_the_command_line(repo: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "covey.git.pool", "refill", str(repo), "--size", "2"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pool: 2 ready, 2 made, 0 recycled, 0 removed"
    assert len(_ready(repo)) == 2
    bad = subprocess.run(
        [sys.executable, "-m", "covey.git.pool", "refill", str(repo.parent)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("covey: error: not a git repository")
