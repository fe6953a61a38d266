"""Helpers shared by the worktree tests: real git repositories, a bare remote, hook scripts.

(No tests here; the name keeps it with the files it serves.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from covey import proc
from covey.config import WorktreeSettings

__all__ = ["ScriptHooks", "clone_with_remote", "commit", "git", "settings"]


def git(cwd: Path, *args: str) -> str:
    """Run git in a test, failing loudly; return stdout without the trailing newline."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str = "change") -> str:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def clone_with_remote(tmp_path: Path, source: Path) -> tuple[Path, Path]:
    """A bare remote made from `source` and a clone of it (origin/HEAD set): (clone, remote)."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(remote))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    git(clone, "config", "user.email", "test@covey.invalid")
    git(clone, "config", "user.name", "covey test")
    return clone, remote


def settings(**kwargs: object) -> WorktreeSettings:
    return WorktreeSettings.model_validate(kwargs)


_CREATE = """
import json, pathlib, subprocess, sys
name = json.load(sys.stdin)["name"]
path = pathlib.Path.cwd().parent / f"hooked-{name}"
subprocess.run(["git", "worktree", "add", "-q", "-b", f"hooked-{name}", str(path)],
               check=True, stdout=sys.stderr)
print("made it")
print(path)
print()
"""
_REMOVE = """
import json, pathlib, sys
data = json.load(sys.stdin)
pathlib.Path(sys.argv[1]).write_text(data["worktree_path"])
"""


class ScriptHooks:
    """WorktreeCreate / WorktreeRemove run as real hook scripts (stdin JSON, as in Claude
    Code), through covey.proc; the path is the last non-empty stdout line."""

    def __init__(self, root: Path, log: Path, *, create: bool = True) -> None:
        self.root, self.log, self.has_create = root, log, create

    def create(self, name: str) -> Path | None:
        if not self.has_create:
            return None
        data = json.dumps({"hook_event_name": "WorktreeCreate", "name": name}).encode()
        done = proc.run([sys.executable, "-c", _CREATE], cwd=self.root, stdin=data, check=True)
        return Path([line for line in done.stdout.splitlines() if line.strip()][-1])

    def remove(self, path: Path) -> None:
        data = json.dumps({"hook_event_name": "WorktreeRemove", "worktree_path": str(path)})
        proc.run([sys.executable, "-c", _REMOVE, str(self.log)], cwd=self.root,
                 stdin=data.encode(), check=True)  # fmt: skip
