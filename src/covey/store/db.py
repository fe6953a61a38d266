"""The store's SQLite connection: one file, WAL, short transactions, many processes at once.

    store = Store.open()                  # $COVEY_HOME/covey.db, checked and migrated
    with store.write() as conn:           # one BEGIN IMMEDIATE transaction
        sessions.update_session(conn, sid, epoch, state="idle")
        events.append_event(conn, sid, "state", {"state": "idle"})
    with store.read() as conn:            # one consistent snapshot
        rows = sessions.list_sessions(conn)

Threads: every thread that uses a Store gets its own connection, made on first use and closed
when the thread ends or by `close()`; a connection never crosses threads. So a host may call
the store from its event loop thread and from `asyncio.to_thread` workers alike. A nested
`write()` on one thread is a savepoint inside the outer transaction; a nested `read()` joins the
outer block. A Store does not survive `fork`: open a new one in the child.

Writers never see "database is locked": `BEGIN IMMEDIATE` takes the write lock up front (so a
transaction never has to upgrade; in WAL mode nothing inside it can then be busy), and taking
it is retried until `retry_for_s` has passed; only then `StoreBusy` is raised. Each attempt lets
SQLite's busy handler wait `busy_timeout_s` (short), then sleeps 0.25-5 ms with jitter. That is
fairer than one long busy_timeout, whose back-off grows to 100 ms naps while other processes
take the lock: with 16 writer processes the slowest write took ~0.2 s instead of ~1.3 s
(bench/store.py). A read block takes its snapshot the same way, so readers retry too. The
threads of one process first queue for a `threading.Lock` per store file, handed over as soon
as a writer commits, where SQLite's busy handler sleeps 1-20 ms between looks (an event loop
that writes waited behind its own worker threads that way).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from covey.errors import StoreBusy, StoreWriteFailed, UserError
from covey.home import private_file, private_home
from covey.store._check import check_store_file, error_code, newer_schema, open_failure
from covey.store._checkpointer import Checkpointer
from covey.store._tx import begin_read, retry_busy, rollback
from covey.store.migrations import MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "BUSY_TIMEOUT_S",
    "RETRY_FOR_S",
    "Store",
    "StoreBusy",
    "StoreStatistics",
    "StoreWriteFailed",
]

BUSY_TIMEOUT_S = 0.05
"""How long SQLite's own busy handler waits for a lock in one attempt."""
RETRY_FOR_S = 30.0
"""How long a lock is retried in all before `StoreBusy` is raised."""

T = TypeVar("T")


_VERIFIED: set[str] = set()
"""Store files this process has checked already (see `Store.open`)."""
_VERIFIED_LOCK = threading.Lock()
_WRITERS: dict[str, threading.Lock] = {}
"""Per store file: held by this process's thread that is inside a write transaction."""


_WRITE_FAILURES = {
    sqlite3.SQLITE_FULL: "the disk is full",
    sqlite3.SQLITE_IOERR: "disk I/O error (is the disk full or failing?)",
}


def _write_failure(path: Path, e: sqlite3.Error) -> StoreWriteFailed | None:
    why = _WRITE_FAILURES.get(error_code(e))
    if why is None:
        return None
    return StoreWriteFailed(
        f"{path}: cannot write the covey store: {why}; free some space and try again "
        "(the failed step was not saved; a session resumes from its last saved step)"
    )


@dataclass(frozen=True)
class StoreStatistics:
    connections: int
    """Open connections (one per thread that used the store, plus the version poller)."""
    busy_retries: int
    """Attempts to take a lock that stayed busy for `busy_timeout_s` and were retried."""


class _Owner:
    """Held only by a thread's _ThreadState: it is dropped when the thread ends."""


class _ThreadState(threading.local):
    conn: sqlite3.Connection | None = None
    owner: _Owner | None = None
    depth: int = 0
    """How many read()/write() blocks this thread is inside."""
    writing: bool = False


