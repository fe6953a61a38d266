"""A request body as JSON bytes, each message of the conversation encoded once per adapter.

A session's conversation only grows, and every request sends all of it: at 200 turns the body
is ~0.5 MB, and encoding it whole (twice: the rate limiter sizes it too) was most of the
adapter's CPU per request. Messages are immutable once in the conversation (frozen blocks),
so the JSON of a message is kept, keyed by the identity of its blocks, and reused by the next
request; only the new messages, and the last one (it carries a cache breakpoint), are encoded.

    encoded = EncodedMessages(translate)      # translate: one Message -> its wire entries
    body = request_json({"model": ..., "stream": True}, encoded.fragments(messages[:-1]) + [...])

The bytes parse to the same body as encoding the whole dict (`tests/test_models_encoded.py`);
only the order of the top-level keys differs (`messages` first).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from covey.messages import Message

__all__ = ["EncodedMessages", "EncoderStatistics", "dumps", "request_json"]

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> bytes:
    """Compact JSON, UTF-8, as the SDKs send it."""
    return _ENCODER.encode(value).encode()


def request_json(fields: dict[str, Any] | bytes, messages: Iterable[bytes]) -> bytes:
    """`{"messages": [...], **fields}` from the messages' encoded entries, made by one join:
    concatenating the joined messages with the rest copied the ~0.5 MB of a long
    conversation again, into fresh pages (0.6 ms, against 0.015 ms for the join). `fields`
    may come encoded already (`EncodedMessages.fields`)."""
    encoded = fields if isinstance(fields, bytes) else dumps(fields) if fields else b"{}"
    tail = b"]," + encoded[1:] if encoded != b"{}" else b"]}"
    parts = list(messages) or [b""]
    parts[0] = b'{"messages":[' + parts[0]
    parts[-1] += tail
    return b",".join(parts)


@dataclass(frozen=True)
class EncoderStatistics:
    encoded: int
    """Messages encoded (not found in the cache), since the encoder was made."""
    reused: int
    """Messages whose JSON came from the previous requests."""
    held: int
    """Messages held now: those of the last `GENERATIONS` requests."""


class EncodedMessages:
    """The JSON of messages, kept from one request to the next. `translate` turns one wire
    message into the provider's entries (Anthropic: one; OpenAI: one per tool result, then
    the text); a message's fragment is those entries, comma-separated.

    What the last `GENERATIONS` requests used is held (a model shared by a lead and its
    subagents alternates between conversations); older entries are let go, so a compacted
    conversation's old messages are freed four requests later."""

    GENERATIONS = 4

    def __init__(self, translate: Callable[[Message], list[dict[str, Any]]]) -> None:
        self._translate = translate
        self._generations: deque[dict[_Key, _Entry]] = deque(maxlen=self.GENERATIONS)
        self._encoded = 0
        self._reused = 0
        self._fields: tuple[_Key, tuple[object, ...], bytes] | None = None

    def fragments(self, messages: Sequence[Message]) -> list[bytes]:
        """Each message's entries as JSON (empty fragments left out), in order."""
        used: dict[_Key, _Entry] = {}
        out = []
        for message in messages:
            blocks = tuple(message.content)
            # Keyed by the blocks' identities, and holding the blocks so that no id is reused:
            # the same frozen blocks in the same order are the same JSON.
            key = (message.role, *map(id, blocks))
            found = used.get(key) or self._held(key)
            if found is None:
                found = (blocks, b",".join(dumps(e) for e in self._translate(message)))
                self._encoded += 1
            else:
                self._reused += 1
            used[key] = found
            if found[1]:
                out.append(found[1])
        self._generations.append(used)
        return out

    def fields(
        self, key: tuple[object, ...], held: Sequence[object], build: Callable[[], dict[str, Any]]
    ) -> bytes:
        """`dumps(build())`, the request's fields beside the messages, reused while `key` is
        equal and `held` are the same objects (by identity, and kept so that no id is
        reused): the system prompt and the tool definitions (~10 KB, their specs made once
        per tool class and never changed) are encoded once, not at every request."""
        full_key = (*key, *map(id, held))
        if self._fields is None or self._fields[0] != full_key:
            self._fields = (full_key, tuple(held), dumps(build()))
        return self._fields[2]

    def _held(self, key: _Key) -> _Entry | None:
        for generation in reversed(self._generations):
            if (found := generation.get(key)) is not None:
                return found
        return None

    def statistics(self) -> EncoderStatistics:
        held = {key for generation in self._generations for key in generation}
        return EncoderStatistics(self._encoded, self._reused, len(held))


_Key = tuple[object, ...]
_Entry = tuple[tuple[object, ...], bytes]
