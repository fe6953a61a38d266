"""Node-side paths: a session runs on a node in a worktree of the node's own (its tools work
there unchanged), and the user's transcript reads as if it ran in the user's worktree: tool
inputs, results, errors, the assistant's text and the row's summary name the user's path,
never the node's. A resume seeds the next node with the paths moved to its own."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

from covey.executors.replica import export_session, seed_node_store
from covey.store import Store
from covey.store.events import read_events
from covey.store.sessions import acquire_lease, get_session
from covey.store.transcript import read_entries
from replicatools import new_session, pumping, run_on_node, write_script

SID = "replica1"


def _calls(node: Path) -> list[dict[str, Any]]:
    def call(name: str, **tool_input: Any) -> dict[str, Any]:
        return {"tool_calls": [{"name": name, "input": tool_input}]}

    return [
        call("Write", file_path=f"{node}/hello.txt", content="hi\n"),
        call("Bash", command="pwd; cat hello.txt"),
        call("Edit", file_path=f"{node}/hello.txt", old_string="hi", new_string="hey"),
        call("Read", file_path=f"{node}/missing.txt"),
        {"text": f"Wrote {node}/hello.txt"},
    ]


def _text(store: Store) -> str:
    with store.read() as conn:
        entries = [(e.kind, e.data) for e in read_entries(conn, SID)]
        events = [(e.type, e.data) for e in read_events(conn, session_id=SID)]
        row = get_session(conn, SID)
    assert row is not None
    return json.dumps([entries, events, row.summary, row.reason])


def test_the_users_transcript_names_the_users_worktree_not_the_nodes(
    git_repo: Path, tmp_path: Path
) -> None:
    node_dir = tmp_path / "node-tmp" / "work" / SID
    add = ["git", "worktree", "add", "-q", "-b", "on-node", str(node_dir)]
    subprocess.run(add, cwd=git_repo, check=True)  # the node's own worktree
    model = write_script(tmp_path / "script.json", _calls(node_dir))
    with Store.open(tmp_path / "user.db") as user, Store.open(tmp_path / "node.db") as node:
        epoch = new_session(user, git_repo, model, SID)
        export = export_session(user, SID)
        where = {"cwd": node_dir, "worktree": node_dir, "repo": node_dir}
        seed_node_store(node, export, epoch, host_id="node-1", **where)
        with pumping(user, tmp_path / "node.db", SID, epoch, lambda _s: None) as errors:
            asyncio.run(asyncio.wait_for(run_on_node(node, SID, epoch, "node-1", "go"), 60))
        assert errors == []
        there, here = _text(node), _text(user)

        # on the node, the tools worked in its own worktree, which its transcript names
        assert (node_dir / "hello.txt").read_text() == "hey\n"  # written, then edited
        assert not (git_repo / "hello.txt").exists()
        assert f"{node_dir}\\nhi" in there and f"{node_dir}/missing.txt" in there
        # the user's transcript names the user's worktree only
        assert str(node_dir) not in here
        assert f"{git_repo}/hello.txt" in here  # the Write's and Edit's inputs, results
        assert f"{git_repo}\\nhi" in here  # Bash's pwd
        assert f"{git_repo}/missing.txt" in here  # the Read's error
        assert f"Wrote {git_repo}/hello.txt" in here

        # the session moves to another node: its transcript there names that node's path
        with user.write() as conn:
            second = acquire_lease(conn, SID, "supervisor-2", 30.0, 0.0, force=True)
        assert second is not None
        elsewhere = tmp_path / "node-2" / "work" / SID
        with Store.open(tmp_path / "node2.db") as node2:
            moved = {"cwd": elsewhere, "worktree": elsewhere, "repo": elsewhere}
            seed_node_store(node2, export_session(user, SID), second, host_id="n2", **moved)
            with node2.read() as conn:
                resumed = json.dumps([e.data for e in read_entries(conn, SID)])
    assert str(git_repo) not in resumed and str(node_dir) not in resumed
    assert f"{elsewhere}/hello.txt" in resumed
