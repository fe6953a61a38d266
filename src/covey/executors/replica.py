"""A session run against a node-local store, its writes applied to the user's store.

The node runs the unchanged `SessionHost` against a SQLite store of its own, seeded from the
user's; SQLite triggers there journal, in order, every write of the session and of its tree
(transcript entries, events, usage, state and meta changes, pending questions, tool-run
records, finished commands; the sessions it starts there and the rows of its team). The
supervisor collects the journal and applies it to the user's store, fenced by the session's
lease epoch. Nothing in `sessions/`, `agent/` or `teams/` knows.

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
- `export_session(store, session_id) -> SessionExport`: the session, its tree
  (`SessionExport.children`) and its team's rows (`SessionExport.team`).
- `seed_node_store(node_store, export, epoch, *, host_id, cwd=None, worktree=None,
  repo=None) -> None`: the session row (lease held by `host_id` at `epoch`; the node's own
  paths if given), its transcript and its usage, and the same of its tree (children's
  leases free, their paths under the root's moved to the node's) and its team's rows,
  replacing whatever the node store had of them.
- `collect(node_store, session_id, after, *, limit=500) -> Batch`
- `apply(store, session_id, epoch, batch, on_snapshot) -> Cursor`: raises `StaleEpoch`
  (nothing written) when the session's epoch is not `epoch`, `SnapshotFailed` when
  `on_snapshot` raised (what preceded the snapshot is applied, nothing after it).
- `acknowledge(node_store, session_id, cursor)`, `applied_cursor(store, session_id, epoch)`
- `forward_commands(store, node_store, session_id, after, *, claimer=None) -> int`, in two
  halves across a process boundary: `tree_commands` (user side) and `insert_commands` (node).
- `pump(store, node_store, session_id, epoch, on_snapshot) -> int`

Why a journal of triggers and not a stream of agent events: the host writes through a dozen
functions (the persister, `set_state`, the asker, the budget, the tool-run records...); the
triggers catch each at the one place they all go, in commit order, so nothing is missed when
one is added later. Measured (`bench/replica.py`, `docs/benchmarks.md`): a step costs
0.26 ms journaled against ~0.18 ms on a plain store; applying runs at ~27,000 records/s;
the gate before a tool batch waits a median 44 ms (pumped every 50 ms: guarantee 4).

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

The tree. A session the replicated one starts on the node (a subagent, a teammate, theirs:
any session whose parent chain leads to it) joins its tree (`covey.store.replica_tree`) and
its writes go to the root's journal, with its id (`Record.data["sid"]`), its row as a whole
(`child` records: state, lease, paths), and so do the rows of a team a session of the tree
leads (`team` records: the team, members, tasks, blockers, mailbox). They are applied in
journal order, in the same transactions, under the same fencing (the root's epoch) and
cursor. In the user's store a child's row is the node's (its lease held by the node's host,
so it reads as interrupted once the node stops renewing it) with its paths under the root's
moved under the root's own; its usage is in the user's ledger (budgets, `covey usage`).
`forward_commands` forwards the commands of the whole tree (`covey stop TEAMMATE|SUBAGENT`).

The tool gate is around the root's tool batches and each teammate's (`gate_tools`; they
share the root's journal and, working in its worktree, its snapshots). A subagent's run is
inside its parent's batch (its effects are in that batch's snapshot, the parent's result
waits for it), its transcript entries applied as written. A child's worktree of its own
(`isolation: worktree`) is snapshotted with the tree's (`SnapshotRecord.branch`: its branch).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from covey.executors.replica_apply import (
    NODE_META_KEYS,
    apply_record,
    move_row_paths,
    move_text,
    root_paths,
)
from covey.executors.replica_records import (
    Batch,
    Cursor,
    Record,
    SessionExport,
    SnapshotFailed,
    SnapshotRecord,
    StaleEpoch,
)
from covey.sessions.lease import LEASE_TTL_S
from covey.store import Store
from covey.store._json import dump_json
from covey.store.commands import CommandRow, claim_command, pending_commands
from covey.store.replica import (
    forget_replica,
    get_cursor,
    install_triggers,
    journal_rows,
    prune,
    set_cursor,
)
from covey.store.replica_tree import apply_team_row, forget_sessions, team_rows, tree_ids
from covey.store.session_meta import SessionMeta
from covey.store.sessions import SessionRow, get_session, insert_session
from covey.store.transcript import read_entries
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
    "claim_forwarded",
    "collect",
    "export_session",
    "forward_commands",
    "insert_commands",
    "pump",
    "seed_node_store",
    "tree_commands",
]

OnSnapshot = Callable[[SnapshotRecord], None]


def export_session(store: Store, session_id: str) -> SessionExport:
    """The session, its tree (every session whose parent chain leads to it) and the rows
    of the teams they lead, as the user's store has them."""
    with store.read() as conn:
        if get_session(conn, session_id) is None:
            raise KeyError(f"no session {session_id!r}")
        ids = tree_ids(conn, session_id)
        root, *children = (_export_one(conn, sid) for sid in ids)
        team = tuple(team_rows(conn, ids))
    return dataclasses.replace(root, children=tuple(children), team=team)


