"""The conversation as a provider accepts it, made from covey's messages at the wire boundary.

covey's conversation, in memory and in the transcript, is append-only: a prompt, a background
notice or a Stop hook's reason that comes after tool results is a user message of its own.
The providers want one user turn after each assistant turn, its tool results first and each
answered once. `wire_messages` gives that shape, in this one place, for every adapter (and for
the scripted model's own check of the rules):

- adjacent messages of one role become one message; in a user message the tool results come
  first (in order), then the text;
- a tool result whose call was already answered in that message is left out (transcripts
  written before this rule stored a result twice when a prompt joined it);
- empty text blocks are left out, and a message left with no content says `(no content)`
  (both APIs refuse an empty message; a model may answer with nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

from covey.messages import ContentBlock, Message, TextBlock, ToolResultBlock

__all__ = ["NO_CONTENT", "wire_messages"]

NO_CONTENT = "(no content)"


def wire_messages(messages: Sequence[Message]) -> list[Message]:
    out: list[Message] = []
    pending: list[Message] = []
    for message in messages:
        if pending and pending[0].role != message.role:
            out.append(_joined(pending))
            pending = []
        pending.append(message)
    if pending:
        out.append(_joined(pending))
    return out


def _joined(run: list[Message]) -> Message:
    """One message from a run of messages of one role."""
    if len(run) == 1 and _well_formed(run[0]):
        return run[0]  # the common case, checked in one pass: a long conversation costs little
    blocks = [b for m in run for b in m.content if not isinstance(b, TextBlock) or b.text]
    if run[0].role == "user":
        answered: set[str] = set()
        results: list[ContentBlock] = []
        for block in blocks:
            if isinstance(block, ToolResultBlock) and block.tool_use_id not in answered:
                answered.add(block.tool_use_id)
                results.append(block)
        blocks = [*results, *(b for b in blocks if not isinstance(b, ToolResultBlock))]
    if not blocks:
        blocks = [TextBlock(text=NO_CONTENT)]
    if len(run) == 1 and _same(blocks, run[0].content):
        return run[0]
    return Message(role=run[0].role, content=blocks)


def _well_formed(message: Message) -> bool:
    """Nothing to change: content, no empty text, tool results first and each id once."""
    seen_other = False
    ids: set[str] = set()
    for block in message.content:
        if isinstance(block, ToolResultBlock):
            if seen_other or block.tool_use_id in ids:
                return False
            ids.add(block.tool_use_id)
        elif isinstance(block, TextBlock) and not block.text:
            return False
        else:
            seen_other = True
    return bool(message.content)


def _same(blocks: list[ContentBlock], content: Sequence[ContentBlock]) -> bool:
    """The same blocks in the same order (by identity: no deep comparison per request)."""
    return len(blocks) == len(content) and all(a is b for a, b in zip(blocks, content, strict=True))
