"""The daily budget across processes: two `covey -p` started together, with room left for one
request only, cannot both send it (each reserves its estimate in the store before sending, in
the transaction that checks)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from clitools import CliRun, covey
from covey.models.script import Script
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
