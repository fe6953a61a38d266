"""A teammate of a team led on a node has its tool batches gated as the root's are: its
calls reach the user's store before they run (a node lost mid-Bash leaves them there, to be
answered as interrupted, never re-run), and its results only after the snapshot holding
their effects. Two real SQLite stores, the scripted model, the real `SessionHost`; the
snapshots are real commits of the worktree the lead and its teammate share."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from covey.executors.replica import (
    Record,
    SnapshotRecord,
    acknowledge,
    applied_cursor,
    apply,
    collect,
)
from covey.sessions.resume import INTERRUPTED
from covey.store import Store
from covey.store.sessions import acquire_lease, list_sessions
from covey.store.transcript import read_entries
from replicatools import new_session, pumping, run_on_node, seed
from teamtools import spawn

SID = "replica1"
TOOLS = Path(__file__).with_name("replicatools.py")


def _lead(then: str) -> list[dict[str, Any]]:
    return [
        {"tool_calls": [spawn("alice", "Do it.")]},
        {"text": "waiting for alice"},
        {"text": then},
        {"text": "spare"},
        {"text": "spare"},
    ]


def _script(path: Path, alice: list[dict[str, Any]]) -> str:
    turns = [*alice, {"text": "ALICE done"}, {"text": "spare"}]
    path.write_text(
        json.dumps({"turns": _lead("LEAD-FINAL"), "agents": {"alice": {"turns": turns}}})
    )
    return f"scripted:{path}"


def _alice_results(store: Store) -> list[dict[str, Any]]:
    with store.read() as conn:
        rows = list_sessions(conn, kinds=["teammate"])
        if not rows:
            return []
        entries = read_entries(conn, rows[0].id)
    return [e.data for e in entries if e.kind == "tool_result"]


def test_a_teammates_result_counts_only_after_the_snapshot_holding_its_effects(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVEY_EXPERIMENTAL_AGENT_TEAMS", "1")
    write = {
        "tool_calls": [{"name": "Write", "input": {"file_path": "alice.txt", "content": "A\n"}}]
    }
    model = _script(tmp_path / "script.json", [write])
    received: list[tuple[str, int]] = []
    with Store.open(tmp_path / "user.db") as user, Store.open(tmp_path / "node.db") as node:
        epoch = new_session(user, git_repo, model, SID)
        host_id = seed(user, node, SID, epoch)

        def on_snapshot(record: SnapshotRecord) -> None:
            received.append((record.sha, len(_alice_results(user))))

        with pumping(user, tmp_path / "node.db", SID, epoch, on_snapshot) as errors:
            asyncio.run(asyncio.wait_for(run_on_node(node, SID, epoch, host_id, "go"), 60))
        assert errors == []
        assert len(_alice_results(user)) == 1
    holding = [
        results
        for sha, results in received
        if subprocess.run(["git", "cat-file", "-e", f"{sha}:alice.txt"], cwd=git_repo).returncode
        == 0
    ]
    assert holding, "no snapshot shipped alice's file"
    assert holding[0] == 0  # her result was not in the user's store before it


def _is_alice_bash(record: Record | SnapshotRecord) -> bool:
    if not isinstance(record, Record) or record.kind != "entry":
        return False
    data = record.data
    return data.get("sid") != SID and '"Bash"' in json.dumps(data["data"])


def test_a_teammates_bash_runs_only_once_its_call_is_in_the_users_store(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVEY_EXPERIMENTAL_AGENT_TEAMS", "1")
    bash = {"tool_calls": [{"name": "Bash", "input": {"command": "echo ran >> bash.log"}}]}
    model = _script(tmp_path / "script.json", [bash])
    node_path = tmp_path / "node.db"
    blocked, let_go, done = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []
    with Store.open(tmp_path / "user.db") as user:
        epoch = new_session(user, git_repo, model, SID)
        with Store.open(node_path) as node:
            host_id = seed(user, node, SID, epoch)

        def supervisor() -> None:  # pumps everything but alice's Bash call, until let go
            with Store.open(node_path) as node:
                while True:
                    finished = done.is_set()  # then one last round
                    after = applied_cursor(user, SID, epoch)
                    batch = collect(node, SID, after)
                    cut = next((i for i, r in enumerate(batch.records) if _is_alice_bash(r)), None)
                    if cut is not None and not let_go.is_set():
                        blocked.set()
                        kept = batch.records[:cut]
                        cursor = kept[-1].id if kept else after
                        batch = dataclasses.replace(batch, records=kept, cursor=cursor)
                    if batch.cursor != after:
                        acknowledge(node, SID, apply(user, SID, epoch, batch, lambda _s: None))
                    if finished:
                        return
                    time.sleep(0.02)

        def run_node() -> None:
            try:
                with Store.open(node_path) as node:
                    run = run_on_node(node, SID, epoch, host_id, "go")
                    asyncio.run(asyncio.wait_for(run, 60))
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=supervisor), threading.Thread(target=run_node)]
        for t in threads:
            t.start()
        try:
            assert blocked.wait(30), "alice never asked for Bash"
            time.sleep(1.0)
            assert not (git_repo / "bash.log").exists()  # her call is not applied: no run
            let_go.set()
            threads[1].join(60)
        finally:
            let_go.set()
            done.set()
            for t in threads:
                t.join(60)
        assert errors == []
        assert (git_repo / "bash.log").read_text() == "ran\n"
        assert len(_alice_results(user)) == 1


def test_a_node_lost_mid_teammate_bash_resumes_it_interrupted_not_rerun(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVEY_EXPERIMENTAL_AGENT_TEAMS", "1")
    marker = tmp_path / "runs.txt"
    sleeper = {"name": "Bash", "input": {"command": f"echo ran >> {marker}; sleep 30"}}
    model = _script(tmp_path / "script.json", [{"tool_calls": [sleeper]}])
    with Store.open(tmp_path / "user.db") as user:
        epoch = new_session(user, git_repo, model, SID)
        first = tmp_path / "node1.db"
        with Store.open(first) as node:
            host_id = seed(user, node, SID, epoch)
        proc = subprocess.Popen(
            [sys.executable, str(TOOLS), str(first), SID, str(epoch), host_id, "go"],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # a slow supervisor: alice's Bash must wait for her call to be applied
            with pumping(user, first, SID, epoch, lambda _s: None, every_s=0.5, last_round=False):
                deadline = time.monotonic() + 60
                while not marker.exists():
                    assert time.monotonic() < deadline, "alice's Bash never started"
                    time.sleep(0.05)
            os.killpg(proc.pid, signal.SIGKILL)  # the node is lost, its store with it
            proc.wait()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        with user.write() as conn:  # the session moves to another node: a new epoch
            second_epoch = acquire_lease(conn, SID, "supervisor-2", 30.0, 0.0, force=True)
        assert second_epoch is not None
        second = tmp_path / "node2.db"
        with Store.open(second) as node:
            host_id = seed(user, node, SID, second_epoch)
            with pumping(user, second, SID, second_epoch, lambda _s: None) as errors:
                run = run_on_node(node, SID, second_epoch, host_id, "continue")
                asyncio.run(asyncio.wait_for(run, 60))
        assert errors == []
        with user.read() as conn:
            (alice,) = list_sessions(conn, kinds=["teammate"])
            entries = read_entries(conn, alice.id)
        (answer,) = [
            block
            for e in entries
            if e.kind == "message" and e.data["role"] == "user"
            for block in e.data["content"]
            if block.get("type") == "tool_result"
        ]
        assert answer["is_error"] and answer["content"] == INTERRUPTED
        assert alice.state == "completed"
    assert marker.read_text() == "ran\n"  # ran once, on the lost node only
