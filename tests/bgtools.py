"""Helpers for end-to-end tests of background sessions: scripts, the daemon, polling."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from clitools import covey

DEADLINE_S = 90.0


def write_script(path: Path, turns: list[dict[str, Any]]) -> str:
    path.write_text(yaml.safe_dump({"turns": turns}))
    return f"scripted:{path}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def daemon_status(cwd: Path) -> dict[str, Any]:
    run = covey("daemon", "status", "--json", cwd=cwd)
    assert run.code == 0, run.err
    return run.json()


@pytest.fixture
def supervisor(git_repo: Path) -> Iterator[Path]:
    """Stops whatever supervisor the test started, and waits until it is gone."""
    yield git_repo
    pid = daemon_status(git_repo)["pid"]
    stopped = covey("daemon", "stop", cwd=git_repo)
    assert stopped.code == 0, stopped.err
    if pid is not None:
        deadline = time.monotonic() + DEADLINE_S
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(pid)
    assert daemon_status(git_repo)["running"] is False


def agents(cwd: Path) -> list[dict[str, Any]]:
    run = covey("agents", "--json", cwd=cwd)
    assert run.code == 0, run.err
    return json.loads(run.out)  # type: ignore[no-any-return]


def wait_for_state(cwd: Path, sid: str, states: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    row: dict[str, Any] = {}
    while time.monotonic() < deadline:
        row = next(r for r in agents(cwd) if r["id"] == sid)
        if row["state"] in states:
            return row
        time.sleep(0.1)
    db = sqlite3.connect(os.environ["COVEY_HOME"] + "/covey.db")
    direct = db.execute("select state, epoch, host_id from sessions").fetchall()
    db.close()
    raise AssertionError(f"session {sid} never reached {states}: {row} {direct}")


def background(cwd: Path, *args: str) -> str:
    run = covey("--bg", *args, cwd=cwd)
    assert run.code == 0, run.err
    word, sid, _name = run.out.strip().split(" · ")
    assert word == "backgrounded"
    return sid


def git_out(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def kill_supervisor(cwd: Path) -> int:
    """`kill -9` the running supervisor and wait until it is gone; its pid."""
    pid = int(daemon_status(cwd)["pid"])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + DEADLINE_S
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pid


def wait_for_summary(cwd: Path, sid: str, prefix: str) -> dict[str, Any]:
    """The session's row once its summary starts with `prefix` and its turn has ended (the
    answer's one-line step shows while the host still commits; or the last row seen)."""
    deadline = time.monotonic() + DEADLINE_S
    row: dict[str, Any] = {}
    while time.monotonic() < deadline:
        row = next(r for r in agents(cwd) if r["id"] == sid)
        if (row["summary"] or "").startswith(prefix) and row["state"] not in ("queued", "working"):
            break
        time.sleep(0.1)
    return row


def transcript_entries(sid: str) -> list[dict[str, Any]]:
    """The session's transcript entries as stored, in order."""
    db = sqlite3.connect(os.environ["COVEY_HOME"] + "/covey.db")
    rows = db.execute(
        "select data from transcript where session_id = ? order by seq", (sid,)
    ).fetchall()
    db.close()
    return [json.loads(data) for (data,) in rows]


def user_texts(sid: str) -> list[str]:
    """The text blocks of the session's user messages, in order (prompts as the agent saw
    them, hooks' added context included)."""
    texts: list[str] = []
    for entry in transcript_entries(sid):
        if entry.get("role") == "user" and isinstance(entry.get("content"), list):
            texts += [b["text"] for b in entry["content"] if b.get("type") == "text"]
    return texts


LONG_SUBAGENT_SCRIPT: dict[str, Any] = {
    "turns": [
        {
            "tool_calls": [
                {
                    "name": "Agent",
                    "input": {
                        "description": "long job",
                        "prompt": "Work for a long time.",
                        "subagent_type": "general-purpose",
                    },
                }
            ]
        },
        {"text": "ROOT-FINAL after the helper stopped"},
    ],
    "agents": {"general-purpose": {"turns": [{"text": "never reached", "delay_s": 60}]}},
}
"""A session that starts a subagent working for a minute, then ends once the subagent is
back (stopped, for the tests of `covey stop SUBAGENT_ID`)."""


def child_working(parent: str, kind: str = "teammate") -> str:
    """The id of the parent's child of `kind`, once the store shows it working."""
    from covey.store import Store
    from covey.store.sessions import list_sessions

    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        with Store.open() as store, store.read() as conn:
            rows = [r for r in list_sessions(conn, kinds=[kind]) if r.parent_id == parent]
        if rows and rows[0].state == "working":
            return rows[0].id
        time.sleep(0.2)
    raise AssertionError(f"no working {kind} of {parent} within {DEADLINE_S} s")


def stop_commands(session_id: str) -> list[tuple[str, Any]]:
    """The `stop` commands sent to the session: (status, result) each, oldest first."""
    from covey.store import Store

    with Store.open() as store, store.read() as conn:
        rows = conn.execute(
            "SELECT status, result FROM commands WHERE type = 'stop' AND session_id = ?"
            " ORDER BY id",
            (session_id,),
        ).fetchall()
    return [(status, json.loads(result) if result else None) for status, result in rows]
