"""`kill -9` of a `covey -p` lead in the middle of a team's work, then `covey -p --resume
LEAD`: the working teammate resumes, its interrupted tool call is reported and never re-run,
tasks and undelivered mail are intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from covey.sessions.resume import INTERRUPTED
from covey.store import Store
from covey.store import teams as team_store
from covey.store.sessions import get_session, list_sessions
from teamtools import MODEL, call, fake, requests_of, run, spawn, texts

RUNS = "runs.log"

KILLED = {
    "turns": [
        {
            "tool_calls": [
                call("TaskCreate", subject="Long job", description="takes a while"),
                spawn("alice", "Do the long job."),
            ]
        },
        {"tool_calls": [call("SendMessage", to="alice", message="KEEP-THIS note")]},
        {"text": "waiting for alice"},
        {"text": "lead resumed"},
        {"text": "LEAD-FINAL after alice"},
        {"text": "spare"},
        {"text": "spare"},
    ],
    "agents": {
        "alice": {
            "turns": [
                {
                    "tool_calls": [
                        call("TaskUpdate", taskId="1", status="in_progress"),
                        call("Bash", command=f"echo run >> {RUNS}; sleep 60", description="long"),
                    ]
                },
                {"text": "ALICE resumed and finished"},
                {"text": "spare"},
            ]
        }
    },
}


def _wait_for(check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _lead_waits(store: Store) -> bool:
    """The lead sent its note and its turn ended (it now waits for alice)."""
    with store.read() as conn:
        mail = conn.execute("SELECT body FROM team_mailbox").fetchall()
        waiting = conn.execute(
            "SELECT 1 FROM transcript WHERE data LIKE '%waiting for alice%'"
        ).fetchone()
    return waiting is not None and any("KEEP-THIS" in body for (body,) in mail)


def test_kill_9_of_the_lead_then_resume_continues_the_team(git_repo: Path) -> None:
    with fake(KILLED) as (srv, env):
        lead = subprocess.Popen(
            [sys.executable, "-m", "covey", "-p", "go", "--output-format", "json",
             "--permission-mode", "acceptEdits", "--allowedTools", "Bash", *MODEL],
            cwd=git_repo, env={**os.environ, **env},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            store = Store.open()
            _wait_for(lambda: (git_repo / RUNS).exists() and _lead_waits(store))
            lead.send_signal(signal.SIGKILL)
            lead.wait(timeout=30)
        finally:
            if lead.poll() is None:
                lead.kill()
        with store.read() as conn:
            (lead_row,) = list_sessions(conn, kinds=["print"])
            team = team_store.team_of_lead(conn, lead_row.id)
            assert team is not None and team.ended_at is None
            assert [m.body for m in team_store.undelivered(conn, team.id, "alice")] == [
                "KEEP-THIS note"
            ]
            (task,) = team_store.list_tasks(conn, team.id)
            assert (task.status, task.owner) == ("in_progress", "alice")
        result = run(git_repo, env, "--allowedTools", "Bash", "--resume", lead_row.id,
                     prompt="continue")  # fmt: skip
    assert result.code == 0, result.err
    assert result.json()["result"] == "LEAD-FINAL after alice"
    assert (git_repo / RUNS).read_text() == "run\n"  # the interrupted Bash never ran again
    alice = requests_of(srv, "alice")
    assert [r["turn"] for r in alice] == [0, 1]
    resumed = texts(alice[1])
    assert json.dumps(INTERRUPTED)[1:-1] in resumed
    assert resumed.count("KEEP-THIS note") == 2  # the text and its summary, delivered once
    assert "ALICE resumed and finished" in texts(requests_of(srv, None)[-1])
    with store.read() as conn:
        assert team_store.undelivered_count(conn, team.id) == 0
        (member,) = [m for m in team_store.list_members(conn, team.id) if m.name == "alice"]
        row = get_session(conn, member.session_id)
        assert row is not None and row.state == "completed"
        assert team_store.team_of_lead(conn, lead_row.id).ended_at is not None  # type: ignore[union-attr]
    store.close()
