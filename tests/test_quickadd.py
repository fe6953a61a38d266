"""`add_quick`: a worktree made without `git worktree add` must be one git cannot tell from
the real thing — same registration, files, index, branch (but no hook call) — and every case it
does not handle must leave nothing behind. Real repositories, real git."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from covey.git.quickadd import add_quick
from covey.git.repo import GitError
from covey.git.worktrees import Worktree, lock_worktree, unlock_worktree
from test_worktrees_support import commit, git

NULL = "0" * 40


@pytest.fixture
def repo(git_repo: Path) -> Path:
    commit(git_repo, {"src/a.py": "A = 1\n", "src/b.py": "B = 2\n", "run.sh": "echo hi\n"})
    (git_repo / "run.sh").chmod(0o755)
    git(git_repo, "commit", "-q", "-am", "executable")
    return git_repo


def registration(repo: Path, path: Path) -> dict[str, str]:
    """The `git worktree list --porcelain` record of `path`, as key → value."""
    for record in git(repo, "worktree", "list", "--porcelain").split("\n\n"):
        lines = record.strip().splitlines()
        if lines and lines[0] == f"worktree {path}":
            return dict((line.partition(" ")[0], line.partition(" ")[2]) for line in lines[1:])
    raise AssertionError(f"{path} is not registered")


def test_a_quick_worktree_is_what_git_worktree_add_makes(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    real, quick = repo / "wt" / "real", repo / "wt" / "quick"
    git(repo, "worktree", "add", "-q", "--no-track", "-b", "b-real", str(real), base)
    assert add_quick(repo, quick, base=base, branch="b-quick")

    assert registration(repo, quick) == {"HEAD": base, "branch": "refs/heads/b-quick"}
    assert registration(repo, real) == {"HEAD": base, "branch": "refs/heads/b-real"}
    assert git(quick, "status", "--porcelain") == ""
    assert git(quick, "ls-files", "-s") == git(real, "ls-files", "-s")
    assert sorted(p.name for p in quick.iterdir()) == sorted(p.name for p in real.iterdir())
    assert os.stat(quick / "run.sh").st_mode & stat.S_IXUSR
    assert git(quick, "rev-parse", "--show-toplevel").strip() == str(quick)
    assert git(quick, "rev-parse", "--git-common-dir", "--path-format=absolute").strip()
    assert git(repo, "rev-parse", "b-quick").strip() == base
    assert git(quick, "reflog", "-1", "--format=%gs").startswith("checkout:")
    # git's own maintenance treats it as its own
    git(repo, "worktree", "prune")
    assert registration(repo, quick)["branch"] == "refs/heads/b-quick"
    git(repo, "worktree", "repair")
    git(repo, "fsck", "--no-progress")
    (quick / "src" / "a.py").write_text("A = 3\n")
    git(quick, "commit", "-qam", "work")
    assert git(repo, "log", "-1", "--format=%s", "b-quick").strip() == "work"
    git(repo, "worktree", "remove", "--force", str(quick))
    assert not quick.exists() and not (repo / ".git" / "worktrees" / "quick").exists()


def test_no_post_checkout_hook_runs_where_git_worktree_add_runs_one(repo: Path) -> None:
    """covey's git runs no repository hook (an agent may have planted it): a quick worktree
    differs from `git worktree add` only in that."""
    log = repo.parent / "hook.log"
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f'#!/bin/sh\necho "$1 $2 $3 $(pwd)" >> {log}\n')
    hook.chmod(0o755)
    base = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "worktree", "add", "-q", "--no-track", "-b", "b-real", str(repo / "real"), base)
    assert add_quick(repo, repo / "quick", base=base, branch="b-quick")
    assert log.read_text().splitlines() == [f"{NULL} {base} 1 {repo / 'real'}"]


def admin_names(repo: Path) -> set[str]:
    admin = repo / ".git" / "worktrees"
    return {p.name for p in admin.iterdir()} if admin.exists() else set()


def leftovers(repo: Path) -> list[Path]:
    return (
        [p for p in (repo / ".git" / "covey").glob("*")]
        if (repo / ".git" / "covey").exists()
        else []
    )


def test_an_existing_branch_is_left_to_git_worktree_add(repo: Path) -> None:
    git(repo, "branch", "taken")
    base = git(repo, "rev-parse", "HEAD~1").strip()
    assert not add_quick(repo, repo / "wt", base=base, branch="taken")
    assert not (repo / "wt").exists() and admin_names(repo) == set() and not leftovers(repo)
    assert git(repo, "rev-parse", "taken").strip() == git(repo, "rev-parse", "HEAD").strip()


def test_a_taken_path_or_admin_name_is_left_to_git_worktree_add(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "occupied").mkdir()
    (repo / "occupied" / "mine.txt").write_text("keep\n")
    assert not add_quick(repo, repo / "occupied", base=base, branch="b1")
    assert (repo / "occupied" / "mine.txt").read_text() == "keep\n"
    assert add_quick(repo, repo / "one" / "same", base=base, branch="b2")
    assert not add_quick(repo, repo / "two" / "same", base=base, branch="b3")  # admin "same"
    assert not (repo / "two").exists() or not any((repo / "two").iterdir())
    assert admin_names(repo) == {"same"} and not leftovers(repo)
    assert "b1" not in git(repo, "branch") and "b3" not in git(repo, "branch")


@pytest.mark.parametrize("setup", ["sparse", "worktree-config", "separate-git-dir"])
def test_what_worktree_add_would_copy_is_left_to_it(repo: Path, tmp_path: Path, setup: str) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    if setup == "sparse":
        git(repo, "sparse-checkout", "set", "src")
    elif setup == "worktree-config":
        git(repo, "config", "extensions.worktreeConfig", "true")
        git(repo, "config", "--worktree", "core.editor", "true")
    else:
        git(repo, "init", "-q", f"--separate-git-dir={tmp_path / 'elsewhere.git'}")
    assert not add_quick(repo, repo / "wt", base=base, branch="b1")
    assert not (repo / "wt").exists() and "b1" not in git(repo, "branch")


def test_a_failed_checkout_leaves_nothing_behind(repo: Path) -> None:
    with pytest.raises(GitError, match="checkout"):
        add_quick(repo, repo / "wt", base="f" * 40, branch="b1")
    assert not (repo / "wt").exists() and admin_names(repo) == set() and not leftovers(repo)
    assert "b1" not in git(repo, "branch")
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_many_at_once_beside_git_worktree_commands(repo: Path) -> None:
    """Made by one rename, a quick worktree is never seen half-made by a concurrent `git
    worktree` command (git 2.39 fails on a half-made one: 'failed to read …/commondir').
    Lifting the "initializing" lock at the end races with `git worktree list` exactly as
    `git worktree add`'s own unlink does ('failed to read …/locked'): git's race, not ours,
    and one covey's `git worktree` calls retry."""
    base = git(repo, "rev-parse", "HEAD").strip()
    errors: list[str] = []

    def quick(i: int) -> None:
        try:
            assert add_quick(repo, repo / "wt" / f"q{i}", base=base, branch=f"q{i}")
        except Exception as e:  # reported below, with the others
            errors.append(f"q{i}: {e}")

    def lister() -> None:
        for _ in range(15):
            done = subprocess.run(
                ["git", "worktree", "list", "--porcelain"], cwd=repo, capture_output=True, text=True
            )
            if done.returncode != 0 and "/locked'" not in done.stderr:
                errors.append(f"list: {done.stderr.strip()}")

    threads = [threading.Thread(target=quick, args=(i,)) for i in range(16)]
    threads += [threading.Thread(target=lister) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    listing = git(repo, "worktree", "list", "--porcelain").splitlines()
    assert all(f"branch refs/heads/q{i}" in listing for i in range(16))
    assert not leftovers(repo)


def test_locks_are_git_worktree_locks(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    path = repo / "wt"
    assert add_quick(repo, path, base=base, branch="b1")
    wt = Worktree("wt", path, "b1", base, repo, created=True)
    lock_worktree(wt, "covey session s1")
    assert registration(repo, path)["locked"] == "covey session s1"
    assert subprocess.run(["git", "worktree", "remove", str(path)], cwd=repo).returncode != 0
    unlock_worktree(wt)
    assert "locked" not in registration(repo, path)
    git(repo, "worktree", "lock", "--reason", "held by git", str(path))
    with pytest.raises(Exception, match="already locked by held by git"):
        lock_worktree(wt, "covey session s2")
    unlock_worktree(wt)
    git(repo, "worktree", "lock", str(path))  # git reads our unlock: lockable again
