"""Session rows, lookups, fenced updates and leases."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from covey.store import (
    SessionMeta,
    SessionRow,
    Store,
    acquire_lease,
    append_entry,
    find_session,
    get_session,
    insert_session,
    list_sessions,
    new_session_id,
    read_entries,
    release_lease,
    renew_lease,
    update_session,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "covey.db") as s:
        yield s


def _session(sid: str, **kw: object) -> SessionRow:
    base: dict[str, object] = {"kind": "print", "cwd": "/repo", "model": "m", "state": "queued"}
    return SessionRow(id=sid, **{**base, **kw})  # type: ignore[arg-type]


def _add(store: Store, *rows: SessionRow) -> None:
    with store.write() as conn:
        for row in rows:
            insert_session(conn, row)


def test_a_session_round_trips_with_its_meta(store: Store) -> None:
    with store.write() as conn:
        sid = new_session_id(conn)
        row = _session(
            sid,
            name="fix-bug",
            kind="background",
            agent="reviewer",
            permission_mode="acceptEdits",
            meta=SessionMeta.model_validate(
                {"worktree": "/repo/.covey/worktrees/a", "branch": "covey/a", "extra": 1}
            ),
        )
        insert_session(conn, row)
    assert len(sid) == 8 and sid.isalnum() and sid == sid.lower()
    with store.read() as conn:
        got = get_session(conn, sid)
        assert get_session(conn, "nope") is None
    assert got == row
    assert got.meta.extras == {"extra": 1}
    assert got.meta.dump() == {
        "worktree": "/repo/.covey/worktrees/a",
        "branch": "covey/a",
        "extra": 1,
    }


def test_a_new_row_is_queued_unleased_and_stamped_once() -> None:
    row = SessionRow.new(id="s0000001", kind="interactive", cwd="/r", model="m", now=42.0)
    assert (row.state, row.epoch, row.host_id, row.lease_expires_at) == ("queued", 0, None, None)
    assert row.created_at == row.updated_at == 42.0


def test_new_session_ids_are_unique(store: Store) -> None:
    with store.write() as conn:
        ids = set()
        for _ in range(200):
            sid = new_session_id(conn)
            insert_session(conn, _session(sid))
            ids.add(sid)
    assert len(ids) == 200


def test_duplicate_ids_are_refused(store: Store) -> None:
    _add(store, _session("abcd1234"))
    with pytest.raises(sqlite3.IntegrityError):
        _add(store, _session("abcd1234"))


def test_find_session_by_id_unique_prefix_then_newest_name(store: Store) -> None:
    _add(
        store,
        _session("abcd1234", name="old", updated_at=10.0),
        _session("abcd5678", name="work", updated_at=20.0),
        _session("wxyz0000", name="work", updated_at=30.0),
        _session("qrst0000", name="abcd", updated_at=5.0),
    )
    with store.read() as conn:

        def found(key: str) -> str | None:
            row = find_session(conn, key)
            return None if row is None else row.id

        assert found("abcd1234") == "abcd1234"
        assert found("abcd12") == "abcd1234"
        assert found("wxyz") == "wxyz0000"
        assert found("wxy") is None  # too short for a prefix
        assert found("abcd") == "qrst0000"  # ambiguous prefix: the name decides
        assert found("work") == "wxyz0000"  # the most recently updated of the name
        assert found("old") == "abcd1234"
        assert found("nothing") is None


def test_list_sessions_filters_and_orders_newest_first(store: Store) -> None:
    _add(
        store,
        _session("p0000001", updated_at=1.0, cwd="/a"),
        _session("p0000002", updated_at=3.0, cwd="/b", state="idle"),
        _session("c0000001", updated_at=2.0, kind="subagent", parent_id="p0000001"),
        _session("c0000002", updated_at=4.0, kind="teammate", parent_id="p0000002"),
    )
    with store.read() as conn:

        def ids(**kw: object) -> list[str]:
            return [r.id for r in list_sessions(conn, **kw)]  # type: ignore[arg-type]

        assert ids() == ["c0000002", "p0000002", "c0000001", "p0000001"]
        assert ids(parent_id=None) == ["p0000002", "p0000001"]
        assert ids(parent_id="p0000001") == ["c0000001"]
        assert ids(cwd=Path("/a")) == ["p0000001"]
        assert ids(kinds=["subagent", "teammate"]) == ["c0000002", "c0000001"]
        assert ids(states=["idle"]) == ["p0000002"]
        assert ids(limit=1) == ["c0000002"]
        assert ids(states=[]) == []


def test_update_session_is_fenced_by_epoch_and_bumps_updated_at(store: Store) -> None:
    _add(store, _session("s0000001", updated_at=1.0))
    with store.write() as conn:
        assert update_session(conn, "s0000001", 0, state="working", meta=SessionMeta(branch="b"))
        assert not update_session(conn, "s0000001", 7, state="failed", reason="stale")
        assert not update_session(conn, "missing0", 0, state="failed")
        with pytest.raises(TypeError, match="epoch"):
            update_session(conn, "s0000001", 0, epoch=5)  # type: ignore[call-arg]
    with store.read() as conn:
        row = get_session(conn, "s0000001")
    assert row is not None
    assert (row.state, row.reason, row.meta.branch) == ("working", None, "b")
    assert row.updated_at > 1.0


def test_lease_lifecycle_expiry_takeover_and_fencing(store: Store) -> None:
    _add(store, _session("s0000001"))
    sid = "s0000001"
    with store.write() as conn:
        a = acquire_lease(conn, sid, "host-a", 30, now=1000.0)
        assert a == 1
        assert append_entry(conn, sid, a, "message", {"by": "a", "n": 1}) == 1
        assert acquire_lease(conn, sid, "host-a", 30, now=1010.0) == a  # ours, live: same epoch
        assert acquire_lease(conn, sid, "host-b", 30, now=1020.0) is None  # live elsewhere
        assert renew_lease(conn, sid, "host-a", a, 30, now=1030.0)  # now expires at 1060
        assert acquire_lease(conn, sid, "host-b", 30, now=1059.0) is None
        b = acquire_lease(conn, sid, "host-b", 30, now=1060.0)  # expired: taken over
        assert b == a + 1
        # the old holder still runs; every fenced write of it is refused
        assert not update_session(conn, sid, a, state="failed", reason="zombie")
        assert append_entry(conn, sid, a, "message", {"by": "a", "n": 2}) is None
        assert not renew_lease(conn, sid, "host-a", a, 30, now=1061.0)
        assert not release_lease(conn, sid, "host-a", a)
        assert acquire_lease(conn, sid, "host-a", 30, now=1062.0) is None
        # the new holder writes normally
        assert update_session(conn, sid, b, state="working")
        assert append_entry(conn, sid, b, "message", {"by": "b", "n": 1}) == 2
        c = acquire_lease(conn, sid, "host-c", 30, now=1063.0, force=True)
        assert c == b + 1
        assert not update_session(conn, sid, b, state="idle")
        assert release_lease(conn, sid, "host-c", c)
        d = acquire_lease(conn, sid, "host-c", 30, now=1064.0)  # released: free, new epoch
        assert d == c + 1
        assert acquire_lease(conn, "missing0", "host-c", 30, now=1064.0) is None
    with store.read() as conn:
        row = get_session(conn, sid)
        entries = read_entries(conn, sid)
    assert row is not None
    assert (row.state, row.reason, row.host_id, row.epoch) == ("working", None, "host-c", d)
    assert row.lease_expires_at == 1094.0
    assert [e.data["by"] for e in entries] == ["a", "b"]


def _race(hosts: list[Store], sid: str) -> dict[str, int | None]:
    """Each host reads the session, then all try to take its lease at the same moment; a
    loser goes on writing with the epoch it had read. Returns each host's acquire result."""
    start = threading.Barrier(len(hosts))
    won: dict[str, int | None] = {}

    def race(name: str, store: Store) -> None:
        with store.read() as conn:
            seen = get_session(conn, sid)
        assert seen is not None and seen.epoch == 0
        start.wait()
        with store.write() as conn:
            won[name] = acquire_lease(conn, sid, name, 30, now=1000.0)
        if won[name] is None:
            with store.write() as conn:
                assert not update_session(conn, sid, seen.epoch, state="failed")
                assert append_entry(conn, sid, seen.epoch, "message", {}) is None

    threads = [threading.Thread(target=race, args=(f"host-{i}", s)) for i, s in enumerate(hosts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won


def test_two_hosts_racing_for_a_lease_exactly_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "covey.db"
    with Store.open(path) as first, Store.open(path) as second:
        for round_ in range(20):
            sid = f"race{round_:04d}"
            _add(first, _session(sid))
            won = _race([first, second], sid)
            winners = [name for name, epoch in won.items() if epoch is not None]
            assert len(won) == 2 and len(winners) == 1
            with first.read() as conn:
                row = get_session(conn, sid)
                assert read_entries(conn, sid) == []
            assert row is not None
            assert (row.host_id, row.epoch, row.state) == (winners[0], 1, "queued")


def test_read_then_write_functions_refuse_to_run_outside_a_transaction(store: Store) -> None:
    _add(store, _session("s0000001"))
    conn = sqlite3.connect(store.path, isolation_level=None)
    try:
        with pytest.raises(RuntimeError, match=r"store\.write"):
            acquire_lease(conn, "s0000001", "h", 30, now=0.0)
        with pytest.raises(RuntimeError, match=r"store\.write"):
            append_entry(conn, "s0000001", 0, "message", {})
    finally:
        conn.close()
