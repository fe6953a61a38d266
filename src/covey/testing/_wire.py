"""What both provider wire formats of the fake server share: the reply to send, chunking,
and a stream of SSE frames with marked points where a scripted drop cuts it."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from covey.messages import Usage
from covey.models.script import ScriptTurn

__all__ = ["DROP_POINTS", "Reply", "SseStream", "malformed_frame", "split", "to_json"]

DROP_POINTS = ("before_blocks", "mid_text", "mid_tool")


@dataclass(frozen=True)
class Reply:
    """One scripted answer, before it is put into a provider's wire format."""

    turn_index: int
    turn: ScriptTurn
    model: str
    usage: Usage
    seed: str
    """Seeds the chunk sizes, so the same request is always split the same way."""

    def rng(self) -> random.Random:
        return random.Random(self.seed)


def to_json(data: object) -> str:
    """The one JSON encoding of everything the server sends (tool arguments included)."""
    return json.dumps(data, ensure_ascii=False)


@dataclass
class SseStream:
    """SSE frames in order; `cuts[point]` = how many frames go out before a drop at `point`."""

    frames: list[bytes] = field(default_factory=list)
    cuts: dict[str, int] = field(default_factory=dict)

    def event(self, name: str | None, data: dict[str, Any] | str) -> None:
        payload = data if isinstance(data, str) else to_json(data)
        head = f"event: {name}\n" if name else ""
        self.frames.append(f"{head}data: {payload}\n\n".encode())

    def mark(self, point: str) -> None:
        """A drop at `point` cuts the stream here (the first mark of a point wins)."""
        self.cuts.setdefault(point, len(self.frames))

    def insert(self, point: str, frame: bytes) -> None:
        """Put `frame` in where a drop at `point` would cut (a `malformed` fault)."""
        self.frames.insert(self.cut_for(point), frame)

    def cut_for(self, point: str) -> int:
        """Where to cut for `point`; a point the reply lacks (mid_tool in a text-only reply)
        falls back to right after the stream's start."""
        return self.cuts.get(point, self.cuts["before_blocks"])


def split(text: str, rng: random.Random, lo: int, hi: int) -> list[str]:
    """`text` cut into pieces of lo..hi characters (at least one piece, maybe empty)."""
    pieces: list[str] = []
    i = 0
    while i < len(text):
        n = rng.randint(lo, hi)
        pieces.append(text[i : i + n])
        i += n
    return pieces or [text]


def malformed_frame(kind: str, *, openai: bool) -> bytes:
    """The SSE frame of a `malformed` fault: `not_json` (a `data:` line cut mid-object) or
    `bad_index` (a delta for a content block, or OpenAI tool call, that never started)."""
    if kind == "not_json":
        head = "" if openai else "event: content_block_delta\n"
        return f'{head}data: {{"type": "content_block_delta", "index\n\n'.encode()
    if openai:
        call = {"index": 99, "function": {"arguments": '{"lost": true}'}}
        choice = {"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}
        chunk = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 0}
        data = to_json({**chunk, "model": "fake-model", "choices": [choice]})
        return f"data: {data}\n\n".encode()
    text = {"type": "text_delta", "text": "lost"}
    delta = {"type": "content_block_delta", "index": 99, "delta": text}
    return f"event: content_block_delta\ndata: {to_json(delta)}\n\n".encode()
