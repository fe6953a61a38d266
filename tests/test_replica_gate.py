"""The tool gate ships a snapshot only after a batch that may change the worktree: a batch
of read-only tools (Glob, Read, Grep) has no effects to ship, so it costs no git process,
and its results are applied all the same."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from covey.executors.replica import SnapshotRecord
from covey.executors.replica_node import ToolGate, gate_tools
from covey.store import Store
from replicatools import new_session, open_host, pumping, seed, snapshotter, view, write_script

SID = "replica1"


def _call(name: str, **tool_input: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "input": tool_input}]}


def test_a_read_only_batch_ships_no_snapshot_a_writing_one_does(
    git_repo: Path, tmp_path: Path
) -> None:
    turns = [
        _call("Glob", pattern="*.md"),
        _call("Write", file_path="new.txt", content="x\n"),
        _call("Read", file_path="new.txt"),
        {"text": "done"},
    ]
    model = write_script(tmp_path / "script.json", turns)
    node_path = tmp_path / "node.db"
    snapshots: list[str] = []
    received: list[SnapshotRecord] = []
    with Store.open(tmp_path / "user.db") as user, Store.open(node_path) as node:
        epoch = new_session(user, git_repo, model, SID)
        host_id = seed(user, node, SID, epoch)
        take = snapshotter(git_repo, SID)

        def snapshot() -> Any:
            snap = take()
            snapshots.append(snap.sha)
            return snap

        async def main() -> None:
            host = await asyncio.to_thread(open_host, node, SID, epoch, host_id)
            gate_tools(host, ToolGate(node, SID, snapshot))
            try:
                with pumping(user, node_path, SID, epoch, received.append) as errors:
                    await asyncio.wait_for(host.run_turn("go"), 60)
                assert errors == []
            finally:
                host.close()

        asyncio.run(main())
        shown = view(user, SID)
        assert shown["transcript"] == view(node, SID)["transcript"]
        assert shown["state"][:2] == ("completed", "end_turn")
    assert len(snapshots) == 1  # the Write's batch only
    assert [r.sha for r in received] == snapshots
    assert (git_repo / "new.txt").read_text() == "x\n"
