"""Checkpointing the write-ahead log on a thread of its own, for a process whose event loop
writes to the store (the supervisor).

SQLite checkpoints the WAL inside the COMMIT that takes it past 1,000 pages: that commit copies
the pages into the database file and syncs it, ~5-40 ms here. On an event loop that commits a
few thousand transactions a minute (the supervisor hosting a hundred sessions), those commits
stall every session at once (7,000 small transactions: 1.05 s inline, 0.44 s without; the
slowest commit 42 ms against 2 ms). A `Checkpointer` runs a PASSIVE checkpoint (it waits for
no reader or writer) every `EVERY_S` on a connection of its own, so the log rarely reaches
SQLite's threshold and the loop's commits stay short; SQLite's own check stays as the safety
net should this thread fall behind.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable

__all__ = ["EVERY_S", "Checkpointer"]

EVERY_S = 0.2
"""How often; the supervisor writes ~2,400 pages a second with a hundred busy sessions."""


class Checkpointer:
    """Started by `Store.checkpoint_in_background`, stopped by `Store.close`."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="covey-checkpoint", daemon=True)
        self.checkpoints = 0
        """Checkpoints that copied pages."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            conn = self._connect()
        except (RuntimeError, sqlite3.Error):  # the store was closed meanwhile
            return
        try:
            while not self._stop.wait(EVERY_S):
                with contextlib.suppress(sqlite3.Error):  # a busy or full disk: next time
                    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if row and row[2] > 0:
                        self.checkpoints += 1
        finally:
            conn.close()
