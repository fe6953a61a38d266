"""The store: one SQLite file (WAL) that every covey process reads and writes; the bus.

Layer 1: the connection and migrations (`db`, `migrations`) and one module per table group
(`sessions`, `transcript`, `events`, `commands`, `usage`) of plain functions taking a
`sqlite3.Connection`. No business rules live here: which state changes are allowed, and
which events go with them, is `covey.sessions`' job.

Writes go inside `store.write()` (one short BEGIN IMMEDIATE transaction); functions that read
then write (`acquire_lease`, `append_entry`, `claim_commands`) refuse to run outside one.
"""

from __future__ import annotations

from covey.store.commands import (
    CommandRow,
    CommandStatus,
    claim_command,
    claim_commands,
    claimers,
    enqueue_command,
    finish_command,
    get_command,
    pending_commands,
    requeue_claimed,
)
from covey.store.db import BUSY_TIMEOUT_S, RETRY_FOR_S, Store, StoreBusy, StoreStatistics
from covey.store.events import EventRow, append_event, last_event_id, read_events
from covey.store.migrations import MIGRATIONS, SCHEMA_VERSION
from covey.store.sessions import (
    SessionFields,
    SessionKind,
    SessionMeta,
    SessionRow,
    SessionState,
    acquire_lease,
    find_session,
    get_session,
    insert_session,
    list_sessions,
    new_session_id,
    release_lease,
    renew_lease,
    update_session,
)
from covey.store.transcript import TranscriptEntry, append_entry, last_seq, read_entries
from covey.store.usage import UsageRow, record_usage, session_usage, usage_rows

__all__ = [
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
    "find_session",
    "finish_command",
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
