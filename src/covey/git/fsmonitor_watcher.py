"""The watcher behind the radar's fsmonitor hook: inotify over every covey worktree.

    python -m covey.git.fsmonitor_watcher REPO_ROOT     (what `open_monitor` starts)
    threading.Thread(target=Watcher(root).run, daemon=True).start()   (to host it in a thread)

One per repository (the `lock` file of `fsmonitor.py` decides). It watches every directory of
each worktree under `.covey/worktrees/` (not the pool's, not symlinked ones, not `.git`), and
appends each changed path to that worktree's journal of the current token: a file's path for
a change of its content, mode, existence or name, a directory's path plus "/" for its
creation, deletion or move, and every path inside a directory that appears (created or moved
in, its contents listed after its watch is in place). Its tokens are `ID-N` with a random ID
per watcher, so a token of a watcher that died is never answered from a journal. It starts a
new token for a worktree when its journal passes `ROTATE_PATHS` (git then scans that worktree
once), and for every worktree when the kernel's event queue overflowed (watches rebuilt). A
worktree whose directories exceed the user's inotify watches is left unwatched: git scans it
in full. Limits of inotify itself: writes through a shared mmap and changes made to the
files through another mount are not seen.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import secrets
import select
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from covey.git import _inotify as ino
from covey.git.fsmonitor import IDLE_S, fsmonitor_dir
from covey.git.layout import worktrees_dir

__all__ = ["ROTATE_PATHS", "Watcher"]

ROTATE_PATHS = 20_000
"""A journal with more paths than this starts over under a new token."""
_DIR_MASK = (
    ino.IN_MODIFY
    | ino.IN_ATTRIB
    | ino.IN_CLOSE_WRITE
    | ino.IN_CREATE
    | ino.IN_DELETE
    | ino.IN_MOVED_FROM
    | ino.IN_MOVED_TO
    | ino.IN_DELETE_SELF
    | ino.IN_MOVE_SELF
    | ino.IN_ONLYDIR
    | ino.IN_DONT_FOLLOW
    | ino.IN_EXCL_UNLINK
)
_APPEARED = ino.IN_CREATE | ino.IN_MOVED_TO
_WENT = ino.IN_DELETE | ino.IN_MOVED_FROM
_SELF_GONE = ino.IN_DELETE_SELF | ino.IN_MOVE_SELF | ino.IN_IGNORED


class _OutOfWatches(Exception):
    """The user's inotify watch limit is reached."""


@dataclass
class _Tree:
    """One watched worktree and its journal of the current token."""

    name: str
    root: Path
    journal: Path
    token: str = ""
    fd: int | None = None
    seen: set[bytes] = field(default_factory=set)
    wds: set[int] = field(default_factory=set)


