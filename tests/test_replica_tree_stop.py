"""`covey stop SUBAGENT_ID` of a subagent its session started on a node: the stop written in
the user's store is forwarded to the node, which stops that subagent only (its row
`stopped`, its parent's Agent call an error saying so); the parent goes on, and the
command's outcome comes back. `request_stop` of such a subagent queues that command, and
never signals the process holding its lease (on a loopback cluster, a Ray worker)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from pathlib import Path

from bgtools import LONG_SUBAGENT_SCRIPT
from covey.executors.replica_stops import stop_subagents
from covey.sessions.background import request_stop
from covey.store import Store
from covey.store.commands import enqueue_command, get_command, pending_commands
from covey.store.session_meta import SessionMeta
from covey.store.sessions import SessionRow, get_session, insert_session, list_sessions
from covey.store.transcript import read_entries
from replicatools import new_session, pumping, run_on_node, seed

SID = "replica1"


def _subagent(store: Store) -> SessionRow | None:
    with store.read() as conn:
        rows = list_sessions(conn, kinds=["subagent"])
    return rows[0] if rows else None


def test_a_stop_of_a_subagent_on_the_node_stops_it_and_its_parent_goes_on(
    git_repo: Path, tmp_path: Path
) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(LONG_SUBAGENT_SCRIPT))
    node_path = tmp_path / "node.db"
    with Store.open(tmp_path / "user.db") as user, Store.open(node_path) as node:
        epoch = new_session(user, git_repo, f"scripted:{script}", SID)
        host_id = seed(user, node, SID, epoch)
        command: list[int] = []

        async def stop_it_once_working() -> None:
            while (row := _subagent(user)) is None or row.state != "working":
                await asyncio.sleep(0.05)
            with user.write() as conn:  # what `covey stop SUBAGENT_ID` writes
                command.append(enqueue_command(conn, row.id, "stop"))

        async def main() -> None:
            watcher = asyncio.create_task(stop_subagents(node, SID, poll_s=0.05))
            stopper = asyncio.create_task(stop_it_once_working())
            try:
                await asyncio.wait_for(run_on_node(node, SID, epoch, host_id, "go"), 30)
            finally:
                watcher.cancel()
                stopper.cancel()

        with pumping(user, node_path, SID, epoch, lambda _s: None) as errors:
            asyncio.run(main())
        assert errors == []
        child = _subagent(user)
        assert child is not None and (child.state, child.reason) == ("stopped", "stopped by user")
        with user.read() as conn:
            root = get_session(conn, SID)
            done = get_command(conn, command[0])
            entries = read_entries(conn, SID)
        assert root is not None and root.state == "completed"
        assert done is not None and done.status == "done" and done.result == {"stopped": True}
        results = [
            block
            for e in entries
            if e.kind == "message" and e.data["role"] == "user"
            for block in e.data["content"]
            if block.get("type") == "tool_result"
        ]
        (result,) = results
        assert result["is_error"] and "stopped by the user" in str(result["content"])


def test_request_stop_of_a_subagent_on_a_node_queues_a_command_and_signals_nobody(
    tmp_path: Path,
) -> None:
    holder = subprocess.Popen(["sleep", "30"])  # the node's process holding the lease
    try:
        with Store.open(tmp_path / "user.db") as user:
            root = SessionRow.new(
                id=SID,
                kind="background",
                cwd=str(tmp_path),
                model="m",
                meta=SessionMeta(node="a" * 56),
            )
            lease = {"host_id": f"{socket.gethostname()}:{holder.pid}:abcdef:node"}
            child = SessionRow.new(
                id="kid1", kind="subagent", cwd=str(tmp_path), model="m", parent_id=SID
            )
            with user.write() as conn:
                insert_session(conn, root)
                insert_session(conn, child)
                conn.execute(
                    "UPDATE sessions SET state = 'working', host_id = ?, epoch = 1,"
                    " lease_expires_at = ? WHERE id = 'kid1'",
                    (lease["host_id"], time.time() + 30),
                )
            assert request_stop(user, "kid1") == "requested"
            with user.read() as conn:
                (queued,) = pending_commands(conn, session_id="kid1")
            assert queued.type == "stop"
        time.sleep(0.2)
        assert holder.poll() is None  # not interrupted: the node acts on the command
    finally:
        holder.kill()
        holder.wait()
