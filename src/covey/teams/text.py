"""What team members read: the preamble of a teammate's system prompt, and mail as the
user messages that carry it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from covey.store.teams import LEAD, MailRow, MemberRow, TaskRow

__all__ = ["FINAL_TEXT_CHARS", "SHUTDOWN_HINT", "idle_body", "mail_text", "preamble", "summary_of"]

FINAL_TEXT_CHARS = 4000
"""How much of a teammate's final text an idle notification carries."""
_SUMMARY_CHARS = 200


def _attr(value: str) -> str:
    return escape(value, quote=True)


SHUTDOWN_HINT = (
    'Answer with SendMessage {"type": "shutdown_response", "request_id": "…", "approve": true} '
    "when you are done (false, with a reason, to keep working)."
)
"""Told with a shutdown request, not in every request's preamble."""


def mail_text(mail: Sequence[MailRow]) -> str:
    """One user message carrying `mail`, in send order."""
    parts = []
    for m in mail:
        if m.kind == "idle":
            parts.append(f'<teammate-idle from="{_attr(m.sender)}">\n{m.body}\n</teammate-idle>')
        else:
            summary = f' summary="{_attr(m.summary)}"' if m.summary else ""
            hint = f"\n{SHUTDOWN_HINT}" if _is_shutdown_request(m.body) else ""
            parts.append(
                f'<teammate-message from="{_attr(m.sender)}"{summary}>\n{m.body}{hint}\n'
                "</teammate-message>"
            )
    return "\n\n".join(parts)


def _is_shutdown_request(body: str) -> bool:
    if not body.startswith("{"):
        return False
    try:
        message = json.loads(body)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "shutdown_request"


def summary_of(message: str | dict[str, Any], summary: str | None) -> str | None:
    """The given summary, else the first line of a text message (a structured one has none)."""
    text = summary or (message.strip().splitlines()[0] if isinstance(message, str) else "")
    text = text.strip()
    return text[:_SUMMARY_CHARS] or None


def idle_body(
    session_id: str,
    final_text: str,
    completed: Sequence[TaskRow],
    *,
    state: str = "idle",
    branch: str | None = None,
) -> str:
    """The lead's view of a teammate's turn end: its final text (cut when long), the tasks it
    completed in the turn, its branch when it works in a worktree of its own."""
    text = final_text.strip()
    if len(text) > FINAL_TEXT_CHARS:
        text = (
            f"{text[:FINAL_TEXT_CHARS]}\n[… cut at {FINAL_TEXT_CHARS} characters; the rest: "
            f"covey logs {session_id}]"
        )
    lines = [f"session: {session_id}"] + ([f"state: {state}"] if state != "idle" else [])
    if branch:
        lines.append(f"branch: {branch}")
    if completed:
        done = "; ".join(f"#{t.id} {t.subject}" for t in completed)
        lines.append(f"completed tasks: {done}")
    return "\n".join([*lines, "", text or "(no final text)"])


def preamble(me: MemberRow, members: Sequence[MemberRow]) -> str:
    """The start of a teammate's system prompt addition: who is who and how to work together.
    It goes with every request of the teammate, so it is short; the tools say the rest."""
    others = ", ".join(m.name for m in members if m.name not in (me.name, LEAD))
    lines = [
        f'You are teammate "{me.name}" of lead "{LEAD}"'
        + (f" with {others}" if others else "")
        + "; the lead gets your final text.",
        'Only SendMessage reaches others (to a name, or "*").',
        f'Work: TaskList, claim the lowest-id pending unblocked unowned task (owner "{me.name}"), '
        "complete it only when fully done.",
    ]
    if me.owns:
        lines.append(f"You own {', '.join(me.owns)}: Write and Edit work only there.")
    return "\n".join(lines)


def structured(message: str | dict[str, Any]) -> str:
    return message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
