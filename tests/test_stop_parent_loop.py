"""`covey stop` of a live subagent whose parents loop (only a damaged store holds one)
answers instead of walking the loop for ever."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from clitools import covey
from covey.store import Store
from covey.store.sessions import SessionRow, acquire_lease, insert_session


@pytest.mark.timeout(60)
def test_covey_stop_of_a_session_in_a_parent_loop_answers(git_repo: Path) -> None:
    holder = subprocess.Popen(["sleep", "60"])  # a live host (its SIGINT ends it)
    host = f"{socket.gethostname()}:{holder.pid}:abcdef"
    with Store.open() as store, store.write() as conn:
        for sid, parent in (("aaaa1111", "bbbb2222"), ("bbbb2222", "aaaa1111")):
            row = SessionRow.new(id=sid, kind="subagent", cwd=str(git_repo), model="m",
                                 state="working", parent_id=parent)  # fmt: skip
            insert_session(conn, row)
            acquire_lease(conn, sid, host, 60, time.time())
    try:
        stopped = covey("stop", "aaaa1111", cwd=git_repo)
    finally:
        holder.kill()
        holder.wait()
    assert stopped.code == 0, stopped.err
