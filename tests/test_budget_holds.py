"""A session's budget reservation in its own column: no write of the row's meta can lose it,
and taking a session's lease clears what the previous host left (it has nothing in flight)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from covey.budget.spend_limits import BudgetLimits, InputTokens, SessionBudget, request_cost
from covey.errors import BudgetExceeded
from covey.messages import Message
from covey.models.base import ModelRequest
from covey.models.script import Script
from covey.models.scripted import ScriptedModel
from covey.sessions.state import set_state
from covey.store import Store
from covey.store.budget_holds import held_by, set_reserved
from covey.store.migrations import MIGRATIONS
from covey.store.session_meta import Pending, with_meta
from covey.store.sessions import acquire_lease, adopt_lease, get_session
from tui_seed import seed_session, store

__all__ = ["store"]  # the fixture, used by name

SONNET = ScriptedModel(Script(turns=[]), name="anthropic:claude-sonnet-4-5")
REQUEST = ModelRequest(system="be brief", messages=[Message.user("hello")])
ONE = request_cost(SONNET.name, InputTokens()(REQUEST), REQUEST.max_tokens)
"""What one request reserves."""


def test_a_meta_written_from_a_read_before_the_reservation_keeps_it(
    store: Store, tmp_path: Path
) -> None:
    """What `set_waiting` does (read the row, write its whole meta back) with a request's
    reservation published in between: the reservation still counts for another session."""
    busy, epoch = seed_session(store, tmp_path, name=None, state="working", kind="print")
    other, _ = seed_session(store, tmp_path, name=None, state="working", kind="print")
    limits = BudgetLimits(daily_usd=ONE * 1.5)
    with store.read() as conn:
        before = get_session(conn, busy)
    assert before is not None

    async def in_flight() -> None:
        async with SessionBudget(store, busy, limits)(REQUEST, SONNET):
            # the meta read before the reservation is written back whole
            pending = Pending(kind="permission", text="Bash: ls")
            meta = with_meta(before.meta, pending=pending)
            set_state(store, busy, epoch, "needs_input", "permission", meta=meta)
            with store.read() as conn:
                assert held_by(conn, busy) == ONE
            with pytest.raises(BudgetExceeded) as stopped:
                async with SessionBudget(store, other, limits)(REQUEST, SONNET):
                    pass
            assert stopped.value.budget == "daily"

    asyncio.run(in_flight())


def _reserve(store: Store, sid: str, usd: float) -> None:
    with store.write() as conn:
        set_reserved(conn, sid, usd)


def _held(store: Store, sid: str) -> float:
    with store.read() as conn:
        return held_by(conn, sid)


def test_taking_a_lease_clears_the_reservation_its_last_host_left(
    store: Store, tmp_path: Path
) -> None:
    """Acquired after the holder let go, forced from a live holder, adopted at the same epoch:
    the new host has nothing in flight. Renewing one's own live lease keeps it."""
    sid, _ = seed_session(store, tmp_path, name=None, state="working", kind="print", held=False)
    now = time.time()
    _reserve(store, sid, ONE)
    with store.write() as conn:
        epoch = acquire_lease(conn, sid, "host-a", 60.0, now)
    assert epoch is not None and _held(store, sid) == 0.0
    _reserve(store, sid, ONE)
    with store.write() as conn:  # host-a again, its lease live: its own requests in flight
        assert acquire_lease(conn, sid, "host-a", 60.0, now) == epoch
    assert _held(store, sid) == ONE
    with store.write() as conn:
        assert acquire_lease(conn, sid, "host-b", 60.0, now) is None  # host-a's is live
        epoch = acquire_lease(conn, sid, "host-b", 60.0, now, force=True)
    assert epoch is not None and _held(store, sid) == 0.0
    _reserve(store, sid, ONE)
    with store.write() as conn:
        assert adopt_lease(conn, sid, "host-c", epoch, 60.0, now)
    assert _held(store, sid) == 0.0


def test_a_store_migrated_to_the_column_keeps_a_reservation_left_in_meta(
    tmp_path: Path,
) -> None:
    path = tmp_path / "covey.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:-1]:
        migration(conn)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    for sid, meta in (
        ("held", {"budget_reserved_usd": 0.25, "node": "n1"}),
        ("clear", {"node": "n1"}),
        ("odd", {"budget_reserved_usd": "lots"}),
    ):
        conn.execute(
            "INSERT INTO sessions (id, kind, cwd, model, state, created_at, updated_at, meta) "
            "VALUES (?, 'print', '/', 'scripted:x', 'done', 0, 0, ?)",
            (sid, json.dumps(meta)),
        )
    conn.execute(
        "INSERT INTO sessions (id, kind, cwd, model, state, created_at, updated_at, "
        "meta) VALUES ('broken', 'print', '/', 'scripted:x', 'done', 0, 0, '{nope')"
    )
    conn.close()
    with Store.open(path) as opened, opened.read() as conn:
        held = {s: held_by(conn, s) for s in ("held", "clear", "odd", "broken")}
        metas = dict(conn.execute("SELECT id, meta FROM sessions").fetchall())
    assert held == {"held": 0.25, "clear": 0.0, "odd": 0.0, "broken": 0.0}
    assert json.loads(metas["held"]) == {"node": "n1"}
    assert json.loads(metas["odd"]) == {"budget_reserved_usd": "lots"}
    assert metas["broken"] == "{nope"
