"""Rebuilding a conversation from its transcript, after a clean stop or a crash.

The latest `compact_boundary` replaces everything before it. A tool call whose result was not
saved is answered with an error result saying it was interrupted: it is never re-run
silently (at-most-once tools). That answer is recorded too, before the resumed run's first
message (`interrupted_answer`, used by the `Persister`), so the transcript stays a
well-formed conversation for every later resume.
"""

from __future__ import annotations

from collections.abc import Sequence

from covey.messages import Message, ToolResultBlock, load_message
from covey.store.transcript import TranscriptEntry

__all__ = ["INTERRUPTED", "interrupted_answer", "load_conversation"]

INTERRUPTED = (
    "Interrupted: the session stopped before this tool call finished, so its outcome is "
    "unknown. It was not re-run; check the current state and run it again if still needed."
)


def load_conversation(entries: Sequence[TranscriptEntry]) -> list[Message]:
    messages, finished = _replay(entries)
    answer = _answer(messages, finished)
    return [*messages, answer] if answer is not None else messages


def interrupted_answer(entries: Sequence[TranscriptEntry]) -> Message | None:
    """The user message `load_conversation` adds because the transcript ends with tool calls
    whose answer was never saved (finished results, and errors for the interrupted ones);
    None when it ends otherwise."""
    return _answer(*_replay(entries))


def _replay(entries: Sequence[TranscriptEntry]) -> tuple[list[Message], dict[str, ToolResultBlock]]:
    messages: list[Message] = []
    finished: dict[str, ToolResultBlock] = {}
    for entry in entries:
        if entry.kind == "compact_boundary":
            messages = [load_message(m) for m in entry.data["messages"]]
            finished = {}
        elif entry.kind == "message":
            messages.append(load_message(entry.data))
            finished = {}
        elif entry.kind == "tool_result":
            block = ToolResultBlock.model_validate(entry.data["result"])
            finished[block.tool_use_id] = block
    return messages, finished


def _answer(messages: list[Message], finished: dict[str, ToolResultBlock]) -> Message | None:
    if not (messages and messages[-1].role == "assistant" and messages[-1].tool_uses):
        return None
    results = [
        finished.get(call.id)
        or ToolResultBlock(tool_use_id=call.id, content=INTERRUPTED, is_error=True)
        for call in messages[-1].tool_uses
    ]
    return Message(role="user", content=list(results))
