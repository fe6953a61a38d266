"""The store's schema, as an ordered list of migrations.

The rule: **never edit a migration that has landed; add a new one.** A database records how
many migrations it has had in `PRAGMA user_version`; migration N (1-based) takes it from version
N-1 to N. `Store.open` applies the missing ones, each in its own `BEGIN IMMEDIATE` transaction
that re-reads the version first, so two processes opening a fresh store at once never both
migrate. A migration runs statements one by one with `conn.execute` (never `executescript`,
which commits) and must not commit or roll back itself.

Later migrations will add worktrees.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "m0001_initial",
    "m0002_session_deleted_at",
    "m0003_tool_runs",
    "m0004_teams",
    "m0005_rate_limits",
    "m0008_budget_reserved",
]

Migration = Callable[[sqlite3.Connection], None]


def _run(conn: sqlite3.Connection, statements: Sequence[str]) -> None:
    for statement in statements:
        conn.execute(statement)


# The statements of m0001 and m0004, one named group per table. Their text is exactly what
# those migrations first ran (the indentation inside the strings too): `sqlite_master` keeps
# it byte for byte, and a store made today must read as one made then.

_SESSIONS: tuple[str, ...] = (
    """CREATE TABLE sessions (
                id TEXT PRIMARY KEY,
                name TEXT,
                kind TEXT NOT NULL,
                parent_id TEXT,
                cwd TEXT NOT NULL,
                model TEXT NOT NULL,
                agent TEXT,
                permission_mode TEXT,
                state TEXT NOT NULL,
                reason TEXT,
                summary TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                host_id TEXT,
                epoch INTEGER NOT NULL DEFAULT 0,
                lease_expires_at REAL,
                meta TEXT NOT NULL DEFAULT '{}'
            )""",
    "CREATE INDEX sessions_state ON sessions (state)",
    "CREATE INDEX sessions_parent ON sessions (parent_id)",
    "CREATE INDEX sessions_name ON sessions (name, updated_at)",
    "CREATE INDEX sessions_cwd ON sessions (cwd, updated_at)",
    "CREATE INDEX sessions_updated ON sessions (updated_at)",
)
"""The sessions table and the indexes listings and lookups use."""

_TRANSCRIPT: tuple[str, ...] = (
    """CREATE TABLE transcript (
                session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                seq INTEGER NOT NULL,
                kind TEXT NOT NULL,
                data TEXT NOT NULL,
                created_at REAL NOT NULL,
                PRIMARY KEY (session_id, seq)
            )""",
)
"""Every session's entries, in order."""

_EVENTS: tuple[str, ...] = (
    """CREATE TABLE events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                session_id TEXT,
                ts REAL NOT NULL,
                type TEXT NOT NULL,
                data TEXT NOT NULL DEFAULT '{}'
            )""",
    "CREATE INDEX events_session ON events (session_id, id)",
)
"""What happened to a session (and to none: the supervisor's own)."""

_COMMANDS: tuple[str, ...] = (
    """CREATE TABLE commands (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                session_id TEXT,
                ts REAL NOT NULL,
                type TEXT NOT NULL,
                data TEXT NOT NULL DEFAULT '{}',
                status TEXT NOT NULL DEFAULT 'pending',
                claimed_by TEXT,
                handled_at REAL,
                result TEXT
            )""",
    "CREATE INDEX commands_pending ON commands (session_id, id) WHERE status = 'pending'",
    "CREATE INDEX commands_session ON commands (session_id, id)",
)
"""Actions for a session's host (reply, stop, respawn), and their outcome."""

_USAGE: tuple[str, ...] = (
    """CREATE TABLE usage (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                session_id TEXT NOT NULL,
                agent_path TEXT NOT NULL,
                model TEXT NOT NULL,
                input INTEGER NOT NULL,
                output INTEGER NOT NULL,
                cache_read INTEGER NOT NULL,
                cache_write INTEGER NOT NULL,
                cost_usd REAL NOT NULL,
                ts REAL NOT NULL
            )""",
    "CREATE INDEX usage_session ON usage (session_id)",
    "CREATE INDEX usage_ts ON usage (ts)",
)
"""The usage ledger: one row per model response."""


def m0001_initial(conn: sqlite3.Connection) -> None:
    """Sessions, transcript, events, commands and the usage ledger."""
    _run(conn, [*_SESSIONS, *_TRANSCRIPT, *_EVENTS, *_COMMANDS, *_USAGE])


def m0002_session_deleted_at(conn: sqlite3.Connection) -> None:
    """`covey rm` hides a session (`deleted_at`) and keeps its transcript."""
    _run(conn, ["ALTER TABLE sessions ADD COLUMN deleted_at REAL"])


def m0003_tool_runs(conn: sqlite3.Connection) -> None:
    """Tool processes running for a session, so a host taking it over kills what is left."""
    _run(
        conn,
        [
            """CREATE TABLE tool_runs (
                session_id TEXT NOT NULL,
                pgid INTEGER NOT NULL,
                tag TEXT NOT NULL,
                started REAL NOT NULL,
                PRIMARY KEY (session_id, tag)
            )""",
        ],
    )


_TEAMS: tuple[str, ...] = (
    """CREATE TABLE teams (
                id TEXT PRIMARY KEY,
                lead_session_id TEXT NOT NULL UNIQUE,
                next_task INTEGER NOT NULL DEFAULT 1,
                created_at REAL NOT NULL,
                ended_at REAL
            )""",
)
"""One team per lead session."""

