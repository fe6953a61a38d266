"""Writing one journal record of a replicated session's tree to the user's store, inside
`covey.executors.replica.apply`'s transaction (which checked the root's epoch first).

The root's own writes are fenced by the root's epoch again, one by one. A session of its
tree (`data["sid"]`: a subagent, a teammate) is written only through its root's journal, so
the root's epoch fences it: its row is the node's (state, lease...), its paths under the
root's node paths moved under the root's own, and its transcript entries are appended at
whatever epoch its row has.

Paths in what the sessions wrote: a node runs the session in a worktree of its own (under its
temp dir), and the model there sees that path (its system prompt, tool results, errors). The
node is left alone (its paths are real there: Read, Edit, Bash work unchanged); the paths are
translated at the boundary instead. `apply` writes transcript entries, events, a row's
summary and reason with every node path of the root moved to the user's (`move_text`), and
`seed_node_store` moves the user's back to the next node's, so each side only ever reads its
own paths, across any number of resumes.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from covey.executors.replica_records import Record, StaleEpoch
from covey.messages import Usage
from covey.sessions.state import replay_state
from covey.store.commands import finish_command
from covey.store.events import append_event
from covey.store.replica import FORWARDED_ID_LIMIT
from covey.store.replica_tree import apply_team_row, upsert_session_image
from covey.store.session_meta import SessionMeta
from covey.store.sessions import get_session
from covey.store.tool_runs import record_run
from covey.store.transcript import append_entry
from covey.store.usage import record_usage

__all__ = ["NODE_META_KEYS", "apply_record", "move_path", "move_text", "root_paths"]

NODE_META_KEYS = ("worktree", "repo")
"""Meta keys that name paths on the node: the user's row keeps its own (and its `cwd`)."""


def root_paths(cwd: str, meta: dict[str, Any]) -> dict[str, str]:
    """A root row's paths that its children's may lie under: `cwd`, `worktree`, `repo`."""
    paths = {"cwd": cwd}
    for key in NODE_META_KEYS:
        if isinstance(meta.get(key), str):
            paths[key] = meta[key]
    return paths


def move_path(value: Any, moves: Iterable[tuple[str, str]]) -> Any:
    """`value` with the first (longest) `old` prefix it lies under replaced by `new`."""
    if not isinstance(value, str):
        return value
    for old, new in sorted(moves, key=lambda m: -len(m[0])):
        if value == old or value.startswith(old.rstrip("/") + "/"):
            return new + value[len(old) :]
    return value


def move_text(value: Any, moves: Iterable[tuple[str, str]]) -> Any:
    """`value` (JSON: dicts, lists, strings) with every path `old` it names, anywhere in its
    strings, replaced by `new` (the longest `old` first; the first `new` of an `old`)."""
    table: dict[str, str] = {}
    for old, new in sorted(moves, key=lambda m: -len(m[0])):
        if old and old != new:
            table.setdefault(old.rstrip("/") or old, new.rstrip("/") or new)
    if not table:
        return value
    pattern = re.compile("|".join(re.escape(old) for old in table) + r"(?![\w.-])")
    return _walk(value, lambda text: pattern.sub(lambda m: table[m.group(0)], text))


def _walk(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: _walk(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, change) for v in value]
    return value


def move_row_paths(image: dict[str, Any], moves: list[tuple[str, str]]) -> dict[str, Any]:
    """A child's row image with its `cwd` and meta paths moved (`move_path`)."""
    meta = dict(image.get("meta") or {})
    for key in NODE_META_KEYS:
        if key in meta:
            meta[key] = move_path(meta[key], moves)
    moved = {"cwd": move_path(image["cwd"], moves), "meta": meta}
    return {**image, **_said(image, moves), **moved}


def _said(image: dict[str, Any], moves: list[tuple[str, str]]) -> dict[str, Any]:
    """A row's summary and reason (which may name paths: an error) with paths moved."""
    return {k: move_text(image[k], moves) for k in ("summary", "reason") if k in image}


def apply_record(
    conn: sqlite3.Connection,
    root: str,
    epoch: int,
    record: Record,
    moves: list[tuple[str, str]],
) -> None:
    """Write `record` of `root`'s journal; `moves`: (node path, user path) of the root."""
    data = record.data
    sid = str(data.get("sid") or root)
    if record.kind == "entry":
        fence = epoch if sid == root else _epoch_of(conn, sid)
        entry = move_text(data["data"], moves)
        written = append_entry(conn, sid, fence, data["kind"], entry, now=data["created_at"])
        if written is None:
            raise StaleEpoch(f"session {sid}: epoch {fence} is stale")
    elif record.kind == "event":
        append_event(conn, sid, data["type"], move_text(data["data"], moves), now=data["ts"])
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
        _apply_session(conn, sid, epoch, {**data, **_said(data, moves)})
    elif record.kind == "child":
        upsert_session_image(conn, move_row_paths(data, moves))
    elif record.kind == "team":
        apply_team_row(conn, data["table"], data["op"], data["row"])
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


def _epoch_of(conn: sqlite3.Connection, sid: str) -> int:
    row = conn.execute("SELECT epoch FROM sessions WHERE id = ?", (sid,)).fetchone()
    if row is None:
        raise StaleEpoch(f"session {sid}: an entry for a session the journal never made")
    return int(row[0])


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
