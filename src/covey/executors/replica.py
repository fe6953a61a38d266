"""A session run against a node-local store, its writes applied to the user's store.

The node runs the unchanged `SessionHost` against a SQLite store of its own, seeded from the
user's; SQLite triggers there journal, in order, every write of the session (transcript
entries, events, usage, state and meta changes, pending questions, tool-run records,
finished commands). The supervisor collects the journal and applies it to the user's store,
fenced by the session's lease epoch. Nothing in `sessions/` or `agent/` knows.

    export = export_session(store, sid)                     # user side, picklable
    seed_node_store(node_store, export, epoch, host_id=H)   # node side
    host = SessionHost.open(node_store, plan, claimed_epoch=epoch, host_id=H, ...)
    gate_tools(host, ToolGate(node_store, sid, snapshot))   # covey.executors.replica_node
    ... host.run_turn(prompt) ...
    # the supervisor, every ~50 ms (or `pump`, which does the three):
    batch = collect(node_store, sid, after=applied_cursor(store, sid, epoch))
    cursor = apply(store, sid, epoch, batch, on_snapshot)   # one transaction
    acknowledge(node_store, sid, cursor)                    # the node may prune, tools may run
    forward_commands(store, node_store, sid, after)         # stop, reply... reach the node

Signatures (the names h-ray builds on):
- `export_session(store, session_id) -> SessionExport`
- `seed_node_store(node_store, export, epoch, *, host_id, cwd=None, worktree=None,
  repo=None) -> None`: the session row (lease held by `host_id` at `epoch`; the node's own
  paths if given), its transcript and its usage, replacing whatever the node store had of it.
- `collect(node_store, session_id, after, *, limit=500) -> Batch`
- `apply(store, session_id, epoch, batch, on_snapshot) -> Cursor`: raises `StaleEpoch`
  (nothing written) when the session's epoch is not `epoch`, `SnapshotFailed` when
  `on_snapshot` raised (what preceded the snapshot is applied, nothing after it).
- `acknowledge(node_store, session_id, cursor)`, `applied_cursor(store, session_id, epoch)`
- `forward_commands(store, node_store, session_id, after, *, claimer=None) -> int`
- `pump(store, node_store, session_id, epoch, on_snapshot) -> int`

Why a journal of triggers and not a stream of agent events: the host writes through a dozen
functions (the persister, `set_state`, the asker, the budget, the tool-run records...); the
triggers catch each at the one place they all go, in commit order, so nothing is missed when
one is added later. Measured (`bench/replica.py`, 2-core VM, 1,000 steps of a ~1.5 KB
message + usage + event + summary): a step costs 0.68 ms journaled against 0.47 ms on a plain
store (x1.5, well under a model call); applying runs at ~14,000 records/s (0.28 ms per step,
one transaction per 500 records); the gate before a tool batch waits a median 44 ms (worst
65 ms) with the supervisor pumping every 50 ms, which is the price of guarantee 4 below.

Guarantees:
- **Fencing.** `apply` checks the session's epoch in the user's store inside its write
  transaction, and every transcript entry and row update it writes is fenced by that epoch
  again (`append_entry`, `update_session`). A zombie node (taken over, still running) has
  its batches refused whole.
- **Exactly once, across supervisor restarts.** The applied position is stored in
  `replica_cursors` in the same transaction as the records; `apply` skips records at or
  before it, so a batch collected twice (a supervisor killed between apply and acknowledge)
  writes nothing the second time.
- **A bounded buffer.** Before each tool batch the node waits until everything before it is
  applied (`ToolGate`), so at most one step (a model response, its tool batch) waits on the
  node; with the supervisor away, the session pauses at its next tool batch, dropping nothing.
- **A tool call is never re-run after a lost node.** The assistant message that asked for it
  is applied before the tools run; a node lost mid-batch leaves the user's transcript ending
  with the calls, which a resume answers as interrupted.
- **A tool result counts only after its snapshot.** The transcript entries a tool batch
  writes are held on the node until the batch's snapshot is journaled before them; `apply`
  calls `on_snapshot` (the executor fetches the bundle into the user's repository) before
  writing anything after it. `on_snapshot` must accept a snapshot it already received (a
  supervisor killed between receiving and committing collects it again).

Not replicated: the sessions a replicated session starts on the node (subagents, teammates)
and team tables; their usage is not in the user's ledger.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from covey.executors.replica_records import (
    Batch,
    Cursor,
    Record,
    SessionExport,
    SnapshotFailed,
    SnapshotRecord,
    StaleEpoch,
)
from covey.messages import Usage
from covey.sessions.lease import LEASE_TTL_S
from covey.sessions.state import replay_state
from covey.store import Store
from covey.store._json import dump_json
from covey.store.commands import claim_command, finish_command, pending_commands
from covey.store.events import append_event
from covey.store.replica import (
    FORWARDED_ID_LIMIT,
    forget_replica,
    get_cursor,
    install_triggers,
    journal_rows,
    prune,
    set_cursor,
)
from covey.store.session_meta import SessionMeta
from covey.store.sessions import get_session, insert_session
from covey.store.tool_runs import record_run
from covey.store.transcript import append_entry, read_entries
from covey.store.usage import record_usage, usage_rows

__all__ = [
    "NODE_META_KEYS",
    "Batch",
    "Cursor",
    "Record",
    "SessionExport",
    "SnapshotFailed",
    "SnapshotRecord",
    "StaleEpoch",
    "acknowledge",
    "applied_cursor",
    "apply",
    "collect",
    "export_session",
    "forward_commands",
    "pump",
    "seed_node_store",
]

NODE_META_KEYS = ("worktree", "repo")
"""Meta keys that name paths on the node: the user's row keeps its own (and its `cwd`)."""

