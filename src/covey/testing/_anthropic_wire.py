"""The Anthropic Messages API wire format (`POST /v1/messages`) for the fake server."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from covey.models.script import tool_use_id
from covey.testing._window import Limit
from covey.testing._wire import Reply, SseStream, split, to_json

__all__ = ["error_body", "headers", "message", "request_id", "rfc3339", "stream"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def request_id() -> str:
    return "req_" + secrets.token_hex(12)


def error_body(status: int, message: str, req_id: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": req_id}


def headers(
    req_id: str,
    requests_seen: int,
    *,
    limited: bool,
    reset_in: float = 60.0,
    enforced: Mapping[str, Limit] | None = None,
) -> dict[str, str]:
    """`request-id` and the `anthropic-ratelimit-*` headers (tokens rounded to 1000s; on a
    429 none left until `reset_in` seconds from now). `enforced` limits (`requests`,
    `input_tokens`, `output_tokens`: a rate window's, or the advertised ones) replace the
    generous made-up ones; `tokens` reports the most restrictive of the input and output
    limits, as Anthropic's does (input alone when output is not given)."""
    now = time.time()
    reset = rfc3339(now + reset_in)
    out = {"request-id": req_id}
    figures = {"requests": (4000, 1), "tokens": (2_000_000, 1000)}
    figures |= {"input-tokens": (2_000_000, 1000), "output-tokens": (400_000, 1000)}
    for name, (limit, step) in figures.items():
        remaining = 0 if limited else max(0, limit - step * requests_seen)
        out[f"anthropic-ratelimit-{name}-limit"] = str(limit)
        out[f"anthropic-ratelimit-{name}-remaining"] = str(remaining)
        out[f"anthropic-ratelimit-{name}-reset"] = reset
    given = dict(enforced or {})
    tokens = [given[k] for k in ("input_tokens", "output_tokens") if k in given]
    if tokens:
        given["tokens"] = min(tokens, key=lambda t: t.remaining)
    for kind, real in given.items():
        name = kind.replace("_", "-")
        out[f"anthropic-ratelimit-{name}-limit"] = str(real.limit)
        out[f"anthropic-ratelimit-{name}-remaining"] = str(real.remaining)
        out[f"anthropic-ratelimit-{name}-reset"] = rfc3339(real.reset_at)
    return out


def rfc3339(when: float) -> str:
    """An RFC 3339 UTC time to the millisecond: `2026-12-03T12:00:05.250Z`."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _usage(reply: Reply, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": reply.usage.input,
        "cache_creation_input_tokens": reply.usage.cache_write,
        "cache_read_input_tokens": reply.usage.cache_read,
        "output_tokens": output_tokens,
    }


def _blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.turn.text:
        blocks.append({"type": "text", "text": reply.turn.text})
    for i, call in enumerate(reply.turn.tool_calls):
        call_id = tool_use_id(reply.turn_index, i)
        blocks.append({"type": "tool_use", "id": call_id, "name": call.name, "input": call.input})
    return blocks


def _envelope(reply: Reply, msg_id: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content,
        "stop_reason": None,
        "stop_sequence": None,
        "stop_details": None,
        "usage": _usage(reply, 1),
    }


def message(reply: Reply) -> dict[str, Any]:
    """The non-streaming response body."""
    body = _envelope(reply, "msg_" + secrets.token_hex(12), _blocks(reply))
    body["stop_reason"] = reply.turn.natural_stop_reason
    body["usage"] = _usage(reply, reply.usage.output)
    return body


def stream(reply: Reply) -> SseStream:
    """The SSE events, in the real order, with a `ping` after the start and one mid-block."""
    rng = reply.rng()
    out = SseStream()
    msg_id = "msg_" + secrets.token_hex(12)
    out.event("message_start", {"type": "message_start", "message": _envelope(reply, msg_id, [])})
    out.event("ping", {"type": "ping"})
    out.mark("before_blocks")
    pinged = False
    for index, block in enumerate(_blocks(reply)):
        start: dict[str, Any]
        if block["type"] == "text":
            start, kind, key = {"type": "text", "text": ""}, "text_delta", "text"
            pieces = split(block["text"], rng, 1, 12)
        else:
            start = {**block, "input": {}}
            kind, key = "input_json_delta", "partial_json"
            pieces = ["", *split(to_json(block["input"]), rng, 1, 9)]
        out.event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
        for n, piece in enumerate(pieces):
            delta = {"type": kind, key: piece}
            out.event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
            if not pinged:
                out.event("ping", {"type": "ping"})
                pinged = True
            if n == max(0, len(pieces) // 2 - 1) and kind == "text_delta":
                out.mark("mid_text")
            if n == 1 and kind == "input_json_delta":
                out.mark("mid_tool")
        out.event("content_block_stop", {"type": "content_block_stop", "index": index})
    end = {"stop_reason": reply.turn.natural_stop_reason, "stop_sequence": None}
    usage = _usage(reply, reply.usage.output)
    out.event("message_delta", {"type": "message_delta", "delta": end, "usage": usage})
    out.event("message_stop", {"type": "message_stop"})
    return out
