"""Compaction: when the context nears its window, older turns are summarised by the model.

The latest turns stay verbatim. The conversation becomes a summary message followed by that
tail; the summary carries how many assistant turns it replaces (`turns="N"`), so a stateless
scripted model keeps counting turns across compactions.
"""

from __future__ import annotations

from dataclasses import dataclass

from covey.messages import Message, TextBlock, compacted_turns, summary_message
from covey.models.base import Model, ModelRequest, ToolSpec

__all__ = [
    "COMPACT_INSTRUCTIONS",
    "Compaction",
    "compact_messages",
]

COMPACT_INSTRUCTIONS = (
    "Summarise the conversation above so that you can continue the work from the summary "
    "alone: the task and the user's requests, decisions made, files read or changed and their "
    "current state, commands run and their results, and what remains to do. Be complete but "
    "brief. Reply with the summary only."
)


@dataclass(frozen=True)
class Compaction:
    messages: list[Message]
    """The new conversation: the summary message, then the verbatim tail."""
    summary: str
    summarized_messages: int


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
) -> Compaction | None:
    """Summarise all but the last `keep_turns` turns; None when there is too little to drop."""
    cut = _cut_index(messages, keep_turns)
    if cut is None:
        return None
    head, tail = messages[:cut], messages[cut:]
    last = head[-1]
    focus = f"\n\nFocus the summary on: {instructions}" if instructions else ""
    request = COMPACT_INSTRUCTIONS + focus
    ask = Message(role="user", content=[*last.content, TextBlock(text=request)])
    response = await model.complete(
        ModelRequest(
            system=system,
            messages=[*head[:-1], ask],
            tools=tools,
            agent_name=agent_name,
            purpose="compact",
        )
    )
    summary = response.message.text.strip() or "(the model returned an empty summary)"
    turns = compacted_turns(head) + sum(1 for m in head if m.role == "assistant")
    return Compaction([summary_message(summary, turns), *tail], summary, len(head))