def _export_one(conn: sqlite3.Connection, session_id: str) -> SessionExport:
    row = get_session(conn, session_id)
    assert row is not None  # a member of the tree just read, in this transaction
    entries = tuple(read_entries(conn, session_id))
    return SessionExport(row, entries, tuple(usage_rows(conn, session_id=session_id)))


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
    own `cwd`, `worktree` and `repo` if given. Its tree goes with it (children's paths under
    the root's moved to the node's, their leases free for the node's hosts to take) and the
    rows of the tree's teams. Whatever the node store had of them goes."""
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
    before = root_paths(export.row.cwd, export.row.meta.dump())
    after = root_paths(row.cwd, meta)
    moves = [(path, after[key]) for key, path in before.items() if key in after]
    children = [dataclasses.replace(c, row=_moved_child(c.row, moves)) for c in export.children]
    with node_store.write() as conn:
        install_triggers(conn)
        old = [r[0] for r in conn.execute(_TREE_OF, (sid,))]
        forget_replica(conn, sid)  # the triggers stay quiet while it is seeded
        forget_sessions(conn, {sid, *old, *(c.row.id for c in children)})
        for one in (dataclasses.replace(export, row=row), *children):
            _seed_one(conn, one, moves)
        for table, team_row in export.team:
            apply_team_row(conn, table, "insert", team_row)
        conn.executemany(
            "INSERT INTO replica_tree (session_id, root_id) VALUES (?, ?)",
            [(sid, sid), *((c.row.id, sid) for c in children)],
        )
        set_cursor(conn, sid, epoch, 0)  # from here on the session and its tree are journaled


_TREE_OF = "SELECT session_id FROM replica_tree WHERE root_id = ?"


def _moved_child(row: SessionRow, moves: list[tuple[str, str]]) -> SessionRow:
    image = move_row_paths({"cwd": row.cwd, "meta": row.meta.dump()}, moves)
    return dataclasses.replace(
        row,
        cwd=image["cwd"],
        meta=SessionMeta.model_validate(image["meta"]),
        host_id=None,
        lease_expires_at=None,
    )


def _seed_one(
    conn: sqlite3.Connection, export: SessionExport, moves: list[tuple[str, str]]
) -> None:
    """One session of the tree, the paths its transcript names moved to the node's."""
    sid = export.row.id
    insert_session(conn, export.row)
    conn.executemany(
        "INSERT INTO transcript (session_id, seq, kind, data, created_at) VALUES (?, ?, ?, ?, ?)",
        [
            (sid, e.seq, e.kind, dump_json(move_text(e.data, moves)), e.created_at)
            for e in export.entries
        ],
    )
    for u in export.usage:
        record_usage(conn, sid, u.agent_path, u.model, u.usage, u.cost_usd, now=u.ts)


def collect(node_store: Store, session_id: str, after: Cursor, *, limit: int = 500) -> Batch:
    """What the session wrote on the node after `after`, in the order to apply it."""
    with node_store.read() as conn:
        seeded = get_cursor(conn, session_id)
        rows = journal_rows(conn, session_id, after, limit)
        root = get_session(conn, session_id)
    paths = () if root is None else tuple(root_paths(root.cwd, root.meta.dump()).items())
    if seeded is None:
        raise KeyError(f"session {session_id!r} is not replicated in {node_store!r}")
    records: list[Record | SnapshotRecord] = []
    for r in rows:
        if r.kind == "snapshot":
            if r.data.get("sha"):  # no change since the last one: nothing to ship
                sha, parent = str(r.data["sha"]), str(r.data.get("parent", ""))
                branch = str(r.data.get("branch", ""))
                records.append(SnapshotRecord(r.id, sha, parent, r.bundle or b"", branch))
        else:
            records.append(Record(r.id, r.kind, r.data))
    cursor = rows[-1].id if rows else after
    return Batch(session_id, seeded[0], tuple(records), cursor, len(rows) == limit, paths)


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
        own = root_paths(row.cwd, row.meta.dump())
        moves = [(path, own[key]) for key, path in batch.paths if key in own]
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
                apply_record(conn, session_id, epoch, record, moves)
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
    """Copy the tree's pending commands with id > `after` into the node store, for the node's
    hosts to act on (claimed under `claimer` in the user's store, if given: their outcome
    comes back through the journal, `command` records); the next `after`."""
    if pending := tree_commands(store, session_id, after):
        insert_commands(node_store, pending)
        if claimer is not None:
            claim_forwarded(store, pending, claimer)
    return max((c.id for c in pending), default=after)


def tree_commands(
    store: Store, session_id: str, after: int, *, children_only: bool = False
) -> list[CommandRow]:
    """The pending commands with id > `after` of the session's tree (of its children only
    with `children_only`: the root's own are its supervisor's), oldest first."""
    with store.read() as conn:
        ids = [i for i in tree_ids(conn, session_id) if not (children_only and i == session_id)]
        found = [c for i in ids for c in pending_commands(conn, session_id=i) if c.id > after]
    return sorted(found, key=lambda c: c.id)


def insert_commands(node_store: Store, commands: list[CommandRow]) -> None:
    """Put forwarded commands into the node store (same ids; a second time changes nothing)."""
    with node_store.write() as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO commands (id, session_id, ts, type, data) VALUES (?,?,?,?,?)",
            [(c.id, c.session_id, c.ts, c.type, dump_json(c.data)) for c in commands],
        )


def claim_forwarded(store: Store, commands: list[CommandRow], claimer: str) -> None:
    with store.write() as conn:  # so no local host acts on them too
        for c in commands:
            claim_command(conn, c.id, claimer=claimer)


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
