"""Transaction helpers: retrying a busy lock, opening a read snapshot, a guard for writers."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from covey.store._check import error_code

__all__ = ["begin_read", "require_transaction", "retry_busy", "rollback"]

T = TypeVar("T")

_FIRST_PAUSE_S = 0.0005
_MAX_PAUSE_S = 0.005
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def retry_busy(op: Callable[[], T], retry_for_s: float, on_retry: Callable[[], None]) -> T:
    """Run `op`, again after a short jittered sleep while SQLite reports busy or locked;
    after `retry_for_s` raise TimeoutError (its __cause__ is the last sqlite error)."""
    deadline = time.monotonic() + retry_for_s
    pause = _FIRST_PAUSE_S
    while True:
        try:
            return op()
        except sqlite3.OperationalError as e:
            if error_code(e) not in _BUSY:
                raise
            if time.monotonic() >= deadline:
                raise TimeoutError("store busy") from e
            on_retry()
            time.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 2, _MAX_PAUSE_S)


def begin_read(conn: sqlite3.Connection) -> None:
    """Open a read transaction and take its snapshot now (a busy error can only come here)."""
    conn.execute("BEGIN")
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except BaseException:
        rollback(conn)
        raise


def rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def require_transaction(conn: sqlite3.Connection, what: str) -> None:
    """Read-then-write functions are atomic only inside a write transaction; insist on one."""
    if not conn.in_transaction:
        raise RuntimeError(f"{what} must run inside store.write()")
