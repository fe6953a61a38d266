"""Compaction: when the context nears its window, older turns are summarised by the model.

The latest turns stay verbatim. The conversation becomes a summary message followed by that
tail; the summary carries how many assistant turns it replaces (`turns="N"`), so a stateless
scripted model keeps counting turns across compactions.

A model may answer the summary request without text (a tool call, or nothing). It is asked
once more with no tool calls allowed (the tools are still described: a conversation holding
tool blocks must define them). If there is still no text, nothing is summarised: the history
is kept and the older turns' long tool outputs are trimmed to their start instead, so the
context shrinks and no turn is lost. `Compaction.method` says which of the three happened.

Summary requests are model requests like any other: each goes through the run's request guard
(a session's budget), and each answer is handed to `on_answer` as it comes, so what it cost is
billed to the session even when no summary results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from covey.agent.guard import RequestGuard, unguarded
from covey.messages import Message, ToolResultBlock, compacted_turns, summary_message
from covey.models.base import Model, ModelRequest, ModelResponse, ToolSpec

__all__ = [
    "COMPACT_INSTRUCTIONS",
    "TRIM_KEEP_CHARS",
    "Compaction",
    "compact_messages",
    "trim_tool_outputs",
]

COMPACT_INSTRUCTIONS = (
    "Summarise the conversation above so that you can continue the work from the summary "
    "alone: the task and the user's requests, decisions made, files read or changed and their "
    "current state, commands run and their results, and what remains to do. Be complete but "
    "brief. Reply with the summary only."
)
TRIM_KEEP_CHARS = 200
"""A trimmed tool output keeps this many characters; only outputs over twice as long are
trimmed, so trimming again changes nothing."""


@dataclass(frozen=True)
class Compaction:
    messages: list[Message]
    """The new conversation: the summary message (or the trimmed history), then the tail."""
    summary: str
    """The model's summary; when it gave none, a note saying what was done instead."""
    summarized_messages: int
    method: str = "summary"
    """`summary`, `summary_without_tools` or `trimmed_tool_outputs`."""


def _cut_index(messages: list[Message], keep_turns: int) -> int | None:
    """Index of the first kept message: an assistant message, `keep_turns` from the end."""
    assistants = [i for i, m in enumerate(messages) if m.role == "assistant"]
    if len(assistants) <= keep_turns:
        return None
    cut = assistants[-keep_turns] if keep_turns else len(messages)
    return cut if cut > 1 else None


async def compact_messages(
    model: Model,
    system: str,
    messages: list[Message],
    tools: list[ToolSpec],
    *,
    keep_turns: int = 2,
    agent_name: str | None = None,
    instructions: str | None = None,
    guard: RequestGuard = unguarded,
    on_answer: Callable[[ModelResponse], None] | None = None,
) -> Compaction | None:
    """Summarise all but the last `keep_turns` turns (or trim their tool outputs when the
    model gives no summary); None when there is too little to drop."""
    cut = _cut_index(messages, keep_turns)
    if cut is None:
        return None
    head, tail = messages[:cut], messages[cut:]
    focus = f"\n\nFocus the summary on: {instructions}" if instructions else ""
    request = ModelRequest(
        system=system,
        messages=[*head, Message.user(COMPACT_INSTRUCTIONS + focus)],
        tools=tools,
        agent_name=agent_name,
        purpose="compact",
    )

    async def ask(req: ModelRequest) -> str:
        async with guard(req, model):
            answer = await model.complete(req)
        if on_answer is not None:
            on_answer(answer)
        return answer.message.text.strip()

    method = "summary"
    summary = await ask(request)
    if not summary and tools:
        method = "summary_without_tools"
        summary = await ask(replace(request, allow_tool_calls=False))
    if summary:
        turns = compacted_turns(head) + sum(1 for m in head if m.role == "assistant")
        return Compaction([summary_message(summary, turns), *tail], summary, len(head), method)
    trimmed, count = trim_tool_outputs(head)
    if not count:
        return None
    note = (
        "(no summary: the model answered the summary request without text, so the "
        f"conversation was kept and {count} older tool output(s) trimmed instead)"
    )
    return Compaction([*trimmed, *tail], note, 0, "trimmed_tool_outputs")


def trim_tool_outputs(messages: list[Message]) -> tuple[list[Message], int]:
    """The messages with each long tool output cut to its start; and how many were cut."""
    out: list[Message] = []
    count = 0
    for message in messages:
        blocks = []
        for block in message.content:
            if isinstance(block, ToolResultBlock) and len(block.content) > 2 * TRIM_KEEP_CHARS:
                dropped = len(block.content) - TRIM_KEEP_CHARS
                text = (
                    f"{block.content[:TRIM_KEEP_CHARS]}\n"
                    f"[… {dropped} more characters trimmed to save context]"
                )
                block = block.model_copy(update={"content": text})
                count += 1
            blocks.append(block)
        changed = any(a is not b for a, b in zip(blocks, message.content, strict=True))
        out.append(Message(role=message.role, content=blocks) if changed else message)
    return out, count