OnSnapshot = Callable[[SnapshotRecord], None]


def export_session(store: Store, session_id: str) -> SessionExport:
    with store.read() as conn:
        row = get_session(conn, session_id)
        if row is None:
            raise KeyError(f"no session {session_id!r}")
        entries = tuple(read_entries(conn, session_id))
        usage = tuple(usage_rows(conn, session_id=session_id))
    return SessionExport(row, entries, usage)


def seed_node_store(
    node_store: Store,
    export: SessionExport,
    epoch: int,
    *,
    host_id: str,
    cwd: Path | None = None,
    worktree: Path | None = None,
    repo: Path | None = None,
) -> None:
    """Put the exported session into the node store, held by `host_id` at `epoch` (what
    `SessionHost.open(..., claimed_epoch=epoch, host_id=host_id)` expects), with the node's
    own `cwd`, `worktree` and `repo` if given. Whatever the node store had of it goes."""
    row = export.row
    meta: dict[str, Any] = row.meta.dump()
    for key, path in (("worktree", worktree), ("repo", repo)):
        if path is not None:
            meta[key] = str(path)
    row = dataclasses.replace(
        row,
        cwd=str(cwd) if cwd is not None else row.cwd,
        epoch=epoch,
        host_id=host_id,
        lease_expires_at=time.time() + LEASE_TTL_S,
        meta=SessionMeta.model_validate(meta),
    )
    sid = row.id
    with node_store.write() as conn:
        install_triggers(conn)
        forget_replica(conn, sid)  # the triggers stay quiet while it is seeded
        for table in ("transcript", "usage", "tool_runs", "events"):
            conn.execute(f"DELETE FROM {table} WHERE session_id = ?", (sid,))
        conn.execute("DELETE FROM sessions WHERE id = ?", (sid,))
        insert_session(conn, row)
        conn.executemany(
            "INSERT INTO transcript (session_id, seq, kind, data, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [(sid, e.seq, e.kind, dump_json(e.data), e.created_at) for e in export.entries],
        )
        for u in export.usage:
            record_usage(conn, sid, u.agent_path, u.model, u.usage, u.cost_usd, now=u.ts)
        set_cursor(conn, sid, epoch, 0)  # from here on the session is journaled


def collect(node_store: Store, session_id: str, after: Cursor, *, limit: int = 500) -> Batch:
    """What the session wrote on the node after `after`, in the order to apply it."""
    with node_store.read() as conn:
        seeded = get_cursor(conn, session_id)
        rows = journal_rows(conn, session_id, after, limit)
    if seeded is None:
        raise KeyError(f"session {session_id!r} is not replicated in {node_store!r}")
    records: list[Record | SnapshotRecord] = []
    for r in rows:
        if r.kind == "snapshot":
            if r.data.get("sha"):  # no change since the last one: nothing to ship
                sha, parent = str(r.data["sha"]), str(r.data.get("parent", ""))
                records.append(SnapshotRecord(r.id, sha, parent, r.bundle or b""))
        else:
            records.append(Record(r.id, r.kind, r.data))
    cursor = rows[-1].id if rows else after
    return Batch(session_id, seeded[0], tuple(records), cursor, len(rows) == limit)


def applied_cursor(store: Store, session_id: str, epoch: int) -> Cursor:
    """How far the user's store has applied the session's journal of `epoch` (0: not yet)."""
    with store.read() as conn:
        got = get_cursor(conn, session_id)
    return got[1] if got is not None and got[0] == epoch else 0


def apply(
    store: Store, session_id: str, epoch: int, batch: Batch, on_snapshot: OnSnapshot
) -> Cursor:
    """Write `batch` to the user's store in one transaction, fenced by `epoch`; where the
    next collect starts. Records applied before (by a supervisor that died before the node
    heard of it) are skipped."""
    if batch.session_id != session_id:
        raise ValueError(f"a batch of session {batch.session_id} applied to {session_id}")
    failed: SnapshotFailed | None = None
    with store.write() as conn:
        row = get_session(conn, session_id)
        if row is None or row.epoch != epoch or batch.epoch != epoch:
            now = "gone" if row is None else f"at epoch {row.epoch}"
            raise StaleEpoch(
                f"session {session_id} is {now}; a batch of epoch {batch.epoch} "
                f"applied with epoch {epoch} is refused"
            )
        got = get_cursor(conn, session_id)
        done = got[1] if got is not None and got[0] == epoch else 0
        position = done
        for record in batch.records:
            if record.id <= done:
                continue
            if isinstance(record, SnapshotRecord):
                try:
                    on_snapshot(record)
                except Exception as e:
                    failed = SnapshotFailed(position, record, e)
                    break
            else:
                _apply_record(conn, session_id, epoch, record)
            position = record.id
        if failed is None:
            position = max(position, batch.cursor)
        set_cursor(conn, session_id, epoch, position)
    if failed is not None:
        raise failed from failed.error
    return position


