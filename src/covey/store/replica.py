"""The replica tables (migration `m0007_replica`): a session run against a node's own store
writes there as it would anywhere; triggers copy each write into a journal, in order, for the
supervisor to apply to the user's store (`covey.executors.replica`).

- `replica_journal`: one row per write of a replicated session or of its tree, keyed by the
  root (`kind`: `entry` a transcript entry, `event`, `usage`, `session` the root's columns
  after an update, `child` a tree session's row, `team` a team row, `tool_run` /
  `tool_run_end`, `command` a forwarded command finished, `snapshot` the worktree after a
  tool batch, with its git bundle in `bundle`; `data["sid"]` names the session of the tree
  it is about). Ids only grow (AUTOINCREMENT). The tree: `covey.store.replica_tree`.
- `replica_holds`: the sessions inside a tool batch (a root, or a teammate of its tree: each
  member of a tree holds and releases its own). Their own transcript entries are journaled
  `held`: invisible to `journal_rows` until `release` re-journals them after the batch's
  snapshot record (new, larger ids), or `drop_held` forgets them.
- `replica_cursors`: per session, the last journal id applied and the epoch it was applied
  with. On the user's store: how far the supervisor got (it survives a restart). On the
  node's: how far the supervisor has acknowledged; its row also marks the session as
  replicated there (with its row in `replica_tree`: the triggers journal only such trees).

The triggers exist only in node stores (`install_triggers`, from `seed_node_store`): the
user's store journals nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from covey.store._json import dump_json, load_json_object
from covey.store._tx import require_transaction
from covey.store.replica_tree import install_tree, root_expr

__all__ = [
    "FORWARDED_ID_LIMIT",
    "JournalRow",
    "drop_held",
    "forget_replica",
    "get_cursor",
    "hold",
    "install_triggers",
    "journal_rows",
    "last_journal_id",
    "prune",
    "release",
    "set_cursor",
]

FORWARDED_ID_LIMIT = 1 << 40
"""Commands forwarded from the user's store keep their ids, all below this; a node store's
own commands are numbered from it up (`install_triggers`), so the two never collide."""

_ROOT = root_expr("NEW.session_id")
_REPLICATED = f"{_ROOT} IS NOT NULL"
_HELD = "EXISTS (SELECT 1 FROM replica_holds WHERE session_id = NEW.session_id)"
_SESSION_COLUMNS = "state, reason, summary, meta, name, model, permission_mode, agent, deleted_at"

_TRIGGERS = (
    f"""CREATE TRIGGER replica_transcript AFTER INSERT ON transcript
    WHEN {_REPLICATED} BEGIN
        INSERT INTO replica_journal (session_id, kind, data, held) VALUES ({_ROOT},
            'entry', json_object('sid', NEW.session_id, 'seq', NEW.seq, 'kind', NEW.kind,
                                 'data', json(NEW.data), 'created_at', NEW.created_at), {_HELD});
    END""",
    f"""CREATE TRIGGER replica_events AFTER INSERT ON events
    WHEN {_REPLICATED} BEGIN
        INSERT INTO replica_journal (session_id, kind, data) VALUES ({_ROOT}, 'event',
            json_object('sid', NEW.session_id, 'type', NEW.type, 'data', json(NEW.data),
                        'ts', NEW.ts));
    END""",
    f"""CREATE TRIGGER replica_usage AFTER INSERT ON usage
    WHEN {_REPLICATED} BEGIN
        INSERT INTO replica_journal (session_id, kind, data) VALUES ({_ROOT}, 'usage',
            json_object('sid', NEW.session_id, 'agent_path', NEW.agent_path, 'model', NEW.model,
                        'input', NEW.input, 'output', NEW.output, 'cache_read', NEW.cache_read,
                        'cache_write', NEW.cache_write, 'cost_usd', NEW.cost_usd, 'ts', NEW.ts));
    END""",
    f"""CREATE TRIGGER replica_sessions AFTER UPDATE OF {_SESSION_COLUMNS}
    ON sessions WHEN EXISTS (SELECT 1 FROM replica_cursors WHERE session_id = NEW.id) BEGIN
        INSERT INTO replica_journal (session_id, kind, data) VALUES (NEW.id, 'session',
            json_object('state', NEW.state, 'reason', NEW.reason, 'summary', NEW.summary,
                        'meta', json(NEW.meta), 'name', NEW.name, 'model', NEW.model,
                        'permission_mode', NEW.permission_mode, 'agent', NEW.agent,
                        'deleted_at', NEW.deleted_at, 'updated_at', NEW.updated_at));
    END""",
    f"""CREATE TRIGGER replica_tool_runs AFTER INSERT ON tool_runs
    WHEN {_REPLICATED} BEGIN
        INSERT INTO replica_journal (session_id, kind, data) VALUES ({_ROOT},
            'tool_run', json_object('sid', NEW.session_id, 'pgid', NEW.pgid, 'tag', NEW.tag));
    END""",
    f"""CREATE TRIGGER replica_tool_runs_end AFTER DELETE ON tool_runs
    WHEN {root_expr("OLD.session_id")} IS NOT NULL BEGIN
        INSERT INTO replica_journal (session_id, kind, data) VALUES (
            {root_expr("OLD.session_id")}, 'tool_run_end',
            json_object('sid', OLD.session_id, 'tag', OLD.tag));
    END""",
    f"""CREATE TRIGGER replica_commands AFTER UPDATE OF status ON commands
    WHEN NEW.status IN ('done', 'failed') AND NEW.id < {FORWARDED_ID_LIMIT}
        AND {_REPLICATED} BEGIN
        INSERT INTO replica_journal (session_id, kind, data) VALUES ({_ROOT},
            'command', json_object('sid', NEW.session_id, 'id', NEW.id, 'status', NEW.status,
                                   'result', json(NEW.result), 'handled_at', NEW.handled_at));
    END""",
)


@dataclass(frozen=True, slots=True)
class JournalRow:
    id: int
    session_id: str
    kind: str
    data: dict[str, Any]
    bundle: bytes | None = None


def install_triggers(conn: sqlite3.Connection) -> None:
    """Make this store a node store: journal every write of its replicated sessions."""
    require_transaction(conn, "install_triggers")
    install_tree(conn)  # first: the triggers below read its table
    for statement in _TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {statement.split()[2]}")
        conn.execute(statement)
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'commands'").fetchone()
    if seq is None:
        conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES ('commands', ?)", (FORWARDED_ID_LIMIT,)
        )
    elif int(seq[0]) < FORWARDED_ID_LIMIT:
        conn.execute(
            "UPDATE sqlite_sequence SET seq = ? WHERE name = 'commands'", (FORWARDED_ID_LIMIT,)
        )


def journal_rows(
    conn: sqlite3.Connection, session_id: str, after: int, limit: int | None = None
) -> list[JournalRow]:
    """The session's journal rows with id > `after` that are not held, oldest first."""
    sql = (
        "SELECT id, session_id, kind, data, bundle FROM replica_journal"
        " WHERE session_id = ? AND id > ? AND held = 0 ORDER BY id"
    )
    args: list[Any] = [session_id, after]
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return [
        JournalRow(id, sid, kind, load_json_object(data), bundle)
        for id, sid, kind, data, bundle in conn.execute(sql, args)
    ]


