"""`covey stop TEAMMATE` stops that teammate only: its command ends, the lead hears it was
stopped and finishes its run (before, the teammate's host was the lead's process, which got
SIGINT: the whole team stopped)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from clitools import covey
from covey.store import Store
from covey.store.sessions import get_session, list_sessions
from teamtools import MODEL, call, fake, requests_of, spawn, texts

LEAD_ARGS = [
    "--output-format",
    "json",
    "--permission-mode",
    "acceptEdits",
    "--allowedTools",
    "Bash",
]

STOPPED = {
    "turns": [
        {"tool_calls": [spawn("alice", "Do the long job.")]},
        {"text": "waiting for alice"},
        {"text": "LEAD-FINAL after alice stopped"},
        {"text": "spare"},
    ],
    "agents": {
        "alice": {
            "turns": [
                {"tool_calls": [call("Bash", command="touch started; sleep 60", description="x")]},
                {"text": "never reached"},
            ]
        }
    },
}


def _start_lead(repo: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`covey -p go` for a lead whose teammate may run Bash, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "covey", "-p", "go", "--output-format", "json",
         "--permission-mode", "acceptEdits", "--allowedTools", "Bash", *MODEL],
        cwd=repo, env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_covey_stop_of_a_teammate_stops_it_and_the_lead_goes_on(git_repo: Path) -> None:
    with fake(STOPPED) as (srv, env):
        lead = _start_lead(git_repo, env)
        try:
            deadline = time.monotonic() + 60
            while not (git_repo / "started").exists():
                assert time.monotonic() < deadline and lead.poll() is None, lead.communicate()
                time.sleep(0.1)
            with Store.open() as store, store.read() as conn:
                (alice,) = list_sessions(conn, kinds=["teammate"])
            stopped = covey("stop", alice.id, cwd=git_repo, env=env)
            assert stopped.code == 0, stopped.err
            out, err = lead.communicate(timeout=60)
        finally:
            if lead.poll() is None:
                lead.kill()
                lead.communicate()
    assert lead.returncode == 0, err
    assert json.loads(out)["result"] == "LEAD-FINAL after alice stopped"
    assert "stopped by the user" in texts(requests_of(srv, None)[-1])
    assert len(requests_of(srv, "alice")) == 1
    with Store.open() as store, store.read() as conn:
        row = get_session(conn, alice.id)
        assert row is not None and row.state == "stopped", row
        (command,) = conn.execute("SELECT status FROM commands WHERE type = 'stop'").fetchall()
        assert command == ("done",)


IDLE = {
    "turns": [
        {"tool_calls": [spawn("alice", "Say hello.")]},
        {
            "tool_calls": [
                call(
                    "Bash",
                    command="until [ -e go ]; do sleep 0.1; done",
                    description="wait for the test",
                )
            ]
        },
        {"text": "LEAD-FINAL after idle alice stopped"},
        {"text": "spare"},
    ],
    "agents": {"alice": {"turns": [{"text": "ALICE-HELLO"}, {"text": "never reached"}]}},
}


def _state(session_id: str) -> str | None:
    with Store.open() as store, store.read() as conn:
        row = get_session(conn, session_id)
    return None if row is None else row.state


def test_covey_stop_of_an_idle_teammate_stops_it_at_once(git_repo: Path) -> None:
    with fake(IDLE) as (srv, env):
        lead = _start_lead(git_repo, env)
        try:
            deadline = time.monotonic() + 60
            alice = None
            while alice is None or _state(alice) != "idle":
                assert time.monotonic() < deadline and lead.poll() is None, lead.communicate()
                time.sleep(0.1)
                with Store.open() as store, store.read() as conn:
                    found = list_sessions(conn, kinds=["teammate"])
                alice = found[0].id if found else None
            stopped = covey("stop", alice, cwd=git_repo, env=env)
            assert stopped.code == 0, stopped.err
            deadline = time.monotonic() + 5  # at once: not when the lead's turn ends
            while _state(alice) != "stopped":
                assert time.monotonic() < deadline, _state(alice)
                time.sleep(0.1)
            (git_repo / "go").touch()
            out, err = lead.communicate(timeout=60)
        finally:
            if lead.poll() is None:
                lead.kill()
                lead.communicate()
    assert lead.returncode == 0, err
    assert json.loads(out)["result"] == "LEAD-FINAL after idle alice stopped"
    told = texts(requests_of(srv, None)[-1])
    assert "ALICE-HELLO" in told and "stopped by the user" in told
    assert len(requests_of(srv, "alice")) == 1


def _wait_for_file(lead: subprocess.Popen[str], path: Path) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline and lead.poll() is None, lead.communicate()
        time.sleep(0.1)


def _until(name: str) -> dict[str, object]:
    command = f"touch {name}-started; until [ -e {name} ]; do sleep 0.1; done"
    return {"tool_calls": [call("Bash", command=command, description="wait for the test")]}


RESUMED_IDLE = {
    "turns": [
        {"tool_calls": [spawn("alice", "Say hello.")]},
        _until("go1"),
        _until("go2"),  # after the resume
        {"text": "LEAD-FINAL after idle alice stopped"},
        {"text": "spare"},
    ],
    "agents": {"alice": {"turns": [{"text": "ALICE-HELLO"}, {"text": "never reached"}]}},
}


def test_covey_stop_of_an_idle_teammate_resumed_after_a_kill_stops_it(git_repo: Path) -> None:
    """A teammate that was idle when its lead's host died comes back idle, outside any turn;
    `covey stop` still reaches it at once and the lead hears of it."""
    with fake(RESUMED_IDLE) as (srv, env):
        first = subprocess.Popen(
            [sys.executable, "-m", "covey", "-p", "go", *LEAD_ARGS, *MODEL],
            cwd=git_repo, env={**os.environ, **env}, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        lead_id = alice = None
        try:
            _wait_for_file(first, git_repo / "go1-started")
            deadline = time.monotonic() + 60
            while alice is None or _state(alice) != "idle":
                assert time.monotonic() < deadline
                time.sleep(0.1)
                with Store.open() as store, store.read() as conn:
                    found = list_sessions(conn, kinds=["teammate"])
                    (lead_id,) = [r.id for r in list_sessions(conn, kinds=["print"])]
                alice = found[0].id if found else None
            first.send_signal(signal.SIGKILL)
            first.communicate(timeout=30)
        finally:
            (git_repo / "go1").touch()  # the orphaned Bash ends
            if first.poll() is None:
                first.kill()
                first.communicate()
        assert lead_id is not None and alice is not None
        lead = subprocess.Popen(
            [sys.executable, "-m", "covey", "-p", "continue", "--resume", lead_id, *LEAD_ARGS,
             *MODEL],
            cwd=git_repo, env={**os.environ, **env},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            _wait_for_file(lead, git_repo / "go2-started")
            assert _state(alice) == "idle"
            stopped = covey("stop", alice, cwd=git_repo, env=env)
            assert stopped.code == 0, stopped.err
            deadline = time.monotonic() + 5
            while _state(alice) != "stopped":
                assert time.monotonic() < deadline, _state(alice)
                time.sleep(0.1)
            (git_repo / "go2").touch()
            out, err = lead.communicate(timeout=60)
        finally:
            (git_repo / "go2").touch()
            if lead.poll() is None:
                lead.kill()
                lead.communicate()
    assert lead.returncode == 0, err
    assert json.loads(out)["result"] == "LEAD-FINAL after idle alice stopped"
    told = texts(requests_of(srv, None)[-1])
    assert "ALICE-HELLO" in told and "stopped by the user" in told
    assert len(requests_of(srv, "alice")) == 1
    with Store.open() as store, store.read() as conn:
        (command,) = conn.execute("SELECT status FROM commands WHERE type = 'stop'").fetchall()
        assert command == ("done",)
