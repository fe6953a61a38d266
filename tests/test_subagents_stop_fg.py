"""`covey stop SUBAGENT_ID` of a subagent of a foreground session (`covey -p`): that subagent
stops alone, as for a background session's (its parent's Agent call returns an error and the
parent goes on); the turn is not interrupted (the stop used to be a SIGINT to the whole
`covey -p` process, like Ctrl+C)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bgtools import DEADLINE_S, LONG_SUBAGENT_SCRIPT, child_working, stop_commands
from clitools import covey
from covey.store import Store
from covey.store.sessions import get_session, list_sessions
from covey.store.transcript import read_entries


def _print_session() -> str:
    """The id of the `covey -p` session, once the store has it."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        with Store.open() as store, store.read() as conn:
            rows = list_sessions(conn, kinds=["print"])
        if rows:
            return rows[0].id
        time.sleep(0.1)
    raise AssertionError(f"no covey -p session within {DEADLINE_S} s")


def test_covey_stop_of_a_foreground_sessions_subagent_stops_it_alone(
    git_repo: Path, tmp_path: Path
) -> None:
    script = tmp_path / "sub.yaml"
    script.write_text(yaml.safe_dump(LONG_SUBAGENT_SCRIPT))
    run = subprocess.Popen(
        [sys.executable, "-m", "covey", "-p", "use a helper", "--model", f"scripted:{script}"],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        sid = _print_session()
        helper = child_working(sid, "subagent")
        stop = covey("stop", helper, cwd=git_repo)
        assert stop.code == 0, stop.err
        out, err = run.communicate(timeout=DEADLINE_S)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 0, err
    assert "ROOT-FINAL after the helper stopped" in out
    with Store.open() as store, store.read() as conn:
        root, child = get_session(conn, sid), get_session(conn, helper)
        said = json.dumps([e.data for e in read_entries(conn, sid)])
    assert root is not None and root.state == "completed", root
    assert child is not None and (child.state, child.reason) == ("stopped", "stopped by user")
    assert f"subagent {helper} was stopped by the user" in said
    assert stop_commands(helper) == [("done", {"stopped": True})]
