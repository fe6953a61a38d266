"""A transcript entry as human lines: `covey logs` and the session screen print the same."""

from __future__ import annotations

import json

from covey.messages import load_message
from covey.store.transcript import TranscriptEntry

__all__ = ["render_entry"]


def render_entry(entry: TranscriptEntry) -> list[str]:
    """Human lines for one transcript entry."""
    if entry.kind == "compact_boundary":
        return [
            f"── compacted ({entry.data.get('trigger', '?')}) ──",
            entry.data.get("summary", ""),
        ]
    if entry.kind != "message":
        return []
    message = load_message(entry.data)
    lines: list[str] = []
    for block in message.content:
        if block.type == "text" and message.role == "user":
            lines += [f"> {line}" for line in block.text.splitlines()]
        elif block.type == "text":
            lines += [f"● {line}" for line in block.text.splitlines()]
        elif block.type == "tool_use":
            lines.append(f"  → {block.name} {json.dumps(block.input, ensure_ascii=False)[:200]}")
        elif block.type == "tool_result":
            mark = "✗" if block.is_error else "←"
            out = block.content.splitlines() or [""]
            lines += [f"    {mark} {line}" for line in out[:6]]
            if len(out) > 6:
                lines.append(f"      … {len(out) - 6} more lines")
    return lines
