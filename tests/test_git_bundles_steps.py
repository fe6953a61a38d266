"""The node's git work per step (`snapshot_for_shipping` over `covey.git.shipping`): four or
five git processes for a step that wrote files (no `update-ref`, `bundle create`, `var` or
`merge-base` once known), and what is kept between steps (an index of its own, what it knows
of the history) never makes a snapshot wrong: the agent's own index changes and commits after
a step are seen by the next one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from covey.git.bundles import (
    pack_workspace,
    receive_snapshot,
    snapshot_for_shipping,
    unpack_workspace,
)

BRANCH = "worktree-bg-steps"


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _files(repo: Path, rev: str) -> set[str]:
    return set(_git(repo, "ls-tree", "-r", "--name-only", rev).split())


def _unpacked(repo: Path, tmp_path: Path) -> tuple[str, Path]:
    pack = pack_workspace(repo, "HEAD")
    _git(repo, "branch", BRANCH, pack.base)
    dest = unpack_workspace(pack, tmp_path / "node" / "s1", BRANCH, cache_dir=tmp_path / "b")
    return pack.base, dest


def _logging_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `git` first on PATH that logs each run (the processes git starts itself are not)."""
    real = shutil.which("git")
    assert real is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "git.log"
    shim = bin_dir / "git"
    shim.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(real).parent}")
    return log


def test_a_writing_step_after_the_first_costs_five_git_processes(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, dest = _unpacked(git_repo, tmp_path)
    (dest / "a.txt").write_text("a\n")
    first = snapshot_for_shipping(dest, base, "step 1")
    assert first is not None
    log = _logging_git(tmp_path, monkeypatch)
    (dest / "b.txt").write_text("b\n")
    second = snapshot_for_shipping(dest, first.sha, "step 2")
    assert second is not None
    runs = log.read_text().splitlines()
    commands = [run.split()[4] for run in runs]  # after `-c … -c …`
    assert commands == ["rev-parse", "add", "write-tree", "commit-tree", "pack-objects"], runs
    monkeypatch.undo()
    receive_snapshot(git_repo, BRANCH, first)
    receive_snapshot(git_repo, BRANCH, second)  # thin on the first: the user has its objects
    assert _files(git_repo, BRANCH) >= {"a.txt", "b.txt"}
    assert _git(git_repo, "rev-parse", f"{BRANCH}^") == first.sha


def test_the_agent_s_index_changes_reach_the_next_snapshot(git_repo: Path, tmp_path: Path) -> None:
    """A tracked file that is ignored stays in snapshots while tracked; `git rm --cached` by
    the agent after a step drops it from the next one (the kept index is copied again)."""
    (git_repo / ".gitignore").write_text("*.log\n")
    (git_repo / "keep.log").write_text("tracked though ignored\n")
    _git(git_repo, "add", "-f", ".gitignore", "keep.log")
    _git(git_repo, "commit", "-q", "-m", "a tracked ignored file")
    base, dest = _unpacked(git_repo, tmp_path)
    (dest / "a.txt").write_text("a\n")
    first = snapshot_for_shipping(dest, base, "step 1")
    assert first is not None
    receive_snapshot(git_repo, BRANCH, first)
    assert "keep.log" in _files(git_repo, BRANCH)
    _git(dest, "rm", "-q", "--cached", "keep.log")
    second = snapshot_for_shipping(dest, first.sha, "step 2")
    assert second is not None
    receive_snapshot(git_repo, BRANCH, second)
    assert "keep.log" not in _files(git_repo, BRANCH)
    assert (dest / "keep.log").exists()  # the agent's files are untouched


def test_an_agent_commit_after_a_step_comes_back_as_the_second_parent(
    git_repo: Path, tmp_path: Path
) -> None:
    base, dest = _unpacked(git_repo, tmp_path)
    (dest / "a.txt").write_text("a\n")
    first = snapshot_for_shipping(dest, base, "step 1")
    assert first is not None
    assert snapshot_for_shipping(dest, first.sha, "nothing new") is None
    (dest / "feature.py").write_text("F = 1\n")
    _git(dest, "add", "feature.py")
    _git(dest, "-c", "user.name=agent", "-c", "user.email=a@x", "commit", "-q", "-m", "feature")
    second = snapshot_for_shipping(dest, first.sha, "step 2")
    assert second is not None
    receive_snapshot(git_repo, BRANCH, first)
    receive_snapshot(git_repo, BRANCH, second)
    assert _git(git_repo, "rev-parse", f"{BRANCH}^1") == first.sha
    assert _git(git_repo, "log", "-1", "--format=%s", f"{BRANCH}^2") == "feature"
    assert {"a.txt", "feature.py"} <= _files(git_repo, BRANCH)
    assert snapshot_for_shipping(dest, second.sha, "again") is None


def test_a_shipped_bundle_is_one_git_verifies(git_repo: Path, tmp_path: Path) -> None:
    base, dest = _unpacked(git_repo, tmp_path)
    (dest / "a.txt").write_text("a\n" * 1000)
    snap = snapshot_for_shipping(dest, base, "step 1")
    assert snap is not None
    path = tmp_path / "snap.bundle"
    path.write_bytes(snap.bundle)
    verified = subprocess.run(
        ["git", "bundle", "verify", str(path)], cwd=git_repo, capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stderr
    assert f"{snap.sha} refs/covey/ship/snapshot" in _git(
        git_repo, "bundle", "list-heads", str(path)
    )


def test_git_bytes_returns_binary_output_and_names_a_failure(git_repo: Path) -> None:
    from covey.errors import GitError
    from covey.git.repo import git_bytes

    blob = bytes(range(256))
    sha = git_bytes("hash-object", "-w", "--stdin", cwd=git_repo, stdin=blob).decode().strip()
    assert git_bytes("cat-file", "blob", sha, cwd=git_repo) == blob
    with pytest.raises(GitError, match=r"git cat-file blob nope failed in .*: fatal: "):
        git_bytes("cat-file", "blob", "nope", cwd=git_repo)
