"""A team led by a background session: the supervisor hosts the lead and its teammates."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import yaml

from bgtools import DEADLINE_S, background, kill_supervisor, supervisor, wait_for_state
from covey.store import Store
from covey.store import teams as team_store
from covey.store.sessions import get_session
from teamtools import call, spawn

__all__ = ["supervisor"]  # the fixture, used by name

SCRIPT = {
    "turns": [
        {
            "tool_calls": [
                call("TaskCreate", subject="Background job", description="d"),
                spawn("alice", "Do task 1."),
            ]
        },
        {"text": "waiting"},
        *[{"text": "BG-LEAD done"} for _ in range(4)],
    ],
    "agents": {
        "alice": {
            "turns": [
                {
                    "delay_s": 0.5,
                    "tool_calls": [
                        call("TaskUpdate", taskId="1", owner="alice"),
                        call("TaskUpdate", taskId="1", status="completed"),
                    ],
                },
                {"text": "ALICE-BG finished"},
            ]
        }
    },
}


def test_a_background_lead_runs_its_team_in_the_supervisor(supervisor: Path) -> None:
    repo = supervisor
    (repo / ".covey").mkdir()
    (repo / ".covey" / "settings.json").write_text(
        json.dumps({"env": {"COVEY_EXPERIMENTAL_AGENT_TEAMS": "1"}})
    )
    script = repo.parent / "team.yaml"
    script.write_text(yaml.safe_dump(SCRIPT))
    sid = background(repo, "lead a team", "--model", f"scripted:{script}")
    wait_for_state(repo, sid, ("completed", "failed", "stopped", "idle"))
    with Store.open() as store, store.read() as conn:
        lead = get_session(conn, sid)
        assert lead is not None and lead.state == "completed", lead
        team = team_store.team_of_lead(conn, sid)
        assert team is not None and team.ended_at is not None
        (task,) = team_store.list_tasks(conn, team.id)
        assert (task.status, task.owner) == ("completed", "alice")
        (alice,) = [m for m in team_store.list_members(conn, team.id) if m.name == "alice"]
        row = get_session(conn, alice.session_id)
        assert row is not None and row.state == "completed" and row.parent_id == sid
        idle = [m for m in team_store.mailbox(conn, team.id) if m.kind == "idle"]
        assert idle and "ALICE-BG finished" in idle[-1].body and idle[-1].delivered_at


def test_kill_9_of_the_supervisor_mid_team_resumes_lead_and_teammate(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    (repo / ".covey").mkdir()
    (repo / ".covey" / "settings.json").write_text(
        json.dumps({"env": {"COVEY_EXPERIMENTAL_AGENT_TEAMS": "1"}})
    )
    runs, shell_pid = tmp_path / "runs.txt", tmp_path / "shell.pid"
    slow = f"echo $$ > {shell_pid}; echo started >> {runs}; sleep 60"
    script = {
        "turns": [
            {"tool_calls": [spawn("alice", "Do the slow part.")]},
            {"text": "waiting for alice"},
            *[{"text": "BG-LEAD done"} for _ in range(5)],
        ],
        "agents": {
            "alice": {
                "turns": [
                    {"tool_calls": [call("Bash", command=slow, description="slow")]},
                    {"text": "ALICE-BG after the crash"},
                ]
            }
        },
    }
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(script))
    sid = background(
        repo, "lead a team", "--model", f"scripted:{path}", "--permission-mode", "bypassPermissions"
    )
    deadline = time.monotonic() + DEADLINE_S
    while not (runs.exists() and shell_pid.exists() and _waiting(sid)):
        assert time.monotonic() < deadline, "alice's slow call never started"
        time.sleep(0.05)
    kill_supervisor(repo)
    with contextlib.suppress(ProcessLookupError, ValueError):  # the orphaned command
        os.killpg(int(shell_pid.read_text().strip()), signal.SIGKILL)
    row = wait_for_state(repo, sid, ("completed", "failed", "stopped"))  # a new supervisor
    assert row["state"] == "completed", row
    assert runs.read_text() == "started\n", "the interrupted call ran again"
    with Store.open() as store, store.read() as conn:
        team = team_store.team_of_lead(conn, sid)
        assert team is not None and team.ended_at is not None
        (alice,) = [m for m in team_store.list_members(conn, team.id) if m.name == "alice"]
        mate = get_session(conn, alice.session_id)
        assert mate is not None and mate.state == "completed"
        idle = [m.body for m in team_store.mailbox(conn, team.id) if m.kind == "idle"]
        assert any("ALICE-BG after the crash" in body for body in idle)


def _waiting(sid: str) -> bool:
    with Store.open() as store, store.read() as conn:
        return (
            conn.execute(
                "SELECT 1 FROM transcript WHERE session_id = ? AND data LIKE '%waiting for alice%'",
                (sid,),
            ).fetchone()
            is not None
        )
