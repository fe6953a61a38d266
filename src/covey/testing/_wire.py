"""What both provider wire formats of the fake server share: the reply to send, chunking,
and a stream of SSE frames with marked points where a scripted drop cuts it."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from covey.messages import Usage
from covey.models.script import ScriptTurn

__all__ = ["DROP_POINTS", "Reply", "SseStream", "split", "to_json"]

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
