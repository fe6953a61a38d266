"""What receiving a node's snapshot costs the user's machine, in git processes (a `git` on
PATH that logs each run before it runs the real one): one unbundle, one read of the
commit, one compare-and-swap `update-ref`."""

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

BRANCH = "worktree-bg-cost"


def _logging_git(tmp_path: Path) -> Path:
    real = shutil.which("git")
    assert real is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "git"
    shim.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "git.log"}\nexec {real} "$@"\n')
    shim.chmod(0o755)
    return bin_dir


def test_receiving_a_snapshot_runs_three_git_processes(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack = pack_workspace(git_repo, "HEAD")
    subprocess.run(["git", "branch", BRANCH, pack.base], cwd=git_repo, check=True)
    dest = unpack_workspace(pack, tmp_path / "node" / "s1", BRANCH, cache_dir=tmp_path / "b")
    (dest / "new.txt").write_text("x\n")
    snap = snapshot_for_shipping(dest, pack.base, "step")
    assert snap is not None
    bin_dir = _logging_git(tmp_path)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(shutil.which('git') or '').parent}")
    receive_snapshot(git_repo, BRANCH, snap)
    runs = (tmp_path / "git.log").read_text().splitlines()
    assert len(runs) == 3, runs
    shown = subprocess.run(
        ["git", "show", f"{BRANCH}:new.txt"], cwd=git_repo, capture_output=True, text=True
    )
    assert shown.stdout == "x\n"


def test_a_snapshot_on_the_node_reads_head_and_the_parent_tree_in_one_process(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack = pack_workspace(git_repo, "HEAD")
    dest = unpack_workspace(pack, tmp_path / "node" / "s1", BRANCH, cache_dir=tmp_path / "b")
    bin_dir = _logging_git(tmp_path)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(shutil.which('git') or '').parent}")
    assert snapshot_for_shipping(dest, pack.base, "step") is None  # nothing changed
    runs = (tmp_path / "git.log").read_text().splitlines()
    assert sum("rev-parse" in run for run in runs) == 2, runs  # that one and --git-path
    (dest / "new.txt").write_text("x\n")
    snap = snapshot_for_shipping(dest, pack.base, "step")
    assert snap is not None and snap.parent == pack.base