class Watcher:
    """Watches the covey worktrees of the repository whose main checkout is `root`; `run()`
    until `stop()`, `idle_s` without a sync, or the worktrees' directory disappearing."""

    def __init__(self, root: Path, *, idle_s: float = IDLE_S) -> None:
        self.root = root
        self.base = fsmonitor_dir(root)
        self.home = worktrees_dir(root)
        self.idle_s = idle_s
        self.id = secrets.token_hex(4)
        self._tokens = itertools.count(1)
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._inotify: ino.Inotify | None = None
        self._trees: dict[str, _Tree] = {}
        self._dirs: dict[int, tuple[_Tree, bytes]] = {}
        self._home_wd = self._cookies_wd = -1
        self._last_sync = time.monotonic()

    def stop(self) -> None:
        """Make `run()` return soon (from any thread)."""
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")

    def run(self) -> bool:
        """Watch until stopped, idle or the repository is gone. False at once when another
        watcher of the repository runs."""
        self.base.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.base / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if not _take(lock):
                return False
            os.ftruncate(lock, 0)
            os.write(lock, f"{os.getpid()} {self.id}\n".encode())
            try:
                self._loop()
            finally:
                self._teardown()
            return True
        finally:
            os.close(lock)

    def _loop(self) -> None:
        self._setup()
        poller = select.poll()
        poller.register(self._stop_r, select.POLLIN)
        assert self._inotify is not None
        fd = self._inotify.fd
        poller.register(fd, select.POLLIN)
        while self._home_wd >= 0:
            ready = {f for f, _ in poller.poll(1000)}
            if self._stop_r in ready or time.monotonic() - self._last_sync > self.idle_s:
                return
            if fd in ready and not self._handle_events():
                poller.unregister(fd)
                self._teardown()
                self._setup()  # the queue overflowed: start over, new tokens everywhere
                assert self._inotify is not None
                fd = self._inotify.fd
                poller.register(fd, select.POLLIN)

    def _setup(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.base / "ready")
        shutil.rmtree(self.base / "trees", ignore_errors=True)
        self._inotify = ino.Inotify()
        try:
            self._home_wd = self._inotify.add_watch(
                os.fsencode(self.home), _APPEARED | _WENT | _SELF_GONE | ino.IN_ONLYDIR
            )
        except OSError:
            self._home_wd = -1  # no worktrees directory: nothing to watch
            return
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.home):
                if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                    self._add_tree(entry.name)
        cookies = self.base / "cookies"
        cookies.mkdir(parents=True, exist_ok=True)
        self._cookies_wd = self._inotify.add_watch(os.fsencode(cookies), ino.IN_CREATE)
        for stale in os.listdir(cookies):  # made before this watch: handled, as of now
            with contextlib.suppress(OSError):
                os.unlink(cookies / stale)
        _write_atomic(self.base / "ready", self.id.encode())

    def _teardown(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.base / "ready")
        for tree in list(self._trees.values()):
            self._drop_tree(tree.name)
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None
        self._dirs.clear()

    def _handle_events(self) -> bool:
        """Handle the queued events in order, a cookie by deleting it (all the events before
        it are journaled by then). False when the kernel's queue overflowed."""
        assert self._inotify is not None
        cookies = os.fsencode(self.base / "cookies") + b"/"
        for event in self._inotify.read():
            if event.mask & ino.IN_Q_OVERFLOW:
                return False
            if event.wd == self._cookies_wd:
                if event.mask & ino.IN_CREATE:
                    self._last_sync = time.monotonic()
                    with contextlib.suppress(OSError):
                        os.unlink(cookies + event.name)
            elif event.wd == self._home_wd:
                self._home_event(event)
            else:
                self._tree_event(event)
        return True

    def _home_event(self, event: ino.Event) -> None:
        if event.mask & _SELF_GONE:
            self._home_wd = -1  # the worktrees' directory went: stop
            return
        name = os.fsdecode(event.name)
        if name.startswith(".") or not event.mask & ino.IN_ISDIR:
            return
        if event.mask & _WENT:
            self._drop_tree(name)
        elif event.mask & _APPEARED:
            self._drop_tree(name)
            self._add_tree(name)

    def _tree_event(self, event: ino.Event) -> None:
        known = self._dirs.get(event.wd)
        if known is None:
            return
        tree, rel = known
        if event.mask & _SELF_GONE:
            if event.mask & ino.IN_IGNORED:
                self._dirs.pop(event.wd, None)
                tree.wds.discard(event.wd)
            if not rel:  # the worktree itself was removed or moved
                self._drop_tree(tree.name)
            return
        path = rel + b"/" + event.name if rel else event.name
        if not event.mask & ino.IN_ISDIR:
            self._record(tree, path)
            return
        self._record(tree, path + b"/")
        if event.mask & _WENT:
            self._unwatch(tree, path)
        if event.mask & _APPEARED and event.name != b".git":
            self._unwatch(tree, path)
            try:
                self._watch(tree, path, report=True)
            except _OutOfWatches:
                self._give_up(tree)

    def _add_tree(self, name: str) -> None:
        tree = _Tree(name, self.home / name, self.base / "trees" / name)
        self._trees[name] = tree
        try:
            self._watch(tree, b"", report=False)
        except _OutOfWatches:
            self._give_up(tree)
            return
        tree.journal.mkdir(parents=True, exist_ok=True)
        self._new_token(tree)  # after the watches: git's first scan with it sees everything

    def _give_up(self, tree: _Tree) -> None:
        print(f"covey fsmonitor: out of inotify watches; {tree.root} is scanned in full")
        sys.stdout.flush()
        self._drop_tree(tree.name)

    def _drop_tree(self, name: str) -> None:
        tree = self._trees.pop(name, None)
        if tree is None:
            return
        for wd in tree.wds:
            if self._inotify is not None:
                self._inotify.rm_watch(wd)
            self._dirs.pop(wd, None)
        if tree.fd is not None:
            os.close(tree.fd)
        shutil.rmtree(tree.journal, ignore_errors=True)

    def _watch(self, tree: _Tree, rel: bytes, *, report: bool) -> None:
        """Watch directory `rel` of the tree and every directory below it; with `report`,
        journal every path found there (they appeared before their watch did)."""
        assert self._inotify is not None
        root = os.fsencode(tree.root)
        stack = [rel]
        while stack:
            here = stack.pop()
            full = root + b"/" + here if here else root
            try:
                wd = self._inotify.add_watch(full, _DIR_MASK)
            except OSError as e:
                if e.errno == errno.ENOSPC:
                    raise _OutOfWatches from None
                continue  # gone already (its parent's event says so) or not a directory
            self._dirs[wd] = (tree, here)
            tree.wds.add(wd)
            try:
                entries = list(os.scandir(full))
            except OSError:
                continue
            for entry in entries:
                path = here + b"/" + entry.name if here else entry.name
                if report:
                    self._record(tree, path)
                if entry.name != b".git" and entry.is_dir(follow_symlinks=False):
                    stack.append(path)

    def _unwatch(self, tree: _Tree, rel: bytes) -> None:
        """Stop watching directory `rel` and those below it (moved or deleted)."""
        below = rel + b"/"
        for wd, (owner, here) in list(self._dirs.items()):
            if owner is tree and (here == rel or here.startswith(below)):
                assert self._inotify is not None
                self._inotify.rm_watch(wd)
                self._dirs.pop(wd, None)
                tree.wds.discard(wd)

    def _record(self, tree: _Tree, path: bytes) -> None:
        if tree.fd is None or path in tree.seen:
            return  # no token yet: git's first scan with the coming one covers it
        tree.seen.add(path)
        os.write(tree.fd, path + b"\0")
        if len(tree.seen) > ROTATE_PATHS:
            self._new_token(tree)

    def _new_token(self, tree: _Tree) -> None:
        """Start a journal under a new token, then make it current, then drop the old one."""
        token = f"{self.id}-{next(self._tokens)}"
        fd = os.open(
            tree.journal / token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644
        )
        os.write(fd, token.encode() + b"\0")
        _write_atomic(tree.journal / "now", token.encode() + b"\0/")
        if tree.fd is not None:
            os.close(tree.fd)
            with contextlib.suppress(OSError):
                os.unlink(tree.journal / tree.token)
        tree.token, tree.fd, tree.seen = token, fd, set()


def _take(lock: int) -> bool:
    """The watcher's lock, retried briefly (a scan probing it holds it for a moment)."""
    for _ in range(20):
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(0.01)
    return False


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m covey.git.fsmonitor_watcher REPO_ROOT", file=sys.stderr)
        return 2
    import signal

    watcher = Watcher(Path(argv[0]).resolve())
    signal.signal(signal.SIGTERM, lambda *_: watcher.stop())
    return 0 if watcher.run() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