def last_journal_id(conn: sqlite3.Connection, session_id: str) -> int:
    """The newest journal row of the session that is not held (0: none left)."""
    row = conn.execute(
        "SELECT COALESCE(MAX(id), 0) FROM replica_journal WHERE session_id = ? AND held = 0",
        (session_id,),
    ).fetchone()
    return int(row[0])


def hold(conn: sqlite3.Connection, session_id: str) -> None:
    """From now on, the session's transcript entries are journaled held."""
    conn.execute("INSERT OR IGNORE INTO replica_holds (session_id) VALUES (?)", (session_id,))


def release(
    conn: sqlite3.Connection,
    session_id: str,
    snapshots: Sequence[tuple[dict[str, Any], bytes | None]],
    *,
    member: str | None = None,
) -> None:
    """End the hold of `member` (a session of `session_id`'s tree; the root itself when
    None): journal the snapshot records (data, bundle), then its held entries again after
    them, in their order. Other members' held entries stay held."""
    require_transaction(conn, "release")
    member = member or session_id
    conn.execute("DELETE FROM replica_holds WHERE session_id = ?", (member,))
    conn.executemany(
        "INSERT INTO replica_journal (session_id, kind, data, bundle) VALUES (?, 'snapshot', ?, ?)",
        [(session_id, dump_json(data), bundle) for data, bundle in snapshots],
    )
    held = conn.execute(
        f"SELECT id, kind, data FROM replica_journal WHERE {_HELD_BY} ORDER BY id",
        (session_id, member),
    ).fetchall()
    for id, kind, data in held:
        conn.execute(
            "INSERT INTO replica_journal (session_id, kind, data) VALUES (?, ?, ?)",
            (session_id, kind, data),
        )
        conn.execute("DELETE FROM replica_journal WHERE id = ?", (id,))


def drop_held(conn: sqlite3.Connection, session_id: str, *, member: str | None = None) -> int:
    """End the hold of `member` (the root when None) without a snapshot: its held entries
    never leave the node; how many."""
    member = member or session_id
    conn.execute("DELETE FROM replica_holds WHERE session_id = ?", (member,))
    cursor = conn.execute(f"DELETE FROM replica_journal WHERE {_HELD_BY}", (session_id, member))
    return cursor.rowcount


_HELD_BY = "session_id = ? AND held = 1 AND json_extract(data, '$.sid') = ?"
"""The held journal rows of one root (first parameter) written by one member (second)."""


def get_cursor(conn: sqlite3.Connection, session_id: str) -> tuple[int, int] | None:
    """(epoch, position) recorded for the session, or None."""
    row = conn.execute(
        "SELECT epoch, position FROM replica_cursors WHERE session_id = ?", (session_id,)
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def set_cursor(conn: sqlite3.Connection, session_id: str, epoch: int, position: int) -> None:
    conn.execute(
        "INSERT INTO replica_cursors (session_id, epoch, position) VALUES (?, ?, ?)"
        " ON CONFLICT (session_id) DO UPDATE SET epoch = excluded.epoch,"
        " position = excluded.position",
        (session_id, epoch, position),
    )


def prune(conn: sqlite3.Connection, session_id: str, upto: int) -> int:
    """Forget the journal rows applied already (id <= `upto`, not held); how many."""
    cursor = conn.execute(
        "DELETE FROM replica_journal WHERE session_id = ? AND id <= ? AND held = 0",
        (session_id, upto),
    )
    return cursor.rowcount


def forget_replica(conn: sqlite3.Connection, session_id: str) -> None:
    """Everything replica about a session: its journal, hold, cursor and tree (a node
    store's; the user's has no tree table)."""
    for table in ("replica_journal", "replica_holds", "replica_cursors"):
        conn.execute(f"DELETE FROM {table} WHERE session_id = ?", (session_id,))
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'replica_tree'").fetchone():
        conn.execute("DELETE FROM replica_tree WHERE root_id = ?", (session_id,))
