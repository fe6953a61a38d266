"""The radar's fsmonitor: the watcher, the hook and the radar's own index, over real repositories.

Each test compares the radar with what git says without any of it, after edits, creations,
deletions, renames, and changes made while no watcher ran.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from covey.git import fsmonitor
from covey.git.fsmonitor import HOOK, fsmonitor_dir, open_monitor, stop_watcher, watcher_pid
from covey.git.fsmonitor_watcher import Watcher
from covey.git.layout import admin_dir
from covey.git.overlaps import live_worktrees, worktree_changes


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


def write(cwd: Path, path: str, text: str) -> None:
    (cwd / path).parent.mkdir(parents=True, exist_ok=True)
    (cwd / path).write_text(text)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@covey.invalid")
    git(root, "config", "user.name", "covey test")
    (root / ".git" / "info" / "exclude").write_text(".covey/worktrees/\n")
    for i in range(30):
        write(root, f"pkg{i % 3}/mod{i}.py", f"{i}\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    for name in ("a", "b"):
        add_worktree(root, name)
    return root


def add_worktree(repo: Path, name: str) -> Path:
    path = repo / ".covey" / "worktrees" / name
    git(repo, "worktree", "add", "-q", "-b", f"worktree-{name}", str(path), "HEAD")
    return path


def wait_for(condition: object, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def watcher(repo: Path) -> Iterator[Watcher]:
    """A watcher running in a thread of the test, ready (every worktree watched)."""
    w = Watcher(repo)
    thread = threading.Thread(target=w.run)
    thread.start()
    wait_for(lambda: (fsmonitor_dir(repo) / "ready").exists(), "the watcher")
    yield w
    w.stop()
    thread.join(10)
    assert not thread.is_alive()


def truth(repo: Path) -> dict[str, set[str]]:
    """What plain git says changed in each worktree (all uncommitted here)."""
    found = {}
    for name, wt in live_worktrees(repo).worktrees.items():
        out = git(wt.path, "--no-optional-locks", "status", "--porcelain", "-z", "-uall")
        found[name] = {e[3:] for e in out.split("\0") if len(e) > 3}
    return found


def scan(repo: Path) -> dict[str, set[str]]:
    return worktree_changes(live_worktrees(repo), watch=False)


def token_in_radar_index(worktree: Path) -> bytes:
    admin = admin_dir(worktree)
    assert admin is not None
    data = (admin / fsmonitor.PRIVATE_INDEX).read_bytes()
    at = data.find(b"FSMN")
    assert at > 0, "the radar's index has no fsmonitor token"
    return data[at + 12 : data.index(b"\0", at + 12)]


def test_edits_creations_deletions_and_renames(repo: Path, watcher: Watcher) -> None:
    a, b = repo / ".covey/worktrees/a", repo / ".covey/worktrees/b"
    assert scan(repo) == {"a": set(), "b": set()}  # a full scan: saves the watcher's token
    assert scan(repo) == {"a": set(), "b": set()}
    assert token_in_radar_index(a).startswith(watcher.id.encode())
    write(a, "pkg0/mod0.py", "edited\n")
    write(a, "new/deep/file.py", "created\n")
    (a / "pkg1/mod1.py").unlink()
    (a / "pkg2/mod2.py").rename(a / "pkg2/renamed.py")
    (a / "pkg0/mod3.py").chmod(0o755)
    write(b, "pkg0/mod0.py", "edited in b\n")
    (b / "pkg1").rename(b / "moved")  # a directory of tracked files
    assert scan(repo) == truth(repo)
    assert scan(repo)["a"] == {
        "pkg0/mod0.py",
        "new/deep/file.py",
        "pkg1/mod1.py",
        "pkg2/mod2.py",
        "pkg2/renamed.py",
        "pkg0/mod3.py",
    }
    assert "moved/mod4.py" in scan(repo)["b"] and "pkg1/mod4.py" in scan(repo)["b"]
    journal = (fsmonitor_dir(repo) / "trees" / "a" / token_in_radar_index(a).decode()).read_bytes()
    assert b"pkg0/mod0.py\0" in journal  # the change came through the hook


def test_a_reverted_file_drops_out(repo: Path, watcher: Watcher) -> None:
    a = repo / ".covey/worktrees/a"
    scan(repo)
    write(a, "pkg0/mod0.py", "edited\n")
    write(a, "scratch.txt", "untracked\n")
    assert scan(repo)["a"] == {"pkg0/mod0.py", "scratch.txt"}
    write(a, "pkg0/mod0.py", "0\n")
    (a / "scratch.txt").unlink()
    assert scan(repo)["a"] == set()


def test_staged_and_committed_changes(repo: Path, watcher: Watcher) -> None:
    a = repo / ".covey/worktrees/a"
    scan(repo)
    write(a, "pkg0/mod0.py", "staged\n")
    git(a, "add", "pkg0/mod0.py")  # the real index changes: the radar copies it again
    write(a, "pkg0/mod0.py", "0\n")  # back to HEAD in the worktree, still staged
    assert scan(repo) == truth(repo) == {"a": {"pkg0/mod0.py"}, "b": set()}
    git(a, "commit", "-q", "-m", "staged")
    assert scan(repo)["a"] == {"pkg0/mod0.py"}  # committed since the base
    git(a, "reset", "-q", "--hard", "HEAD~1")
    assert scan(repo)["a"] == set()


def test_changes_made_while_no_watcher_ran(repo: Path) -> None:
    a = repo / ".covey/worktrees/a"
    first = Watcher(repo)
    thread = threading.Thread(target=first.run)
    thread.start()
    wait_for(lambda: (fsmonitor_dir(repo) / "ready").exists(), "the watcher")
    scan(repo)
    scan(repo)  # the radar's index now holds a token of the first watcher
    first.stop()
    thread.join(10)
    write(a, "pkg0/mod0.py", "edited while unwatched\n")
    write(a, "pkg1/new.py", "created while unwatched\n")
    assert scan(repo)["a"] == {"pkg0/mod0.py", "pkg1/new.py"}  # no watcher: a full scan
    second = Watcher(repo)
    thread = threading.Thread(target=second.run)
    thread.start()
    try:
        wait_for(lambda: (fsmonitor_dir(repo) / "ready").exists(), "the second watcher")
        write(a, "pkg2/mod2.py", "edited just after\n")
        assert scan(repo)["a"] == {"pkg0/mod0.py", "pkg1/new.py", "pkg2/mod2.py"}
        assert scan(repo) == truth(repo)
        assert token_in_radar_index(a).startswith(second.id.encode())
    finally:
        second.stop()
        thread.join(10)


def test_a_worktree_made_while_watching(repo: Path, watcher: Watcher) -> None:
    scan(repo)
    c = add_worktree(repo, "c")
    write(c, "pkg0/mod0.py", "in c\n")
    scan(repo)
    write(c, "pkg1/mod1.py", "later in c\n")
    assert scan(repo)["c"] == {"pkg0/mod0.py", "pkg1/mod1.py"}
    assert scan(repo) == truth(repo)


def test_the_hook_answers(tmp_path: Path) -> None:
    hook = tmp_path / "hook"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    journal = tmp_path / "journal"

    def ask(token: str) -> bytes:
        done = subprocess.run([str(hook), str(journal), "2", token], capture_output=True)
        assert done.returncode == 0
        return done.stdout

    assert ask("123") == b"covey-none\0/"  # no journal: everything may have changed
    journal.mkdir()
    (journal / "now").write_bytes(b"ab-2\0/")
    (journal / "ab-2").write_bytes(b"ab-2\0x.py\0")
    assert ask("ab-2") == b"ab-2\0x.py\0"
    assert ask("ab-1") == b"ab-2\0/"  # an old token
    assert ask("../now") == b"ab-2\0/"


def test_the_radar_starts_a_watcher_process(repo: Path) -> None:
    try:
        assert not open_monitor(repo).synced  # none ran: this scan goes without
        wait_for(lambda: (fsmonitor_dir(repo) / "ready").exists(), "the started watcher")
        assert watcher_pid(repo) is not None
        assert open_monitor(repo, start=False).synced
        write(repo / ".covey/worktrees/b", "pkg0/mod0.py", "b\n")
        scan(repo)
        assert scan(repo) == truth(repo)
    finally:
        assert stop_watcher(repo)
    assert watcher_pid(repo) is None
    assert not open_monitor(repo, start=False).synced


def test_public_surface() -> None:
    from covey.git import fsmonitor_watcher

    assert sorted(fsmonitor.__all__) == [
        "HOOK",
        "IDLE_S",
        "Monitor",
        "SYNC_TIMEOUT_S",
        "StatusRun",
        "fsmonitor_dir",
        "open_monitor",
        "stop_watcher",
        "watcher_pid",
    ]
    assert sorted(fsmonitor_watcher.__all__) == ["ROTATE_PATHS", "Watcher"]
