"""Transcript, events, commands and the usage ledger."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from covey.messages import Message, Usage, dump_message, load_message
from covey.store import (
    CommandRow,
    SessionRow,
    Store,
    append_entry,
    append_event,
    claim_command,
    claim_commands,
    enqueue_command,
    finish_command,
    get_command,
    insert_session,
    last_event_id,
    last_seq,
    pending_commands,
    read_entries,
    read_events,
    record_usage,
    requeue_claimed,
    session_usage,
    transcript,
    usage_rows,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "covey.db") as s:
        yield s


def _add(store: Store, sid: str, parent_id: str | None = None) -> None:
    with store.write() as conn:
        insert_session(
            conn,
            SessionRow(
                id=sid, kind="print", cwd="/r", model="m", state="working", parent_id=parent_id
            ),
        )


def test_transcript_keeps_order_per_session_and_reads_after_a_seq(store: Store) -> None:
    _add(store, "s0000001")
    _add(store, "s0000002")
    for i in range(30):
        with store.write() as conn:
            msg = dump_message(Message.user(f"step {i}"))
            assert append_entry(conn, "s0000001", 0, "message", msg, now=float(i)) == i + 1
            if i % 3 == 0:
                append_entry(conn, "s0000002", 0, "tool_result", {"i": i})
    with store.read() as conn:
        entries = read_entries(conn, "s0000001")
        later = read_entries(conn, "s0000001", after_seq=25)
        other = read_entries(conn, "s0000002")
        assert last_seq(conn, "s0000001") == 30
        assert last_seq(conn, "missing0") == 0
    assert [e.seq for e in entries] == list(range(1, 31))
    assert [load_message(e.data).text for e in entries] == [f"step {i}" for i in range(30)]
    assert [e.created_at for e in entries] == [float(i) for i in range(30)]
    assert [e.seq for e in later] == [26, 27, 28, 29, 30]
    assert [(e.seq, e.kind, e.data["i"]) for e in other][:2] == [
        (1, "tool_result", 0),
        (2, "tool_result", 3),
    ]


def test_transcript_is_append_only_and_needs_a_session(store: Store) -> None:
    assert not [name for name in transcript.__all__ if "update" in name or "delete" in name]
    with store.write() as conn:
        assert append_entry(conn, "missing0", 0, "message", {}) is None


def test_events_follow_by_id_and_filter_by_session(store: Store) -> None:
    with store.write() as conn:
        assert last_event_id(conn) == 0
        ids = [append_event(conn, sid, "tick", {"n": n}) for n, sid in enumerate("ababN")]
    with store.read() as conn:
        assert [e.id for e in read_events(conn)] == ids == sorted(ids)
        assert [e.data["n"] for e in read_events(conn, session_id="a")] == [0, 2]
        assert [e.data["n"] for e in read_events(conn, after_id=ids[2])] == [3, 4]
        assert [e.data["n"] for e in read_events(conn, limit=2)] == [0, 1]
        assert last_event_id(conn) == ids[-1]


def test_commands_go_pending_claimed_done(store: Store) -> None:
    with store.write() as conn:
        stop = enqueue_command(conn, "s1", "stop")
        reply = enqueue_command(conn, "s1", "reply", {"text": "yes"})
        dispatch = enqueue_command(conn, None, "dispatch", {"prompt": "go"})
    with store.read() as conn:
        assert [c.id for c in pending_commands(conn)] == [stop, reply, dispatch]
        assert [c.id for c in pending_commands(conn, types=["dispatch"])] == [dispatch]
    with store.write() as conn:
        got = claim_commands(conn, claimer="host-1", session_id="s1", types=["reply"])
        assert [(c.id, c.status, c.claimed_by, c.data) for c in got] == [
            (reply, "claimed", "host-1", {"text": "yes"})
        ]
        assert claim_commands(conn, claimer="host-2", session_id="s1", types=["reply"]) == []
        assert not finish_command(conn, reply, "done", {"ok": True}, claimer="host-2")
        assert finish_command(conn, reply, "done", {"ok": True}, claimer="host-1", now=5.0)
        assert not finish_command(conn, reply, "failed")  # finished already
        assert finish_command(conn, stop, "failed", {"error": "no such session"})
    with store.read() as conn:
        done = get_command(conn, reply)
        assert get_command(conn, 999) is None
        assert [c.id for c in pending_commands(conn)] == [dispatch]
    assert done == CommandRow(
        reply, "s1", done.ts, "reply", {"text": "yes"}, "done", "host-1", 5.0, {"ok": True}
    )


def test_claims_of_a_dead_claimer_can_be_requeued(store: Store) -> None:
    with store.write() as conn:
        cid = enqueue_command(conn, "s1", "stop")
        claim_commands(conn, claimer="dead-host")
        assert pending_commands(conn) == []
        assert requeue_claimed(conn, "dead-host") == 1
        assert [c.id for c in claim_commands(conn, claimer="new-host")] == [cid]


def test_two_claimers_never_claim_the_same_command(tmp_path: Path) -> None:
    path = tmp_path / "covey.db"
    with Store.open(path) as setup, setup.write() as conn:
        ids = [enqueue_command(conn, "s1", "reply", {"n": n}) for n in range(300)]
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def claimer(name: str) -> None:
        with Store.open(path) as store:
            start.wait()
            while True:
                with store.write() as conn:
                    got = claim_commands(conn, claimer=name, limit=7)
                if not got:
                    return
                assert all(c.claimed_by == name for c in got)
                claimed[name] += [c.id for c in got]

    threads = [threading.Thread(target=claimer, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed["a"] + claimed["b"]) == ids
    assert not set(claimed["a"]) & set(claimed["b"])


def test_usage_rolls_up_agent_paths_and_descendant_sessions(store: Store) -> None:
    _add(store, "parent01")
    _add(store, "child001", parent_id="parent01")
    _add(store, "grandch1", parent_id="child001")
    _add(store, "other001")
    u = Usage(input=100, output=10, cache_read=1000, cache_write=50)
    with store.write() as conn:
        record_usage(conn, "parent01", "main", "sonnet", u, 0.25, now=1.0)
        record_usage(conn, "parent01", "main/reviewer-1", "haiku", u, 0.5, now=2.0)
        record_usage(conn, "child001", "main", "sonnet", u, 1.0, now=3.0)
        record_usage(conn, "grandch1", "main", "sonnet", u, 2.0, now=4.0)
        record_usage(conn, "other001", "main", "sonnet", u, 8.0, now=5.0)
    with store.read() as conn:
        assert session_usage(conn, "parent01") == (u + u + u + u, 3.75)
        assert session_usage(conn, "child001") == (u + u, 3.0)
        assert session_usage(conn, "missing0") == (Usage(), 0.0)
        own = usage_rows(conn, session_id="parent01")
        tree = usage_rows(conn, session_id="parent01", include_descendants=True)
        window = usage_rows(conn, since=2.0, until=4.0)
    assert [(r.agent_path, r.model, r.usage, r.cost_usd) for r in own] == [
        ("main", "sonnet", u, 0.25),
        ("main/reviewer-1", "haiku", u, 0.5),
    ]
    assert [r.session_id for r in tree] == ["parent01", "parent01", "child001", "grandch1"]
    assert [r.ts for r in window] == [2.0, 3.0]


def test_claim_command_takes_exactly_one_command_once(store: Store) -> None:
    with store.write() as conn:
        early = enqueue_command(conn, "s1", "reply", {"text": "early"})
        late = enqueue_command(conn, "s1", "reply", {"text": "late"})
        assert claim_command(conn, late, claimer="host-1")
        assert not claim_command(conn, late, claimer="host-2")
    with store.read() as conn:
        assert [c.id for c in pending_commands(conn)] == [early]
        claimed = get_command(conn, late)
    assert claimed is not None and claimed.claimed_by == "host-1"
