"""The conversation rules the providers enforce with a 400, checked on a request's `messages`.

The fake provider server answers 400 `invalid_request_error` with these words, as the real
APIs do, and the scripted model refuses the same conversations, so every test that talks to
either checks that covey sends well-formed conversations.

Anthropic Messages API (`anthropic_violation`), on the JSON `messages` list. Consecutive
messages of one role are combined into one turn first (as the API documents), then:

- a request holding `tool_use` or `tool_result` blocks defines `tools`;
- every message has content, and no text block is empty;
- `tool_use` blocks only in assistant turns, `tool_result` blocks only in user turns;
- no `tool_use` id twice in the request;
- every `tool_use` is answered by a `tool_result` in the very next turn, which is a user turn;
- every `tool_result` answers a `tool_use` of the turn just before, once;
- in a user turn, the `tool_result` blocks come before any other content.

OpenAI chat completions (`openai_violation`): each `tool` message answers a `tool_calls` id
of the assistant message before it (only `tool` messages in between), once; every tool call
is answered before the next non-`tool` message; no tool call id twice in one message.

The messages are the real APIs' where known (from their error bodies); the checks are those
rules, not the whole schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["anthropic_violation", "openai_violation"]


@dataclass
class _Turn:
    role: str
    blocks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(where, block): where = `messages.N.content.M`, the block as sent."""
    first: int = 0
    """Index of the turn's first message."""

    def ids(self, kind: str, key: str) -> list[tuple[str, str]]:
        return [(where, str(b.get(key))) for where, b in self.blocks if b.get("type") == kind]


def anthropic_violation(messages: list[Any], *, tools_defined: bool = True) -> str | None:
    """Why the Messages API would refuse this conversation (sent with or without `tools`),
    or None."""
    turns: list[_Turn] = []
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return f"messages.{n}.role: Input should be 'user' or 'assistant'"
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
            return f"messages.{n}.content: Input should be a valid list"
        last_assistant = n == len(messages) - 1 and message["role"] == "assistant"
        if not blocks and not last_assistant:
            return (
                f"messages.{n}: all messages must have non-empty content except for the "
                "optional final assistant message"
            )
        if not turns or turns[-1].role != message["role"]:
            turns.append(_Turn(message["role"], first=n))
        for m, block in enumerate(blocks):
            if block.get("type") == "text" and not block.get("text"):
                return f"messages.{n}.content.{m}: text content blocks must be non-empty"
            turns[-1].blocks.append((f"messages.{n}.content.{m}", block))
    if not tools_defined and any(
        b.get("type") in ("tool_use", "tool_result") for t in turns for _, b in t.blocks
    ):
        return "Requests which include `tool_use` or `tool_result` blocks must define tools."
    seen: set[str] = set()
    for i, turn in enumerate(turns):
        previous = turns[i - 1] if i else None
        following = turns[i + 1] if i + 1 < len(turns) else None
        problem = _turn_violation(turn, previous, following, seen)
        if problem:
            return problem
    return None


def _turn_violation(
    turn: _Turn, previous: _Turn | None, following: _Turn | None, seen: set[str]
) -> str | None:
    wrong = "tool_result" if turn.role == "assistant" else "tool_use"
    for where, block in turn.blocks:
        if block.get("type") == wrong:
            return f"{where}: `{wrong}` blocks are not allowed in `{turn.role}` messages"
    for where, use_id in turn.ids("tool_use", "id"):
        if use_id in seen:
            return f"{where}: `tool_use` ids must be unique"
        seen.add(use_id)
    uses = [use_id for _, use_id in turn.ids("tool_use", "id")]
    answered = {i for _, i in following.ids("tool_result", "tool_use_id")} if following else set()
    if missing := [u for u in uses if u not in answered]:
        return (
            f"messages.{turn.first}: `tool_use` ids were found without `tool_result` blocks "
            f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
            "corresponding `tool_result` block in the next message."
        )
    if turn.role != "user":
        return None
    asked = {i for _, i in previous.ids("tool_use", "id")} if previous else set()
    results: set[str] = set()
    other_content = False
    for where, block in turn.blocks:
        if block.get("type") != "tool_result":
            other_content = True
            continue
        result_id = str(block.get("tool_use_id"))
        if result_id not in asked:
            return (
                f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {result_id}. "
                "Each `tool_result` block must have a corresponding `tool_use` block in the "
                "previous message."
            )
        if result_id in results:
            return (
                f"{where}: each tool_use must have a single result. Found multiple "
                f"`tool_result` blocks with id: {result_id}"
            )
        if other_content:
            return (
                f"messages.{turn.first}: Did not find {len(asked)} `tool_result` block(s) at "
                "the beginning of this message. Messages following `tool_use` blocks must "
                "begin with a matching number of `tool_result` blocks."
            )
        results.add(result_id)
    return None


def openai_violation(messages: list[Any]) -> str | None:
    """Why the chat completions API would refuse this conversation, or None."""
    open_calls: list[str] = []
    answered: set[str] = set()
    after_calls = False
    opened_at = 0
    for n, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "developer", "user", "assistant", "tool"):
            return f"Invalid value for 'messages[{n}].role'"
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not after_calls:
                return (
                    f"Invalid parameter: messages with role 'tool' must be a response to a "
                    f"preceeding message with 'tool_calls' (messages[{n}])."
                )
            if call_id not in open_calls:
                return (
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in "
                    f"'tool_calls' of previous message (messages[{n}])."
                )
            if call_id in answered:
                return f"Invalid parameter: messages[{n}] answers tool_call_id '{call_id}' twice."
            answered.add(call_id)
            continue
        if missing := [c for c in open_calls if c not in answered]:
            return _unanswered(opened_at, missing)
        calls = message.get("tool_calls") if role == "assistant" else None
        ids = [str(c.get("id")) for c in calls or [] if isinstance(c, dict)]
        if len(set(ids)) != len(ids):
            return f"Invalid parameter: duplicate tool call ids in messages[{n}].tool_calls."
        open_calls, answered, after_calls, opened_at = ids, set(), bool(ids), n
    if missing := [c for c in open_calls if c not in answered]:
        return _unanswered(opened_at, missing)
    return None


def _unanswered(n: int, missing: list[str]) -> str:
    return (
        f"An assistant message with 'tool_calls' must be followed by tool messages responding "
        f"to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        f"{', '.join(missing)} (messages[{n}])"
    )
