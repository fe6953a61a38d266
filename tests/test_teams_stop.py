"""`covey stop TEAMMATE` stops that teammate only: its command ends, the lead hears it was
stopped and finishes its run (before, the teammate's host was the lead's process, which got
SIGINT: the whole team stopped)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from clitools import covey
from covey.store import Store
from covey.store.sessions import get_session, list_sessions
from teamtools import MODEL, call, fake, requests_of, spawn, texts

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


def test_covey_stop_of_a_teammate_stops_it_and_the_lead_goes_on(git_repo: Path) -> None:
    with fake(STOPPED) as (srv, env):
        lead = subprocess.Popen(
            [sys.executable, "-m", "covey", "-p", "go", "--output-format", "json",
             "--permission-mode", "acceptEdits", "--allowedTools", "Bash", *MODEL],
            cwd=git_repo, env={**os.environ, **env},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
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
