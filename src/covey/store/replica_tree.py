"""A replicated session's tree in a node store: the sessions it starts there (subagents,
teammates, and theirs) and its team's rows, journaled in the root's stream
(`covey.store.replica`).

- `replica_tree` (node stores only, made by `install_tree`): every session of a replicated
  tree with its root, the root included (`root_id = session_id`). A trigger adds a session
  inserted with a parent in the tree, so the tree grows by itself, at any depth.
- Records in the root's journal about another session of the tree carry its id as `sid`
  in their data; `child` is a child's whole row (inserted or updated: state, lease...).
- `team` records: a row of a team led by a session of the tree (`teams`, `team_members`,
  `team_tasks`, `team_task_blockers`, `team_mailbox`) inserted, updated or deleted, as
  `{"table", "op", "row"}`. A mailbox row's id is the node store's own: on another store a
  message is found by what it is (`MAIL_KEY`), and two messages alike in all of it are
  interchangeable.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from covey.store._json import dump_json
from covey.store._tx import require_transaction

__all__ = [
    "MAIL_KEY",
    "TEAM_TABLES",
    "apply_team_row",
    "forget_sessions",
    "install_tree",
    "root_expr",
    "team_rows",
    "tree_ids",
    "upsert_session_image",
]

SESSION_COLUMNS = (
    "id", "kind", "cwd", "model", "state", "name", "parent_id", "agent", "permission_mode",
    "reason", "summary", "created_at", "updated_at", "host_id", "epoch", "lease_expires_at",
    "meta", "deleted_at",
)  # fmt: skip

TEAM_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "teams": (("id", "lead_session_id", "next_task", "created_at", "ended_at"), ("id",)),
    "team_members": (
        ("team_id", "name", "session_id", "agent_type", "owns", "isolation", "joined_at"),
        ("team_id", "name"),
    ),
    "team_tasks": (
        (
            *("team_id", "id", "subject", "description", "active_form", "status", "owner"),
            *("metadata", "created_at", "updated_at"),
        ),
        ("team_id", "id"),
    ),
    "team_task_blockers": (
        ("team_id", "task_id", "blocker_id"),
        ("team_id", "task_id", "blocker_id"),
    ),
    "team_mailbox": (
        (
            *("id", "team_id", "kind", "sender", "recipient", "body", "summary", "sent_at"),
            *("delivered_at", "delivered_seq"),
        ),
        ("team_id", "kind", "sender", "recipient", "body", "sent_at"),
    ),
}
"""Per team table, in the order its rows can be inserted: its columns and its key (for the
mailbox, `MAIL_KEY`: what a message is, its id being each store's own)."""
MAIL_KEY = TEAM_TABLES["team_mailbox"][1]


def root_expr(session: str) -> str:
    """SQL: the root of the tree `session` (an SQL expression) belongs to, or NULL."""
    return f"(SELECT root_id FROM replica_tree WHERE session_id = {session})"


def _team_root(row: str) -> str:
    return (
        "(SELECT r.root_id FROM teams t JOIN replica_tree r ON r.session_id = t.lead_session_id"
        f" WHERE t.id = {row}.team_id)"
    )


def _image(row: str, columns: tuple[str, ...]) -> str:
    return "json_object(" + ", ".join(f"'{c}', {row}.{c}" for c in columns) + ")"


def _triggers() -> list[str]:
    child = _image("NEW", SESSION_COLUMNS).replace("NEW.meta", "json(NEW.meta)")
    out = [
        f"""CREATE TRIGGER replica_tree_insert AFTER INSERT ON sessions
        WHEN {root_expr("NEW.parent_id")} IS NOT NULL BEGIN
            INSERT INTO replica_tree (session_id, root_id)
                VALUES (NEW.id, {root_expr("NEW.parent_id")});
            INSERT INTO replica_journal (session_id, kind, data)
                VALUES ({root_expr("NEW.id")}, 'child', {child});
        END""",
        f"""CREATE TRIGGER replica_tree_update AFTER UPDATE ON sessions
        WHEN EXISTS (SELECT 1 FROM replica_tree WHERE session_id = NEW.id AND root_id != NEW.id)
        BEGIN
            INSERT INTO replica_journal (session_id, kind, data)
                VALUES ({root_expr("NEW.id")}, 'child', {child});
        END""",
    ]
    for table, (columns, key) in TEAM_TABLES.items():
        for op, row in (("insert", "NEW"), ("update", "NEW"), ("delete", "OLD")):
            root = root_expr(f"{row}.lead_session_id") if table == "teams" else _team_root(row)
            image = _image(row, columns if op != "delete" else key)
            out.append(
                f"""CREATE TRIGGER replica_{table}_{op} AFTER {op.upper()} ON {table}
                WHEN {root} IS NOT NULL BEGIN
                    INSERT INTO replica_journal (session_id, kind, data) VALUES ({root}, 'team',
                        json_object('table', '{table}', 'op', '{op}', 'row', {image}));
                END"""
            )
    return out


def install_tree(conn: sqlite3.Connection) -> None:
    """The tree table and its triggers (node stores only; `install_triggers` calls it)."""
    require_transaction(conn, "install_tree")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS replica_tree ("
        " session_id TEXT PRIMARY KEY, root_id TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS replica_tree_root ON replica_tree (root_id)")
    for statement in _triggers():
        name = statement.split()[2]
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        conn.execute(statement)


def tree_ids(conn: sqlite3.Connection, root: str) -> list[str]:
    """`root` and every session whose parent chain leads to it, parents before children."""
    rows = conn.execute(
        """WITH RECURSIVE tree(id, depth) AS (
            SELECT ?, 0 UNION
            SELECT s.id, tree.depth + 1 FROM sessions s JOIN tree ON s.parent_id = tree.id
        ) SELECT id FROM tree ORDER BY depth""",
        (root,),
    )
    return [str(r[0]) for r in rows]


def team_rows(conn: sqlite3.Connection, lead_ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The rows of the teams these sessions lead, table by table in insertion order, as
    (table, row) pairs (mail without its id, in send order)."""
    if not lead_ids:
        return []
    marks = ", ".join("?" * len(lead_ids))
    teams = f"SELECT id FROM teams WHERE lead_session_id IN ({marks})"
    out: list[tuple[str, dict[str, Any]]] = []
    for table, (columns, _key) in TEAM_TABLES.items():
        where = f"id IN ({teams})" if table == "teams" else f"team_id IN ({teams})"
        order = "id" if table == "team_mailbox" else "rowid"
        for r in conn.execute(
            f"SELECT {', '.join(columns)} FROM {table} WHERE {where} ORDER BY {order}", lead_ids
        ):
            row = dict(zip(columns, r, strict=True))
            if table == "team_mailbox":
                del row["id"]
            out.append((table, row))
    return out


def apply_team_row(conn: sqlite3.Connection, table: str, op: str, row: dict[str, Any]) -> None:
    """Write a team row as another store wrote it: `insert`, `update` (by its key) or
    `delete`. A mailbox row gets this store's own id."""
    columns, key = TEAM_TABLES[table]
    if table == "team_mailbox":
        row = {c: v for c, v in row.items() if c != "id"}
        columns = tuple(c for c in columns if c != "id")
    if op == "delete":
        where = " AND ".join(f"{c} IS ?" for c in key)
        conn.execute(f"DELETE FROM {table} WHERE {where}", [row[c] for c in key])
        return
    values = [row.get(c) for c in columns]
    if table == "team_mailbox" and op == "update":
        same = " AND ".join(f"{c} IS ?" for c in key)
        found = conn.execute(
            f"SELECT id FROM team_mailbox WHERE {same} ORDER BY delivered_at IS NOT NULL, id"
            " LIMIT 1",
            [row[c] for c in key],
        ).fetchone()
        if found is not None:
            sets = ", ".join(f"{c} = ?" for c in columns)
            conn.execute(f"UPDATE team_mailbox SET {sets} WHERE id = ?", [*values, found[0]])
            return
    marks = ", ".join("?" * len(columns))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    if table != "team_mailbox":
        sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
        sql += f" ON CONFLICT ({', '.join(key)}) DO "
        sql += f"UPDATE SET {sets}" if sets else "NOTHING"
    conn.execute(sql, values)


def upsert_session_image(conn: sqlite3.Connection, image: dict[str, Any]) -> None:
    """Write a session row as another store has it (every column, `meta` a dict)."""
    values = [image.get(c) for c in SESSION_COLUMNS]
    values[SESSION_COLUMNS.index("meta")] = dump_json(image.get("meta") or {})
    sets = ", ".join(f"{c} = excluded.{c}" for c in SESSION_COLUMNS if c != "id")
    conn.execute(
        f"INSERT INTO sessions ({', '.join(SESSION_COLUMNS)})"
        f" VALUES ({', '.join('?' * len(SESSION_COLUMNS))})"
        f" ON CONFLICT (id) DO UPDATE SET {sets}",
        values,
    )


def forget_sessions(conn: sqlite3.Connection, ids: set[str]) -> None:
    """The node store's copy of these sessions and of the teams they lead."""
    marks = ", ".join("?" * len(ids))
    conn.execute(f"DELETE FROM teams WHERE lead_session_id IN ({marks})", [*ids])
    for table in ("transcript", "usage", "tool_runs", "events"):
        conn.execute(f"DELETE FROM {table} WHERE session_id IN ({marks})", [*ids])
    conn.execute(f"DELETE FROM sessions WHERE id IN ({marks})", [*ids])