class Store:
    """One SQLite store file. Make it with `Store.open`; close it with `close()` (or `with`)."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        retry_for_s: float = RETRY_FOR_S,
    ) -> None:
        """Wrap `path` without checking or migrating it; use `Store.open` instead."""
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        self._retry_for_s = retry_for_s
        self._pid = os.getpid()
        self._lock = threading.Lock()
        with _VERIFIED_LOCK:
            self._writer = _WRITERS.setdefault(str(path), threading.Lock())
        self._version_lock = threading.Lock()
        self._local = _ThreadState()
        self._conns: list[sqlite3.Connection] = []
        self._version_conn: sqlite3.Connection | None = None
        self._busy_retries = 0
        self._closed = False
        self._checkpointer: Checkpointer | None = None

    @classmethod
    def open(
        cls,
        path: Path | None = None,
        *,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        retry_for_s: float = RETRY_FOR_S,
    ) -> Store:
        """Open (creating it if absent) and migrate the store at `path`, default
        `$COVEY_HOME/covey.db`. An unusable file raises UserError and is left untouched."""
        path = path if path is not None else private_home() / "covey.db"
        key = str(path.resolve())
        with _VERIFIED_LOCK:
            if key not in _VERIFIED:
                # Read the raw file once per process: closing any descriptor of a file drops
                # this process's POSIX locks on it, which would break an open connection's.
                check_store_file(path, SCHEMA_VERSION)
                _VERIFIED.add(key)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"{path.parent}: cannot create the directory ({e.strerror})") from None
        try:
            private_file(path)  # 0600; SQLite gives -wal and -shm the same mode
        except OSError as e:
            raise UserError(f"{path}: cannot create the covey store ({e.strerror})") from None
        store = cls(path, busy_timeout_s=busy_timeout_s, retry_for_s=retry_for_s)
        try:
            store._migrate()
        except BaseException:
            store.close()
            raise
        return store

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE): committed on success, rolled back on error."""
        conn, state = self._conn(), self._local
        if state.depth:
            if not state.writing:
                raise RuntimeError("store.write() inside store.read() on one thread")
            with self._savepoint(conn, state):
                yield conn
            return
        if not self._writer.acquire(timeout=self._retry_for_s):
            raise StoreBusy(
                f"{self.path}: another thread kept the store locked for over "
                f"{self._retry_for_s:g} s"
            )
        try:
            self._retry(lambda: conn.execute("BEGIN IMMEDIATE"))
            state.depth, state.writing = 1, True
            try:
                yield conn
                self._retry(lambda: conn.execute("COMMIT"))
            except sqlite3.Error as e:
                rollback(conn)
                failure = _write_failure(self.path, e)
                if failure is None:
                    raise
                raise failure from e
            except BaseException:
                rollback(conn)
                raise
            finally:
                state.depth, state.writing = 0, False
        except sqlite3.Error as e:  # BEGIN failed
            failure = _write_failure(self.path, e)
            if failure is None:
                raise
            raise failure from e
        finally:
            self._writer.release()

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for reads. Anything written inside it is discarded."""
        conn, state = self._conn(), self._local
        if state.depth:
            state.depth += 1
            try:
                yield conn
            finally:
                state.depth -= 1
            return
        self._retry(lambda: begin_read(conn))
        state.depth = 1
        try:
            yield conn
        finally:
            state.depth = 0
            rollback(conn)

    def data_version(self) -> int:
        """A number that changes whenever any connection (this process or another) commits.

        Read through a connection of its own that never writes, so UIs can poll it (~50 ms)
        and re-read only when it moved. Only equality is meaningful, not order."""
        with self._version_lock:
            if self._version_conn is None:
                self._version_conn = self._connect(register=False)
            return int(self._version_conn.execute("PRAGMA data_version").fetchone()[0])

    def statistics(self) -> StoreStatistics:
        with self._lock:
            n = len(self._conns) + (self._version_conn is not None)
            return StoreStatistics(connections=n, busy_retries=self._busy_retries)

    def checkpoint_in_background(self) -> None:
        """Checkpoint the WAL on a thread of this store's own from now on, not inside the
        commits of the threads that write (`_checkpointer`); `close()` stops it."""
        with self._lock:
            self._check_usable()
            if self._checkpointer is not None:
                return
            self._checkpointer = Checkpointer(lambda: self._connect(register=False))
        self._checkpointer.start()

    def close(self) -> None:
        """Close every connection of every thread. Call it once no thread uses the store."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        with self._version_lock:
            if self._version_conn is not None:
                conns.append(self._version_conn)
                self._version_conn = None
        for conn in conns:
            conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def _migrate(self) -> None:
        try:
            first = self._conn()
            mode = self._retry(lambda: first.execute("PRAGMA journal_mode").fetchone()[0])
            if str(mode).lower() != "wal":
                self._retry(lambda: first.execute("PRAGMA journal_mode = WAL").fetchone())
            while True:
                with self.write() as conn:
                    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                    if version > SCHEMA_VERSION:
                        raise UserError(newer_schema(self.path, version, SCHEMA_VERSION))
                    if version == SCHEMA_VERSION:
                        return
                    MIGRATIONS[version](conn)
                    conn.execute(f"PRAGMA user_version = {version + 1}")
        except sqlite3.Error as e:
            full = error_code(e) == sqlite3.SQLITE_FULL
            failure = _write_failure(self.path, e) if full else open_failure(self.path, e)
            if failure is None:
                raise
            raise failure from None

    def _conn(self) -> sqlite3.Connection:
        conn = self._local.conn
        if conn is not None and not self._closed and os.getpid() == self._pid:
            return conn
        conn = self._connect()
        owner = _Owner()
        weakref.finalize(owner, self._forget, conn)  # the thread ended: close its connection
        self._local.conn, self._local.owner = conn, owner
        self._local.depth, self._local.writing = 0, False
        return conn

    def _forget(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)
        conn.close()

    def _check_usable(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        if os.getpid() != self._pid:
            raise RuntimeError(f"{self!r} was opened before a fork; open a new Store in the child")

    def _connect(self, *, register: bool = True) -> sqlite3.Connection:
        """A new connection, set up (retrying while a fresh store is being created)."""
        with self._lock:
            self._check_usable()
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_s,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # closed from close(); used by its own thread only
        )
        try:
            self._retry(lambda: conn.execute("PRAGMA foreign_keys = ON"))
            self._retry(lambda: conn.execute("PRAGMA synchronous = NORMAL"))
            with self._lock:
                self._check_usable()
                if register:
                    self._conns.append(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _savepoint(self, conn: sqlite3.Connection, state: _ThreadState) -> Iterator[None]:
        name = f"covey_{state.depth}"
        conn.execute(f"SAVEPOINT {name}")
        state.depth += 1
        try:
            yield
        except BaseException:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
            raise
        else:
            conn.execute(f"RELEASE {name}")
        finally:
            state.depth -= 1

    def _retry(self, op: Callable[[], T]) -> T:
        try:
            return retry_busy(op, self._retry_for_s, self._count_retry)
        except TimeoutError as e:
            raise StoreBusy(
                f"{self.path}: the store stayed locked for over {self._retry_for_s:g} s"
            ) from e.__cause__

    def _count_retry(self) -> None:
        with self._lock:
            self._busy_retries += 1
