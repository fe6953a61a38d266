"""A Ray session a budget (or a missing key) stopped waits for a reply, also across a
supervisor restart: the next supervisor catches up only with a session that waits on a
question its node asked; one waiting on a budget stays `needs_input` until someone replies
(it used to be started again on a node, spending on without any reply)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bgtools import supervisor  # noqa: F401  (fixture)
from clitools import covey
from covey.store import Store
from covey.store.session_meta import Pending, SessionMeta
from covey.store.sessions import SessionRow, get_session, insert_session


def test_a_ray_session_waiting_on_its_budget_is_not_started_by_the_next_supervisor(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
) -> None:
    repo = supervisor
    closed = {"executor": "ray", "ray": {"address": "127.0.0.2:9"}}  # nothing listens
    (covey_home / "settings.json").write_text(json.dumps({"background": closed}))
    budget = Pending(kind="budget", text="the daily budget is spent", budget="daily")
    meta = SessionMeta(pending=budget, node="a" * 56, prompt="work", repo=str(repo))
    row = SessionRow.new(
        id="waits4it", kind="background", cwd=str(repo), model="scripted:x",
        state="needs_input", meta=meta,
    )  # fmt: skip
    with Store.open() as store, store.write() as conn:  # its host is gone: an orphan
        insert_session(conn, row)
    assert covey("daemon", "start", cwd=repo).code == 0
    time.sleep(3)  # several polls and the start's orphan scan
    with Store.open() as store, store.read() as conn:
        after = get_session(conn, "waits4it")
    assert after is not None
    assert (after.state, after.meta.pending) == ("needs_input", budget), after
