"""The daily budget across processes: two `covey -p` started together, with room left for one
request only, cannot both send it (each reserves its estimate in the store before sending, in
the transaction that checks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from clitools import CliRun, covey
from covey.models.script import Script
from covey.sessions.lease import HostLease
from covey.store import Store
from covey.store.budget_holds import held_by
from covey.store.sessions import list_sessions
from covey.testing.fakeserver import FakeServer
from test_budget import MODEL, _billed, _env, _output_estimate

SLOW = Script.model_validate({"turns": [{"text": "Done.", "delay_s": 4.0}]})
"""One answer, slow enough that both processes check while the first request is in flight."""


def test_two_processes_cannot_both_spend_the_last_of_the_daily_budget(
    git_repo: Path, covey_home: Path
) -> None:
    # a request's estimate is its output share plus its input (less than another output
    # share): one request fits, two do not
    limit = 2 * _output_estimate()
    (covey_home / "settings.json").write_text(json.dumps({"budget": {"dailyUsd": limit}}))
    with FakeServer(SLOW) as server:
        env = _env(server)

        def one(_: int) -> CliRun:
            return covey("-p", "go", "--output-format", "json", *MODEL, cwd=git_repo, env=env)

        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(one, range(2)))
        sent = len(server.requests)
        billed = _billed(server)
    assert sent == 1, [r.out for r in runs]
    assert sum(billed) <= limit
    done, refused = sorted(runs, key=lambda r: r.code)
    assert done.code == 0, done.err
    assert done.json()["result"] == "Done."
    assert refused.code == 1, refused.err
    result = refused.json()
    assert result["subtype"] == "error_budget" and "daily budget" in result["result"]
    with Store.open() as store, store.read() as conn:
        rows = list_sessions(conn, kinds=["print"])
        # nothing stays reserved once the runs are over
        assert len(rows) == 2
        assert [held_by(conn, row.id) for row in rows] == [0.0, 0.0]


STUCK = Script.model_validate({"turns": [{"text": "never sent", "delay_s": 60.0}]})
"""An answer that takes a minute: its host is killed meanwhile."""
DONE = Script.model_validate({"turns": [{"text": "Done."}]})


def _reserving_session(store: Store, host: subprocess.Popen[str]) -> str:
    """The print session whose request is in flight (its reservation published)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and host.poll() is None:
        with store.read() as conn:
            held = [r.id for r in list_sessions(conn, kinds=["print"]) if held_by(conn, r.id)]
        if held:
            return held[0]
        time.sleep(0.05)
    raise AssertionError(f"no reservation published (exit {host.poll()})")


def test_a_session_resumed_after_kill_9_holds_nothing_its_dead_host_reserved(
    git_repo: Path, covey_home: Path
) -> None:
    """The killed host's reservation stays in the row; the host resuming the session (its
    lease taken from the dead holder, as `--resume` does) has nothing in flight, so another
    process's request still fits the daily budget left for one."""
    limit = 2 * _output_estimate()
    (covey_home / "settings.json").write_text(json.dumps({"budget": {"dailyUsd": limit}}))
    with FakeServer(STUCK) as stuck, FakeServer(DONE) as server, Store.open() as store:
        env = {**os.environ, **_env(stuck)}
        host = subprocess.Popen(
            [sys.executable, "-m", "covey", "-p", "go", *MODEL],
            cwd=git_repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            sid = _reserving_session(store, host)
        finally:
            host.send_signal(signal.SIGKILL)
            host.communicate()
        HostLease(store, sid).acquire()  # `covey -p --resume` (its prompt not sent yet)
        with store.read() as conn:
            assert held_by(conn, sid) == 0.0
        run = covey("-p", "go", "--output-format", "json", *MODEL, cwd=git_repo, env=_env(server))
    assert run.code == 0, run.out + run.err
    assert run.json()["result"] == "Done."
