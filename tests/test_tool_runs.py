"""Tool processes die with their host: a `covey -p` killed with `kill -9` in the middle of a
Bash command leaves nothing that can still change the workspace once the session resumes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from clitools import covey

LATE = "(sleep 3; touch late-marker) & wait"
"""A command whose background child writes a file after its parent shell is gone."""


def _runs() -> list[tuple[str, int]]:
    db = sqlite3.connect(os.environ["COVEY_HOME"] + "/covey.db")
    try:
        return db.execute("SELECT session_id, pgid FROM tool_runs").fetchall()
    except sqlite3.OperationalError:  # the store is still being created
        return []
    finally:
        db.close()


def test_a_killed_hosts_command_is_killed_before_the_session_resumes(
    git_repo: Path, tmp_path: Path
) -> None:
    script = tmp_path / "late.yaml"
    bash = {"name": "Bash", "input": {"command": LATE}}
    script.write_text(json.dumps({"turns": [{"tool_calls": [bash]}, {"text": "resumed"}]}))
    model = f"scripted:{script}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "covey", "-p", "go", "--model", model, "--permission-mode",
         "bypassPermissions", "--output-format", "json"],
        cwd=git_repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _runs() and time.monotonic() < deadline:
            time.sleep(0.02)
        ((session_id, _pgid),) = _runs()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        resumed = covey("-p", "continue", "--resume", session_id, "--model", model, cwd=git_repo)
        assert resumed.code == 0, resumed.err
        assert resumed.out.strip() == "resumed"
        time.sleep(4)  # past the moment the child would have written
        assert not (git_repo / "late-marker").exists()
        assert _runs() == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_finished_command_leaves_no_record(git_repo: Path, tmp_path: Path) -> None:
    script = tmp_path / "quick.yaml"
    bash = {"name": "Bash", "input": {"command": "echo hi"}}
    script.write_text(json.dumps({"turns": [{"tool_calls": [bash]}, {"text": "ok"}]}))
    run = covey("-p", "go", "--model", f"scripted:{script}", "--permission-mode",
                "bypassPermissions", cwd=git_repo)  # fmt: skip
    assert run.code == 0, run.err
    assert _runs() == []
