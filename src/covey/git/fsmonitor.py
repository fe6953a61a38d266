"""Fast `git status` for the overlap radar: git's fsmonitor hook, fed by covey's file watcher.

A plain `git status` lstats every tracked file (a million for 50 worktrees of 20,000 files).
git can skip that when `core.fsmonitor` names a hook (protocol v2, githooks(5)
"fsmonitor-watchman"): git passes the token it saved in the index, the hook prints a new token,
NUL, then the NUL-separated paths that may have changed since that token, or `/` for "anything
may have": git then lstats only those paths and, with the untracked cache, re-reads only the
directories they are in. The radar uses it like this:

- Its own copy of each worktree's index (`<admin>/covey-status-index`, remade whenever git
  rewrites the real one), which its `git status` may write (saving the token and the untracked
  cache) without ever taking the agent's index lock.
- A watcher process per repository (`fsmonitor_watcher.py`, inotify) journals the paths
  changed in each covey worktree since a token it made; started on demand, it exits after
  `IDLE_S` without a scan.
- A POSIX sh hook prints the journal of the token git asks about, or the current token and
  `/` for any other token (so git scans everything once and saves the current token).
- Before each scan the radar makes sure the watcher is alive and has handled every event
  queued so far (a cookie file, as git's own fsmonitor daemon does); otherwise that scan runs
  without the hook, a full `git status`, and the index copy loses the old token. Correctness
  never depends on the watcher: a missing, stopped or lagging one only costs speed.

Files, under the repository's shared git directory:

    covey/fsmonitor/lock          flock'ed by the live watcher, which writes its pid into it
    covey/fsmonitor/ready         the live watcher's id, once every worktree is watched
    covey/fsmonitor/hook          the hook (`core.fsmonitor` = "hook JOURNAL")
    covey/fsmonitor/started       the pid of the watcher process a scan started last
    covey/fsmonitor/cookies/      sync cookies: the watcher deletes one once it has handled
                                  every event queued before it
    covey/fsmonitor/trees/NAME/   the journal of worktree NAME:
        now                       "TOKEN\\0/": the current token, "anything may have changed"
        TOKEN                     "TOKEN\\0" then each path changed since TOKEN was made, "\\0"
                                  after each
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from covey import proc
from covey.git.layout import admin_dir, common_dir

__all__ = [
    "HOOK",
    "IDLE_S",
    "SYNC_TIMEOUT_S",
    "Monitor",
    "StatusRun",
    "fsmonitor_dir",
    "open_monitor",
    "stop_watcher",
    "watcher_pid",
]

IDLE_S = 300.0
"""A watcher exits after this long without a scan asking it to sync."""
SYNC_TIMEOUT_S = 0.5
"""How long a scan waits for the watcher to catch up before it scans without it."""
_WATCHER = "covey.git.fsmonitor_watcher"
PRIVATE_INDEX = "covey-status-index"

HOOK = """#!/bin/sh
# covey's fsmonitor hook, protocol v2 (githooks(5), "fsmonitor-watchman").
# $1: the worktree's journal directory; $2: the protocol version; $3: git's last token.
case $3 in *[!0-9a-z-]*|'') ;; *) [ -f "$1/$3" ] && exec cat "$1/$3" ;; esac
[ -f "$1/now" ] && exec cat "$1/now"
printf 'covey-none\\0/'
"""
"""Prints the journal of git's token when the watcher keeps one, else a token and `/`."""

_COOKIES = itertools.count()


def fsmonitor_dir(root: Path) -> Path:
    """`<common>/covey/fsmonitor` of the repository whose main checkout is `root`."""
    return common_dir(root) / "covey" / "fsmonitor"


@dataclass(frozen=True)
class StatusRun:
    """How to run `git status` in one worktree: global options, environment, and whether the
    command may write its index (its own copy: then without `--no-optional-locks`)."""

    options: list[str]
    env: dict[str, str] = field(default_factory=dict)
    writes_index: bool = False


_FULL = StatusRun([])
"""A plain `git status`, with `--no-optional-locks`: every file lstat'ed."""


