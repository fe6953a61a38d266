"""A session run against a node store and applied to the user's store: the same session as run
locally; a stale epoch writes nothing; a restarted pump applies nothing twice; a tool result
whose snapshot was not received does not count. Two real SQLite stores, the scripted model,
the real `SessionHost`."""

from __future__ import annotations

import asyncio
import pickle
import subprocess
from pathlib import Path

import pytest

from covey.executors.replica import (
    SnapshotFailed,
    SnapshotRecord,
    StaleEpoch,
    applied_cursor,
    apply,
    collect,
    export_session,
)
from covey.sessions.resume import INTERRUPTED, load_conversation
from covey.store import Store
from covey.store.events import read_events
from covey.store.sessions import acquire_lease
from covey.store.transcript import read_entries
from replicatools import new_session, open_host, pumping, run_on_node, seed, view, write_script

SID = "replica1"


def _usage(i: int, o: int) -> dict[str, int]:
    return {"input": i, "output": o, "cache_read": 0, "cache_write": 0}


TOOL_TURNS = [
    {
        "usage": _usage(1000, 50),
        "tool_calls": [{"name": "Bash", "input": {"command": "echo hello > out.txt"}}],
    },
    {"usage": _usage(1200, 20), "text": "Wrote out.txt."},
]
TEXT_TURNS = [{"usage": _usage(800, 30), "text": "Nothing to do.\nReally."}]


def _repo(path: Path) -> Path:
    path.mkdir()
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "test@covey.invalid"],
        ["config", "user.name", "covey test"],
        ["commit", "-q", "--allow-empty", "-m", "init"],
    ):
        subprocess.run(["git", *args], cwd=path, check=True)
    return path


def _event_types(store: Store) -> list[str]:
    with store.read() as conn:
        return [e.type for e in read_events(conn, session_id=SID)]


def _run_on_node(
    tmp_path: Path, store: Store, repo: Path, turns: list[dict[str, object]], on_snapshot=None
) -> tuple[list[SnapshotRecord], list[BaseException]]:
    model = write_script(tmp_path / "script.json", turns)
    epoch = new_session(store, repo, model, SID)
    received: list[SnapshotRecord] = []
    node_path = tmp_path / "node.db"
    with Store.open(node_path) as node_store:
        host_id = seed(store, node_store, SID, epoch)
        with pumping(store, node_path, SID, epoch, on_snapshot or received.append) as errors:
            asyncio.run(run_on_node(node_store, SID, epoch, host_id, "go"))
    return received, errors


def test_a_session_run_on_a_node_and_applied_equals_it_run_locally(tmp_path: Path) -> None:
    with Store.open(tmp_path / "user.db") as user, Store.open(tmp_path / "local.db") as local:
        repo = _repo(tmp_path / "node-repo")
        received, errors = _run_on_node(tmp_path, user, repo, TOOL_TURNS)
        assert errors == []

        local_repo = _repo(tmp_path / "local-repo")
        epoch = new_session(local, local_repo, write_script(tmp_path / "s2.json", TOOL_TURNS), SID)
        host = open_host(local, SID, epoch, "local-host")
        try:
            asyncio.run(host.run_turn("go"))
        finally:
            host.close()

        remote, here = view(user, SID), view(local, SID)
        assert [k for _, k, _ in remote["transcript"]] == [
            "message", "message", "tool_result", "message", "message",
        ]  # fmt: skip
        assert remote == here
        assert remote["state"][:2] == ("completed", "end_turn")
        assert _event_types(user) == _event_types(local)
    (snap,) = received  # one tool batch, one snapshot, holding the tool's effect
    shown = subprocess.run(
        ["git", "show", f"{snap.sha}:out.txt"], cwd=repo, capture_output=True, text=True
    )
    assert shown.stdout == "hello\n"
    assert snap.bundle == b"bundle of " + snap.sha.encode()


