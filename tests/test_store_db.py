"""The store's connection: opening, migrations, transactions, threads, unusable files."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import covey.store
from covey.errors import UserError
from covey.store import SCHEMA_VERSION, Store, append_event, read_events
from covey.store.migrations import MIGRATIONS


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {r[0] for r in rows if not r[0].startswith("sqlite_")}


def test_public_surface_is_pinned() -> None:
    assert sorted(covey.store.__all__) == sorted(
        [
            "BUSY_TIMEOUT_S",
            "MIGRATIONS",
            "RETRY_FOR_S",
            "SCHEMA_VERSION",
            "CommandRow",
            "CommandStatus",
            "EventRow",
            "SessionFields",
            "SessionKind",
            "SessionMeta",
            "SessionRow",
            "SessionState",
            "Store",
            "StoreBusy",
            "StoreStatistics",
            "TranscriptEntry",
            "UsageRow",
            "acquire_lease",
            "append_entry",
            "append_event",
            "claim_command",
            "claim_commands",
            "claimers",
            "enqueue_command",
            "finish_command",
            "find_session",
            "get_command",
            "get_session",
            "insert_session",
            "last_event_id",
            "last_seq",
            "list_sessions",
            "new_session_id",
            "pending_commands",
            "read_entries",
            "read_events",
            "record_usage",
            "release_lease",
            "renew_lease",
            "requeue_claimed",
            "session_usage",
            "update_session",
            "usage_rows",
        ]
    )


def test_open_defaults_to_covey_home_with_wal_and_the_schema(covey_home: Path) -> None:
    with Store.open() as store:
        assert store.path == covey_home / "covey.db"
        with store.read() as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            assert _tables(conn) == {
                "sessions",
                "transcript",
                "events",
                "commands",
                "usage",
                "tool_runs",
                "teams",
                "team_members",
                "team_tasks",
                "team_task_blockers",
                "team_mailbox",
                "rate_buckets",
                "rate_endpoints",
                "rate_queue",
                "replica_journal",
                "replica_holds",
                "replica_cursors",
            }


def test_migrations_apply_once_and_reopening_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "covey.db"
    with Store.open(path) as store, store.write() as conn:
        append_event(conn, None, "hello", {})
    assert _pragma(path, "user_version") == SCHEMA_VERSION == len(MIGRATIONS)
    schema = _pragma(path, "schema_version")
    for _ in range(3):
        with Store.open(path) as store, store.read() as conn:
            assert [e.type for e in read_events(conn)] == ["hello"]
    assert _pragma(path, "schema_version") == schema  # no DDL ran again


_OPEN_AT_GATE = """
import pathlib, sys, time
from covey.store import Store
path, gate = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
while not gate.exists():
    time.sleep(0.005)
Store.open(path).close()
"""


def test_processes_opening_a_fresh_store_at_once_migrate_it_once(tmp_path: Path) -> None:
    path, gate = tmp_path / "covey.db", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT_GATE, str(path), str(gate)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(16)
    ]
    gate.touch()
    errors = [p.communicate()[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 16, errors
    assert _pragma(path, "user_version") == SCHEMA_VERSION


def test_write_commits_on_success_and_rolls_back_on_error(tmp_path: Path) -> None:
    with Store.open(tmp_path / "covey.db") as store:
        with pytest.raises(ValueError), store.write() as conn:
            append_event(conn, None, "lost", {})
            raise ValueError("boom")
        with store.write() as conn:
            append_event(conn, None, "kept", {})
        with store.read() as conn:
            assert [e.type for e in read_events(conn)] == ["kept"]


def test_nested_write_is_a_savepoint_and_read_inside_write_sees_it(tmp_path: Path) -> None:
    with Store.open(tmp_path / "covey.db") as store:
        with store.write() as conn:
            append_event(conn, None, "outer", {})
            with pytest.raises(KeyError), store.write() as inner:
                append_event(inner, None, "inner", {})
                raise KeyError("x")
            with store.write() as inner:
                append_event(inner, None, "inner-ok", {})
            with store.read() as reader:
                assert [e.type for e in read_events(reader)] == ["outer", "inner-ok"]
        with store.read() as conn:
            assert [e.type for e in read_events(conn)] == ["outer", "inner-ok"]
            with pytest.raises(RuntimeError, match=r"inside store\.read"), store.write():
                pass


def test_threads_each_get_a_connection_closed_when_they_end(tmp_path: Path) -> None:
    with Store.open(tmp_path / "covey.db") as store:
        start = threading.Barrier(8)

        def work(n: int) -> None:
            start.wait()
            for i in range(50):
                with store.write() as conn:
                    append_event(conn, f"t{n}", "tick", {"i": i})

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with store.read() as conn:
            events = read_events(conn)
        assert len(events) == 400
        assert [e.id for e in events] == sorted(e.id for e in events)
        for n in range(8):
            assert [e.data["i"] for e in events if e.session_id == f"t{n}"] == list(range(50))
        assert store.statistics().connections == 1  # the workers' went with them


def test_data_version_moves_on_any_commit_and_only_then(tmp_path: Path) -> None:
    path = tmp_path / "covey.db"
    with Store.open(path) as ui, Store.open(path) as other:
        v0 = ui.data_version()
        assert ui.data_version() == v0
        with other.write() as conn:
            append_event(conn, None, "from-another-process", {})
        v1 = ui.data_version()
        assert v1 != v0
        with ui.write() as conn:  # our own writes count too
            append_event(conn, None, "ours", {})
        assert ui.data_version() != v1


def test_a_closed_store_refuses_use(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "covey.db")
    store.close()
    with pytest.raises(RuntimeError, match="closed"), store.read():
        pass


def test_an_empty_file_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "covey.db"
    path.touch()
    Store.open(path).close()
    assert _pragma(path, "user_version") == SCHEMA_VERSION


def _assert_refused(path: Path, *words: str) -> None:
    before = _digest(path)
    with pytest.raises(UserError) as info:
        Store.open(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message
    assert _digest(path) == before


def test_a_garbage_file_is_refused_and_left_untouched(covey_home: Path) -> None:
    path = covey_home / "covey.db"
    path.write_bytes(b"these are not the pages you are looking for\n" * 200)
    _assert_refused(path, "not an SQLite database", "move it aside", "never repairs")
    assert sorted(p.name for p in covey_home.iterdir()) == ["covey.db"]


def test_a_short_garbage_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "covey.db"
    path.write_bytes(b"hi")
    _assert_refused(path, "not an SQLite database")


def test_a_corrupt_store_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "covey.db"
    Store.open(path).close()
    data = bytearray(path.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)  # keep the header, wreck the schema page
    path.write_bytes(bytes(data))
    _assert_refused(path, "corrupt", "move it aside")


def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "covey.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    _assert_refused(path, f"schema version {SCHEMA_VERSION + 5}", "upgrade covey")


def test_another_programs_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "covey.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE bookmarks (url TEXT)")
    conn.commit()
    conn.close()
    _assert_refused(path, "another program", "bookmarks")


def test_a_directory_in_the_way_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "covey.db"
    path.mkdir()
    with pytest.raises(UserError, match="is a directory"):
        Store.open(path)


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "covey.db"
    Store.open(path).close()
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user reads any file (root)")
        with pytest.raises(UserError, match="cannot read"):
            Store.open(path)
    finally:
        path.chmod(0o600)
