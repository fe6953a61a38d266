"""A sandboxed Bash cannot plant what git would run outside the sandbox: hooks, configuration,
or a pointer to another git directory. It can still commit. Real bubblewrap, real git."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from covey.git.worktrees import open_worktree
from covey.tools import BashTool, ToolContext
from covey.tools.base import SandboxOptions
from test_worktrees_support import git, settings


def _bwrap_works() -> bool:
    if shutil.which("bwrap") is None:
        return False
    probe = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


pytestmark = pytest.mark.skipif(not _bwrap_works(), reason="bubblewrap missing or not allowed")


def sandboxed(workspace: Path, command: str) -> str:
    tool = BashTool()
    ctx = ToolContext(workspace=workspace, sandbox=SandboxOptions(enabled=True))
    return asyncio.run(tool.run(tool.parse({"command": command}), ctx))


def test_hooks_and_config_of_the_workspace_repository_are_read_only(git_repo: Path) -> None:
    config = (git_repo / ".git" / "config").read_text()
    for command in (
        "echo '#!/bin/sh' > .git/hooks/post-checkout",
        "touch .git/hooks/x",
        "echo '[core] fsmonitor = touch /tmp/x' >> .git/config",
        "git config core.fsmonitor 'touch /tmp/x'",
        "git config core.hooksPath .",
        "rm -rf .git/hooks",
        "mv .git/hooks .git/old-hooks",
        "mv .git .git-old && mkdir .git",
        "mv .git/config .git/config.old",
    ):
        out = sandboxed(git_repo, command)
        assert out.splitlines()[-1].startswith("Exit code"), command
    assert not (git_repo / ".git" / "hooks" / "x").exists()
    assert not (git_repo / ".git" / "hooks" / "post-checkout").exists()
    assert (git_repo / ".git" / "config").read_text() == config
    assert not (git_repo / ".git-old").exists()
    # The agent can still work with git: add, commit, branch.
    out = sandboxed(
        git_repo,
        "echo new > f.txt && git add f.txt && git commit -qm sandboxed && git log -1 --format=%s",
    )
    assert out == "sandboxed"


def test_a_planted_commondir_is_removed_after_the_command(git_repo: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil.git"
    git(tmp_path, "clone", "-q", "--bare", str(git_repo), str(evil))
    out = sandboxed(git_repo, f"echo {evil} > .git/commondir && echo planted")
    assert out.splitlines()[0] == "planted"
    assert "covey removed" in out and "commondir" in out
    assert not (git_repo / ".git" / "commondir").exists()


def test_a_linked_worktree_cannot_repoint_its_git_file(git_repo: Path) -> None:
    (git_repo / ".git" / "info" / "exclude").write_text(".covey/worktrees/\n")
    wt = open_worktree(git_repo, "feat", settings(), base=git(git_repo, "rev-parse", "HEAD"))
    gitfile = (wt.path / ".git").read_text()
    # From inside the worktree, and from the main checkout that holds it.
    for workspace, target in ((wt.path, ".git"), (git_repo, ".covey/worktrees/feat/.git")):
        out = sandboxed(workspace, f"echo 'gitdir: /tmp/elsewhere' > {target}")
        assert out.splitlines()[-1] == "Exit code 1"
        assert (wt.path / ".git").read_text() == gitfile
    admin = git_repo / ".git" / "worktrees" / "feat"
    out = sandboxed(git_repo, f"echo /tmp > {admin / 'commondir'}")
    assert out.splitlines()[-1] == "Exit code 1"
    assert (admin / "commondir").read_text() == "../..\n"


def test_a_missing_hooks_directory_cannot_be_made_either(git_repo: Path) -> None:
    shutil.rmtree(git_repo / ".git" / "hooks")
    out = sandboxed(git_repo, "mkdir -p .git/hooks && echo '#!/bin/sh' > .git/hooks/post-checkout")
    assert out.splitlines()[-1] == "Exit code 1"
    assert list((git_repo / ".git" / "hooks").iterdir()) == []
