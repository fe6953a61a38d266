"""Transcript entries as the session screen and the peek panel show them: text in full, each
tool call and each tool result folded to one line. Text and tool calls are rendered by
`covey logs`' own `render_entry`, one block at a time."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from covey.messages import Message, ToolResultBlock, dump_message, load_message
from covey.sessions.render import render_entry
from covey.store.transcript import TranscriptEntry, last_seq, read_entries

__all__ = ["entry_lines", "fold_result", "tail_lines"]

RESULT_WIDTH = 120


def fold_result(block: ToolResultBlock) -> str:
    """A tool result as one line: its first line and how many more there are."""
    mark = "✗" if block.is_error else "←"
    lines = block.content.splitlines() or [""]
    first = lines[0] if len(lines[0]) <= RESULT_WIDTH else lines[0][: RESULT_WIDTH - 1] + "…"
    more = f"  (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    return f"    {mark} {first}{more}"


def entry_lines(entry: TranscriptEntry) -> list[str]:
    """Readable lines for one entry (nothing for entries a person need not see)."""
    if entry.kind != "message":
        return render_entry(entry)
    message = load_message(entry.data)
    lines: list[str] = []
    for block in message.content:
        if isinstance(block, ToolResultBlock):
            lines.append(fold_result(block))
            continue
        single = Message(role=message.role, content=[block])
        part = TranscriptEntry(
            entry.session_id, entry.seq, entry.kind, dump_message(single), entry.created_at
        )
        lines += render_entry(part)
    return lines


def all_lines(entries: Iterable[TranscriptEntry]) -> list[str]:
    return [line for entry in entries for line in entry_lines(entry)]


def tail_lines(conn: sqlite3.Connection, session_id: str, count: int) -> list[str]:
    """The last `count` lines of a session's transcript, reading only its last entries."""
    last = last_seq(conn, session_id)
    lines: list[str] = []
    window = count
    while True:
        after = max(0, last - window)
        lines = all_lines(read_entries(conn, session_id, after_seq=after))
        if len(lines) >= count or after == 0:
            return lines[-count:]
        window *= 4
