"""The `tool_runs` table: tool processes (Bash) running for a session, by process group and tag.

A host records a run when its process starts and forgets a session's runs when it closes. Rows left
behind belong to a host that died mid-command: the host that takes the session over kills
those groups (`covey.proc.kill_tagged_group`) before it continues, so a command the resume
reported as interrupted can no longer change the workspace.
"""

from __future__ import annotations

import sqlite3
import time

__all__ = ["forget_runs", "record_run", "runs_of"]


def record_run(conn: sqlite3.Connection, session_id: str, pgid: int, tag: str) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO tool_runs (session_id, pgid, tag, started) VALUES (?, ?, ?, ?)",
        (session_id, pgid, tag, time.time()),
    )


def runs_of(conn: sqlite3.Connection, session_id: str) -> list[tuple[int, str]]:
    """(pgid, tag) of the runs recorded for a session."""
    rows = conn.execute("SELECT pgid, tag FROM tool_runs WHERE session_id = ?", (session_id,))
    return [(int(r[0]), str(r[1])) for r in rows]


def forget_runs(conn: sqlite3.Connection, session_id: str) -> None:
    conn.execute("DELETE FROM tool_runs WHERE session_id = ?", (session_id,))
