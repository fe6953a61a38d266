"""The OpenAI chat completions wire format (`POST /v1/chat/completions`) for the fake server."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from covey.models.script import tool_use_id
from covey.testing._window import Limit
from covey.testing._wire import Reply, SseStream, split, to_json

__all__ = ["call_id", "duration", "error_body", "headers", "message", "request_id", "stream"]

_FINISH = {"tool_use": "tool_calls", "max_tokens": "length", "refusal": "content_filter"}
_ERROR_TYPES = {401: "invalid_request_error", 403: "permission_error", 429: "requests"}
_ERROR_CODES = {401: "invalid_api_key", 404: "not_found", 429: "rate_limit_exceeded"}


def request_id() -> str:
    return "req_" + secrets.token_hex(16)


def call_id(turn_index: int, call_index: int) -> str:
    """`call_` + the same suffix as the Anthropic tool-use id."""
    return "call_" + tool_use_id(turn_index, call_index).removeprefix("toolu_")


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    error = {"message": message, "type": kind, "param": None, "code": _ERROR_CODES.get(status)}
    return {"error": error}


def headers(
    req_id: str,
    requests_seen: int,
    *,
    limited: bool,
    reset_in: float = 60.0,
    enforced: Mapping[str, Limit] | None = None,
) -> dict[str, str]:
    """`x-request-id` and the `x-ratelimit-*` headers (resets as Go-style durations; on a
    429 none left for `reset_in` seconds). `enforced` limits (`requests`, `input_tokens`,
    `output_tokens`: a rate window's, or the advertised ones) replace the made-up ones;
    `tokens` is one limit for input and output together, as OpenAI counts them."""
    requests_left = 0 if limited else max(0, 10_000 - requests_seen)
    tokens_left = 0 if limited else max(0, 2_000_000 - 1000 * requests_seen)
    out = {
        "x-request-id": req_id,
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-limit-tokens": "2000000",
        "x-ratelimit-remaining-requests": str(requests_left),
        "x-ratelimit-remaining-tokens": str(tokens_left),
        "x-ratelimit-reset-requests": duration(reset_in) if limited else "6ms",
        "x-ratelimit-reset-tokens": duration(reset_in) if limited else "30ms",
    }
    now = time.time()
    given = dict(enforced or {})
    tokens = [given.pop(k) for k in ("input_tokens", "output_tokens") if k in given]
    if tokens:
        given["tokens"] = Limit(
            sum(t.limit for t in tokens),
            sum(t.remaining for t in tokens),
            max(t.reset_at for t in tokens),
        )
    for name, real in given.items():
        out[f"x-ratelimit-limit-{name}"] = str(real.limit)
        out[f"x-ratelimit-remaining-{name}"] = str(real.remaining)
        out[f"x-ratelimit-reset-{name}"] = duration(real.reset_at - now)
    return out


def duration(seconds: float) -> str:
    """A Go-style duration as OpenAI writes it: `20ms`, `1.5s`, `6m0s`."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


def _usage(reply: Reply) -> dict[str, Any]:
    u = reply.usage
    return {
        "prompt_tokens": u.total_input,
        "completion_tokens": u.output,
        "total_tokens": u.total_input + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cache_read},
    }


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": call_id(reply.turn_index, i),
            "type": "function",
            "function": {"name": call.name, "arguments": to_json(call.input)},
        }
        for i, call in enumerate(reply.turn.tool_calls)
    ]


def _finish_reason(reply: Reply) -> str:
    return _FINISH.get(reply.turn.natural_stop_reason, "stop")


def message(reply: Reply) -> dict[str, Any]:
    """The non-streaming response body."""
    msg: dict[str, Any] = {"role": "assistant", "content": reply.turn.text or None}
    msg["refusal"] = None
    if reply.turn.tool_calls:
        msg["tool_calls"] = _tool_calls(reply)
    choice = {"index": 0, "message": msg, "finish_reason": _finish_reason(reply), "logprobs": None}
    return {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model,
        "choices": [choice],
        "usage": _usage(reply),
        "system_fingerprint": None,
    }


def stream(reply: Reply, *, include_usage: bool) -> SseStream:
    """`data:` chunks: role, content pieces, tool-call pieces, finish, [usage], `[DONE]`."""
    rng = reply.rng()
    out = SseStream()
    head = {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": reply.model,
        "system_fingerprint": None,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        out.event(None, {**head, "choices": [choice], **({"usage": None} if include_usage else {})})

    chunk({"role": "assistant", "content": "", "refusal": None})
    out.mark("before_blocks")
    pieces = split(reply.turn.text, rng, 1, 12) if reply.turn.text else []
    for n, piece in enumerate(pieces):
        chunk({"content": piece})
        if n == max(0, len(pieces) // 2 - 1):
            out.mark("mid_text")
    for i, call in enumerate(_tool_calls(reply)):
        fn = call["function"]
        first = {"index": i, "id": call["id"], "type": "function"}
        chunk({"tool_calls": [{**first, "function": {"name": fn["name"], "arguments": ""}}]})
        for n, piece in enumerate(split(fn["arguments"], rng, 1, 9)):
            chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
            if n == 0:
                out.mark("mid_tool")
    chunk({}, _finish_reason(reply))
    if include_usage:
        out.event(None, {**head, "choices": [], "usage": _usage(reply)})
    out.event(None, "[DONE]")
    return out