@dataclass(frozen=True)
class Monitor:
    """The repository's fsmonitor state for one scan: `synced` when the watcher is alive and
    has caught up, so its hook may answer for git."""

    base: Path
    synced: bool

    @contextlib.contextmanager
    def status_run(self, worktree: Path, name: str) -> Iterator[StatusRun]:
        """Options for a `git status` in `worktree` (named `name`), valid while held: the
        radar's own index copy is locked for that long (a second scan at the same time runs
        the plain, slower status)."""
        admin = admin_dir(worktree)
        if admin is None:
            yield _FULL
            return
        with _locked(admin / f"{PRIVATE_INDEX}.flock") as mine:
            index = _fresh_copy(admin) if mine else None
            if index is None:
                yield _FULL
                return
            hook = f"{shlex.quote(str(self.base / 'hook'))} "
            hook += shlex.quote(str(self.base / "trees" / name))
            options = [
                *("-c", f"core.fsmonitor={hook}" if self.synced else "core.fsmonitor=false"),
                *("-c", "core.fsmonitorHookVersion=2"),
                *("-c", "core.untrackedCache=true"),
                *("-c", "status.showUntrackedFiles=all"),  # lets -uall use the cache
                *("-c", "core.splitIndex=false"),
            ]
            yield StatusRun(options, {"GIT_INDEX_FILE": str(index)}, writes_index=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[bool]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        yield False
        return
    try:
        yield True
    finally:
        os.close(fd)


def _fresh_copy(admin: Path) -> Path | None:
    """The radar's copy of the worktree's index, copied again when git has replaced the real
    one since (its inode, size or times differ). The copy keeps the real index's mtime, so git
    still sees the same "racily clean" entries. None when the index cannot be read."""
    mine, stamp = admin / PRIVATE_INDEX, admin / f"{PRIVATE_INDEX}.src"
    try:
        with open(admin / "index", "rb") as real:
            st = os.fstat(real.fileno())
            signature = f"{st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"
            with contextlib.suppress(OSError):
                if stamp.read_text() == signature and mine.exists():
                    return mine
            data = real.read()
        tmp = admin / f"{PRIVATE_INDEX}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_bytes(data)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, mine)
        stamp.write_text(signature)
    except OSError:
        return None
    return mine


def open_monitor(root: Path, *, start: bool = True) -> Monitor:
    """The fsmonitor state of the repository whose main checkout is `root`, synced with its
    watcher when one is ready; with `start`, a watcher is started when none runs (this scan
    goes without it)."""
    base = fsmonitor_dir(root)
    try:
        (base / "cookies").mkdir(parents=True, exist_ok=True)
        _write_hook(base / "hook")
    except OSError:
        return Monitor(base, synced=False)
    if watcher_pid(root) is None:
        if start and _started_pid(root) is None:
            _start_watcher(root, base)
        return Monitor(base, synced=False)
    if not (base / "ready").exists():  # still watching the worktrees
        return Monitor(base, synced=False)
    return Monitor(base, synced=_sync(base / "cookies"))


def _write_hook(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.read_text() == HOOK and os.access(path, os.X_OK):
            return
    tmp = path.with_name(f"hook.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(HOOK)
    tmp.chmod(0o755)
    os.replace(tmp, path)


def watcher_pid(root: Path) -> int | None:
    """The pid of the repository's live watcher (one running in a thread: this process's);
    None when none holds the lock."""
    lock = fsmonitor_dir(root) / "lock"
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:  # held: alive
        with contextlib.suppress(OSError, ValueError):
            return int(os.read(fd, 64).decode().split()[0])
        return -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _start_watcher(root: Path, base: Path) -> None:
    argv = [sys.executable, "-m", _WATCHER, str(root)]
    with contextlib.suppress(proc.ProcessStartError, OSError):
        pid = proc.spawn_detached(argv, cwd=root, log_path=base / "watcher.log")
        (base / "started").write_text(f"{pid}\n")


def _started_pid(root: Path) -> int | None:
    """The watcher process last started here, while it runs (it may not hold the lock yet)."""
    with contextlib.suppress(OSError, ValueError):
        pid = int((fsmonitor_dir(root) / "started").read_text())
        if _WATCHER.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    return None


def _sync(cookies: Path) -> bool:
    """True once the watcher has deleted a fresh cookie: it has then handled every event
    queued before the cookie was made. False after `SYNC_TIMEOUT_S`."""
    cookie = cookies / f"{os.getpid()}-{threading.get_ident()}-{next(_COOKIES)}"
    try:
        os.close(os.open(cookie, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
    except OSError:
        return False
    deadline, pause = time.monotonic() + SYNC_TIMEOUT_S, 0.0002
    while time.monotonic() < deadline:
        if not os.path.lexists(cookie):
            return True
        time.sleep(pause)
        pause = min(pause * 2, 0.01)
    try:
        cookie.unlink()
    except FileNotFoundError:  # handled just now
        return True
    except OSError:
        pass
    return False


def stop_watcher(root: Path, timeout_s: float = 5.0) -> bool:
    """Ask the repository's watcher process to exit (SIGTERM) and wait for it; True when none
    runs any more."""
    for pid in {watcher_pid(root), _started_pid(root)}:
        if pid is not None and pid > 0 and pid != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if watcher_pid(root) is None and _started_pid(root) is None:
            return True
        time.sleep(0.01)
    return False