_TEAM_MEMBERS: tuple[str, ...] = (
    """CREATE TABLE team_members (
                team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                session_id TEXT NOT NULL UNIQUE,
                agent_type TEXT,
                owns TEXT NOT NULL DEFAULT '[]',
                isolation TEXT,
                joined_at REAL NOT NULL,
                PRIMARY KEY (team_id, name)
            )""",
)
"""A team's members: name, session, owned globs, isolation."""

_TEAM_TASKS: tuple[str, ...] = (
    """CREATE TABLE team_tasks (
                team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
                id INTEGER NOT NULL,
                subject TEXT NOT NULL,
                description TEXT NOT NULL,
                active_form TEXT,
                status TEXT NOT NULL DEFAULT 'pending',
                owner TEXT,
                metadata TEXT NOT NULL DEFAULT '{}',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                PRIMARY KEY (team_id, id)
            )""",
    """CREATE TABLE team_task_blockers (
                team_id TEXT NOT NULL,
                task_id INTEGER NOT NULL,
                blocker_id INTEGER NOT NULL,
                PRIMARY KEY (team_id, task_id, blocker_id),
                FOREIGN KEY (team_id, task_id) REFERENCES team_tasks (team_id, id)
                    ON DELETE CASCADE,
                FOREIGN KEY (team_id, blocker_id) REFERENCES team_tasks (team_id, id)
                    ON DELETE CASCADE
            )""",
)
"""The task list and its dependencies."""

_TEAM_MAILBOX: tuple[str, ...] = (
    """CREATE TABLE team_mailbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
                kind TEXT NOT NULL DEFAULT 'message',
                sender TEXT NOT NULL,
                recipient TEXT NOT NULL,
                body TEXT NOT NULL,
                summary TEXT,
                sent_at REAL NOT NULL,
                delivered_at REAL,
                delivered_seq INTEGER
            )""",
    "CREATE INDEX team_mailbox_undelivered ON team_mailbox (team_id, recipient, id)"
    " WHERE delivered_at IS NULL",
)
"""Mail between members, undelivered first."""


def m0004_teams(conn: sqlite3.Connection) -> None:
    """Agent teams: one team per lead session, its members, its task list and its mailbox."""
    _run(conn, [*_TEAMS, *_TEAM_MEMBERS, *_TEAM_TASKS, *_TEAM_MAILBOX])


def m0005_rate_limits(conn: sqlite3.Connection) -> None:
    """The shared rate limiter: per provider endpoint (base URL + a hash of the key), its
    buckets, how long a 429 blocks it, and the queue of requests waiting or in flight."""
    _run(
        conn,
        [
            """CREATE TABLE rate_buckets (
                endpoint TEXT NOT NULL,
                kind TEXT NOT NULL,
                lim INTEGER NOT NULL,
                remaining REAL NOT NULL,
                reset_at REAL,
                window_s REAL,
                updated_at REAL NOT NULL,
                PRIMARY KEY (endpoint, kind)
            )""",
            """CREATE TABLE rate_endpoints (
                endpoint TEXT PRIMARY KEY,
                blocked_until REAL NOT NULL DEFAULT 0,
                answered_at REAL
            )""",
            """CREATE TABLE rate_queue (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                endpoint TEXT NOT NULL,
                holder TEXT NOT NULL,
                session_id TEXT,
                tokens INTEGER NOT NULL,
                granted_at REAL,
                seen_at REAL NOT NULL
            )""",
            "CREATE INDEX rate_queue_endpoint ON rate_queue (endpoint, id)",
        ],
    )


def m0007_replica(conn: sqlite3.Connection) -> None:
    """Sessions run against another store (a Ray node's): the node's journal of what they
    wrote, the tool batches whose transcript entries wait for their snapshot, and per session
    how far the journal has been applied (`covey.store.replica`)."""
    _run(
        conn,
        [
            """CREATE TABLE replica_journal (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                session_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                data TEXT NOT NULL DEFAULT '{}',
                bundle BLOB,
                held INTEGER NOT NULL DEFAULT 0
            )""",
            "CREATE INDEX replica_journal_session ON replica_journal (session_id, id)",
            """CREATE TABLE replica_holds (
                session_id TEXT PRIMARY KEY
            )""",
            """CREATE TABLE replica_cursors (
                session_id TEXT PRIMARY KEY,
                epoch INTEGER NOT NULL,
                position INTEGER NOT NULL
            )""",
        ],
    )


def m0008_budget_reserved(conn: sqlite3.Connection) -> None:
    """A session's budget reservation gets a column of its own (`covey.store.budget_holds`),
    out of `meta`, where a host's read-then-write of the meta could overwrite it. A
    reservation an earlier version left in the meta moves over (counted while its lease is
    live, as before)."""
    _run(
        conn,
        [
            "ALTER TABLE sessions ADD COLUMN budget_reserved_usd REAL NOT NULL DEFAULT 0",
            """UPDATE sessions SET
                budget_reserved_usd = MAX(json_extract(meta, '$.budget_reserved_usd'), 0),
                meta = json_remove(meta, '$.budget_reserved_usd')
            WHERE CASE WHEN json_valid(meta) THEN json_type(meta, '$.budget_reserved_usd') END
                IN ('integer', 'real')""",
        ],
    )


MIGRATIONS: tuple[Migration, ...] = (
    m0001_initial,
    m0002_session_deleted_at,
    m0003_tool_runs,
    m0004_teams,
    m0005_rate_limits,
    m0007_replica,  # m0006 is h-ray's (merged before this one)
    m0008_budget_reserved,
)
"""Every migration, oldest first; append only."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The `user_version` of a store that has every migration this code knows."""
