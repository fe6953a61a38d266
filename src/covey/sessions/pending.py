"""A session's pending question: what a host stores while it waits for its person.

Both hosts (the supervisor for background sessions, the session screen for a foreground one)
ask the same way: the question or the tool call waiting for permission goes into
`meta.pending` in the same transaction that sets `needs_input`, and is cleared in the one
that sets `working` again. Readers (`covey agents`, the agent view) see it as `Pending`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from covey.sessions.state import set_state
from covey.store import Store
from covey.store.sessions import SessionMeta, get_session

__all__ = ["YES", "Pending", "call_text", "is_yes", "set_waiting", "with_meta"]

YES = frozenset({"y", "yes", "allow", "ok", "approve", "approved", "go", "sure"})
"""Answers that allow a tool call; anything else denies it."""


def is_yes(text: str) -> bool:
    return text.strip().lower().rstrip(".!") in YES


def call_text(tool: str, tool_input: dict[str, Any]) -> str:
    """A tool call in one short line: `Bash(npm test)`, `Write(src/a.py)`."""
    arg = tool_input.get("command") or tool_input.get("file_path") or tool_input.get("pattern")
    shown = str(arg) if arg else json.dumps(tool_input, sort_keys=True)
    return f"{tool}({shown[:200]})"


@dataclass(frozen=True)
class Pending:
    """What a `needs_input` session waits for (`meta.pending`)."""

    kind: str
    """question | permission | credentials"""
    text: str
    options: list[str] = field(default_factory=list)
    tool: str | None = None
    tool_input: dict[str, Any] | None = None

    @classmethod
    def permission(cls, tool: str, tool_input: dict[str, Any], reason: str) -> Pending:
        """A tool call waiting for the person's yes or no."""
        text = f"Allow {call_text(tool, tool_input)}? ({reason})"
        return cls("permission", text, ["yes", "no"], tool=tool, tool_input=tool_input)

    @classmethod
    def from_meta(cls, raw: Any) -> Pending | None:
        if not isinstance(raw, dict) or not raw.get("text"):
            return None
        return cls(
            kind=str(raw.get("kind", "question")),
            text=str(raw["text"]),
            options=[str(o) for o in raw.get("options") or []],
            tool=raw.get("tool"),
            tool_input=raw.get("input"),
        )

    def choose(self, text: str) -> str:
        """What the person's answer means: a number picks that option (`2` → the second)."""
        text = text.strip()
        if text.isdigit() and 1 <= int(text) <= len(self.options):
            return self.options[int(text) - 1]
        return text

    def as_meta(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "text": self.text, "options": self.options}
        if self.tool is not None:
            data["tool"] = self.tool
            data["input"] = self.tool_input or {}
        return data


def with_meta(meta: SessionMeta, **changes: Any) -> SessionMeta:
    """A copy of `meta` with keys set (a None value removes the key)."""
    data = meta.model_dump(mode="json", exclude_none=True)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return SessionMeta.model_validate(data)


def set_waiting(store: Store, session_id: str, epoch: int, pending: Pending | None) -> None:
    """`needs_input` with `pending` stored, or (None) back to `working` with it cleared."""
    with store.read() as conn:
        row = get_session(conn, session_id)
    meta = with_meta(row.meta if row else SessionMeta(), pending=pending and pending.as_meta())
    if pending is None:
        set_state(store, session_id, epoch, "working", None, meta=meta)
    else:
        reason = f"{pending.kind}: {pending.text}"[:200]
        set_state(store, session_id, epoch, "needs_input", reason, meta=meta)