def test_a_stale_epoch_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    with Store.open(tmp_path / "user.db") as user:
        repo = _repo(tmp_path / "repo")
        epoch = new_session(user, repo, write_script(tmp_path / "s.json", TEXT_TURNS), SID)
        export = export_session(user, SID)
        assert pickle.loads(pickle.dumps(export)) == export
        with Store.open(tmp_path / "node.db") as node:
            host_id = seed(user, node, SID, epoch)
            asyncio.run(run_on_node(node, SID, epoch, host_id, "go"))  # no tools: no gate
            batch = collect(node, SID, 0)
        assert len(batch.records) > 5
        before = view(user, SID)
        with user.write() as conn:  # another host takes the session over
            taken = acquire_lease(conn, SID, "other:2:abc", 30.0, 0.0, force=True)
        assert taken == epoch + 1
        with pytest.raises(StaleEpoch):
            apply(user, SID, epoch, batch, lambda _s: None)
        with pytest.raises(StaleEpoch):  # the new owner cannot apply the old node's batch
            apply(user, SID, epoch + 1, batch, lambda _s: None)
        assert view(user, SID) == before
        assert before["transcript"] == [] and _event_types(user) == []
        assert applied_cursor(user, SID, epoch) == applied_cursor(user, SID, epoch + 1) == 0


def test_a_restarted_pump_catches_up_without_duplicates(tmp_path: Path) -> None:
    user_path = tmp_path / "user.db"
    with Store.open(user_path) as user:
        repo = _repo(tmp_path / "repo")
        epoch = new_session(user, repo, write_script(tmp_path / "s.json", TEXT_TURNS), SID)
        node = Store.open(tmp_path / "node.db")
        host_id = seed(user, node, SID, epoch)
        asyncio.run(run_on_node(node, SID, epoch, host_id, "go"))
        first = collect(node, SID, 0, limit=4)
        assert first.more
        assert pickle.loads(pickle.dumps(first)) == first  # it crosses Ray's object store
        apply(user, SID, epoch, first, lambda _s: None)
    # the supervisor died before it told the node (no acknowledge): the next one starts
    with Store.open(user_path) as user:
        after = applied_cursor(user, SID, epoch)
        assert after == first.cursor
        everything = collect(node, SID, 0)  # the node still has it all
        apply(user, SID, epoch, everything, lambda _s: None)
        apply(user, SID, epoch, first, lambda _s: None)  # a late duplicate: nothing
        apply(user, SID, epoch, everything, lambda _s: None)
        with user.read() as conn, node.read() as nconn:
            here = [(e.seq, e.kind, e.data) for e in read_entries(conn, SID)]
            there = [(e.seq, e.kind, e.data) for e in read_entries(nconn, SID)]
        assert here == there and len(here) == 2
        assert view(user, SID)["usage"] == view(node, SID)["usage"]
        assert view(user, SID)["state"] == view(node, SID)["state"]
        assert view(user, SID)["state"][:2] == ("completed", "end_turn")
        assert _event_types(user) == _event_types(node)
    node.close()


def test_a_tool_result_whose_snapshot_failed_does_not_count(tmp_path: Path) -> None:
    def refuse(snap: SnapshotRecord) -> None:
        raise RuntimeError("the branch moved")

    with Store.open(tmp_path / "user.db") as user:
        repo = _repo(tmp_path / "repo")
        _received, errors = _run_on_node(tmp_path, user, repo, TOOL_TURNS, on_snapshot=refuse)
        (error,) = errors
        assert isinstance(error, SnapshotFailed) and "the branch moved" in str(error)
        seen = view(user, SID)
        with user.read() as conn:
            entries = read_entries(conn, SID)
    assert [k for _, k, _ in seen["transcript"]] == ["message", "message"]  # prompt, the call
    assert seen["state"][0] == "working"
    resumed = load_conversation(entries)  # a resume reports the call, never re-runs it
    (answer,) = resumed[-1].content
    assert answer.is_error and answer.content == INTERRUPTED
