"""The node of a session on a Ray cluster in what the agent view and `covey agents --json`
show: `node` in the row ("local" for local sessions), and the view's line leads with it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from covey.sessions.listing import agent_rows
from covey.store import Store
from covey.store.session_meta import SessionMeta
from covey.store.sessions import SessionRow, insert_session
from covey.tui.rows import summary_text

NODE = "31d251316930f5a1c8a5e1b2" + "0" * 32


def test_rows_name_the_node_or_local_and_the_view_leads_with_it(tmp_path: Path) -> None:
    with Store.open(tmp_path / "covey.db") as store:
        with store.write() as conn:
            for sid, node in (("here", None), ("there", NODE)):
                meta = SessionMeta(node=node)
                row = SessionRow.new(id=sid, kind="background", cwd="/w", model="m", meta=meta)
                insert_session(conn, row)
        rows = {r.id: r for r in agent_rows(store)}
    assert rows["here"].as_json()["node"] == "local"
    assert rows["there"].as_json()["node"] == NODE
    there = rows["there"]
    assert summary_text(there) == "node 31d25131"
    assert summary_text(replace(there, summary="Wrote a.txt")) == "node 31d25131 · Wrote a.txt"
    assert summary_text(rows["here"]) == ""


def test_what_ray_prints_while_status_is_connected_stays_off_stdout() -> None:
    """`covey cluster status --json`: Ray's driver prints the errors the cluster pushes to it
    (a node found dead) on stdout, from a thread of its own; they go to stderr instead."""
    code = (
        "import os, sys, threading\n"
        "from covey.executors.ray_status import stdout_to_stderr\n"
        "with stdout_to_stderr():\n"
        "    t = threading.Thread(target=print, args=('(raylet) The node ... is dead',))\n"
        "    t.start(); t.join()\n"
        "    os.write(1, b'raw noise\\n')\n"
        "print('{\"nodes\": []}')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"nodes": []}
    assert "is dead" in done.stderr and "raw noise" in done.stderr
