"""What travels between a node and the supervisor for a replicated session: picklable,
plain data (`covey.executors.replica` makes and applies them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from covey.errors import LeaseLost
from covey.store.sessions import SessionRow
from covey.store.transcript import TranscriptEntry
from covey.store.usage import UsageRow

__all__ = [
    "Batch",
    "Cursor",
    "Record",
    "SessionExport",
    "Snapshot",
    "SnapshotFailed",
    "SnapshotRecord",
    "StaleEpoch",
]

Cursor = int
"""How far a session's journal has been applied: the id of the last journal record applied
(0: none). It counts within one epoch (one seeding of one node store)."""


@dataclass(frozen=True)
class SessionExport:
    """A session as the user's store holds it, to seed a node store with."""

    row: SessionRow
    entries: tuple[TranscriptEntry, ...]
    usage: tuple[UsageRow, ...]
    """The session's own ledger rows (its budget on the node counts them)."""
    children: tuple[SessionExport, ...] = ()
    """Every session whose parent chain leads to this one (subagents, teammates, theirs),
    parents first, each with its transcript and usage (`children` empty)."""
    team: tuple[tuple[str, dict[str, Any]], ...] = ()
    """The rows of the teams the tree's sessions lead, as (table, row) in insertion order
    (`covey.store.replica_tree.team_rows`)."""


@dataclass(frozen=True)
class Record:
    """One write the session (or a session of its tree: `data["sid"]`) made on the node:
    `kind` is `entry`, `event`, `usage`, `session`, `tool_run`, `tool_run_end`, `command`,
    `child` (a tree session's row) or `team` (a team row; see `covey.store.replica` and
    `covey.store.replica_tree`)."""

    id: int
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class SnapshotRecord:
    """The worktree after a tool batch (a commit `sha` on top of `parent`, shipped as a git
    bundle). It precedes the batch's tool results: they count only once it was received."""

    id: int
    sha: str
    parent: str
    bundle: bytes
    branch: str = ""
    """The branch of a child's own worktree (`isolation: worktree`); "" for the session's."""


@dataclass(frozen=True)
class Batch:
    """The records of one `collect`, in the order they must be applied."""

    session_id: str
    epoch: int
    """The epoch the node store was seeded with: `apply` refuses any other."""
    records: tuple[Record | SnapshotRecord, ...]
    cursor: Cursor
    """Where the next `collect` starts once this batch is applied."""
    more: bool = False
    """The limit cut it short: collect again at once."""
    paths: tuple[tuple[str, str], ...] = ()
    """The root's paths on the node (`cwd`, `worktree`, `repo`): a child's paths under them
    are moved under the root's own in the user's store."""


class Snapshot(Protocol):
    """What the executor's snapshot callback returns (`covey.git.bundles.ShippedSnapshot`)."""

    @property
    def sha(self) -> str: ...

    @property
    def parent(self) -> str: ...

    @property
    def bundle(self) -> bytes: ...


class StaleEpoch(LeaseLost):
    """The session's epoch in the user's store is not the batch's: someone took it over.
    Nothing of the batch was written."""

    reason = "stale_epoch"


class SnapshotFailed(RuntimeError):
    """`on_snapshot` raised: what came before the snapshot record was applied (up to
    `cursor`); the snapshot and everything after it were not."""

    def __init__(self, cursor: Cursor, snapshot: SnapshotRecord, error: BaseException):
        super().__init__(f"snapshot {snapshot.sha[:12]} was not received: {error}")
        self.cursor = cursor
        self.snapshot = snapshot
        self.error = error