def acknowledge(node_store: Store, session_id: str, cursor: Cursor) -> None:
    """Tell the node how far its journal is applied: it forgets those records, and a tool
    batch waiting for them (`ToolGate`) may run."""
    with node_store.read() as conn:
        got = get_cursor(conn, session_id)
    if got is None or got[1] >= cursor:
        return  # one read, no write, when the supervisor has nothing new
    with node_store.write() as conn:
        got = get_cursor(conn, session_id)
        if got is None or got[1] >= cursor:
            return
        set_cursor(conn, session_id, got[0], cursor)
        prune(conn, session_id, cursor)


def forward_commands(
    store: Store, node_store: Store, session_id: str, after: int, *, claimer: str | None = None
) -> int:
    """Copy the session's pending commands with id > `after` into the node store (same ids,
    once), for the node's host to act on; the last id seen (the next `after`). With
    `claimer`, they are claimed in the user's store under it, so no local host acts on them;
    their outcome comes back through the journal (`command` records)."""
    with store.read() as conn:
        pending = [c for c in pending_commands(conn, session_id=session_id) if c.id > after]
    if not pending:
        return after
    with node_store.write() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO commands (id, session_id, ts, type, data)"
            " VALUES (?, ?, ?, ?, ?)",
            [(c.id, c.session_id, c.ts, c.type, dump_json(c.data)) for c in pending],
        )
    if claimer is not None:
        with store.write() as conn:
            for c in pending:
                claim_command(conn, c.id, claimer=claimer)
    return max(c.id for c in pending)


def pump(
    store: Store,
    node_store: Store,
    session_id: str,
    epoch: int,
    on_snapshot: OnSnapshot,
    *,
    limit: int = 500,
) -> int:
    """One round: collect from where the user's store stands, apply, acknowledge; how many
    records were applied (0: nothing new)."""
    count = 0
    while True:
        after = applied_cursor(store, session_id, epoch)
        batch = collect(node_store, session_id, after, limit=limit)
        if batch.cursor == after:
            acknowledge(node_store, session_id, after)  # a supervisor restarted: tell it again
            return count
        cursor = apply(store, session_id, epoch, batch, on_snapshot)
        acknowledge(node_store, session_id, cursor)
        count += len(batch.records)
        if not batch.more:
            return count


def _apply_record(conn: sqlite3.Connection, sid: str, epoch: int, record: Record) -> None:
    data = record.data
    if record.kind == "entry":
        if (
            append_entry(conn, sid, epoch, data["kind"], data["data"], now=data["created_at"])
            is None
        ):
            raise StaleEpoch(f"session {sid}: epoch {epoch} is stale")
    elif record.kind == "event":
        append_event(conn, sid, data["type"], data["data"], now=data["ts"])
    elif record.kind == "usage":
        usage = Usage(
            input=data["input"],
            output=data["output"],
            cache_read=data["cache_read"],
            cache_write=data["cache_write"],
        )
        record_usage(
            conn, sid, data["agent_path"], data["model"], usage, data["cost_usd"], now=data["ts"]
        )
    elif record.kind == "session":
        _apply_session(conn, sid, epoch, data)
    elif record.kind == "tool_run":
        record_run(conn, sid, int(data["pgid"]), str(data["tag"]))
    elif record.kind == "tool_run_end":
        conn.execute("DELETE FROM tool_runs WHERE session_id = ? AND tag = ?", (sid, data["tag"]))
    elif record.kind == "command" and int(data["id"]) < FORWARDED_ID_LIMIT:
        result = data.get("result")
        finish_command(
            conn,
            int(data["id"]),
            data["status"],
            result if isinstance(result, dict) else None,
            now=data.get("handled_at"),
        )


def _apply_session(conn: sqlite3.Connection, sid: str, epoch: int, data: dict[str, Any]) -> None:
    """The row's columns as the node has them; the user's keeps its own paths."""
    row = get_session(conn, sid)
    assert row is not None  # checked by `apply`, in this transaction
    meta = dict(data.get("meta") or {})
    own = row.meta.dump()
    for key in NODE_META_KEYS:
        meta.pop(key, None)
        if key in own:
            meta[key] = own[key]
    ok = replay_state(
        conn,
        sid,
        epoch,
        data["state"],
        data["reason"],
        summary=data["summary"],
        meta=SessionMeta.model_validate(meta),
        name=data["name"],
        model=data["model"],
        permission_mode=data["permission_mode"],
        agent=data["agent"],
        deleted_at=data["deleted_at"],
        updated_at=data["updated_at"],
    )
    if not ok:
        raise StaleEpoch(f"session {sid}: epoch {epoch} is stale")
