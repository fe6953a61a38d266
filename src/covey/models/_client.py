"""covey's own HTTP client for the two provider APIs: one streaming POST (over `_http11`, or
`httpx2` when a proxy is set: `_proxied`), its server-sent events, and an error response read
whole. The adapters (`models/anthropic.py`,
`models/openai.py`) build the body and read the events; nothing here knows either format
beyond the error body's shape.

The official SDKs stay out of the process (importing `anthropic` costs ~2 s and 80 MiB); they
are the reference this client is held to in `tests/test_models_contract.py`, which sends the
same conversations through both against the fake server.

    http = await loop_http(pool)  # one of this event loop's clients (`covey.models._pool`)
    async with open_stream(http, url, body, headers) as response:
        if response.is_error:
            message, kind = await error_of(response, "anthropic")
        async for event in sse_events(response):
            ...
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import SplitResult

from covey import __version__
from covey.models._http11 import HTTP11Client

__all__ = [
    "ANTHROPIC_VERSION",
    "Fields",
    "ServerEvent",
    "StreamResponse",
    "anthropic_error",
    "error_of",
    "json_headers",
    "open_stream",
    "openai_error",
    "sse_events",
    "type_name",
    "wrap",
]

ANTHROPIC_VERSION = "2026-10-21"
"""The `anthropic-version` header, as the SDK the contract tests hold covey to sends it."""


def json_headers(credential: str) -> dict[str, str]:
    """What every request carries: the bearer credential and the JSON content types."""
    return {
        "authorization": f"Bearer {credential}",
        "accept": "application/json",
        "content-type": "application/json",
        "user-agent": f"covey/{__version__}",
    }


@contextlib.asynccontextmanager
async def open_stream(
    http: Any, url: SplitResult, body: bytes, headers: Mapping[str, str]
) -> AsyncIterator[StreamResponse]:
    """POST `body` (JSON) and yield the response as soon as its headers are in, whatever
    its status; it is closed on the way out. `http`: the loop's `HTTP11Client` (see
    `_pool.loop_http`), or an `httpx2.AsyncClient` (proxies, tests); failures are
    `_http11.HTTPFailure`s either way."""
    if isinstance(http, HTTP11Client):
        async with http.post(url, body, headers) as response:
            yield response
        return
    from covey.models._proxied import open_httpx_stream

    async with open_httpx_stream(http, url, body, headers) as proxied:
        yield proxied


class StreamResponse(Protocol):
    """What the adapters read of a response (`_http11.Response`, `_proxied.HttpxResponse`)."""

    status_code: int
    headers: Mapping[str, str]

    @property
    def is_error(self) -> bool: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...

    @property
    def text(self) -> str: ...


async def error_of(response: StreamResponse, provider: str) -> tuple[str, str | None]:
    """The message and kind (error type or code) of an error response, read whole, worded
    as the provider's SDK words it (the contract tests hold covey to that)."""
    await response.aread()
    status = response.status_code
    text = response.text.strip()
    try:
        body: object = json.loads(text)
    except ValueError:
        if provider == "openai":
            return f"Error code: {status}", None
        return text or f"Error code: {status}", None
    if provider == "openai":
        return openai_error(body.get("error", body) if isinstance(body, dict) else body, status)
    return anthropic_error(body, f"Error code: {status} - {body}")


def anthropic_error(body: object, fallback: str) -> tuple[str, str | None]:
    """(message, kind) of Anthropic's `{"type": "error", "error": {"type", "message"}}`:
    `fallback` when the body has no message."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return fallback, None
    message = error.get("message")
    return (str(message) if message else fallback), _str_or_none(error.get("type"))


def openai_error(error: object, status: int | None = None) -> tuple[str, str | None]:
    """(message, kind) of OpenAI's error object `{"message", "type", "code"}` (its code,
    when set, names it best), from an error response (`status`) or a stream."""
    fallback = f"Error code: {status}" if status else STREAM_ERROR
    if not isinstance(error, dict):
        return fallback, None
    message = error.get("message")
    if not isinstance(message, str):
        message = fallback
    code = error.get("code")
    kind = (str(code) if code is not None else None) or _str_or_none(error.get("type"))
    return message, kind


STREAM_ERROR = "An error occurred during streaming"
"""The OpenAI SDK's words for an error object in a stream that carries no message."""


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ServerEvent:
    """One server-sent event: its `event:` name (None when absent) and its data lines."""

    event: str | None
    data: str

    def json(self) -> Any:
        """The data as JSON; ValueError when it is not (a malformed stream)."""
        return json.loads(self.data)


async def sse_events(response: StreamResponse) -> AsyncIterator[ServerEvent]:
    """The events of an SSE body (https://html.spec.whatwg.org/#event-stream-interpretation):
    lines end in CR, LF or CRLF; a blank line dispatches; `:` lines are comments; `id` and
    `retry` are not used. Lines are decoded as UTF-8 strictly (a UnicodeDecodeError, a
    ValueError, means a malformed stream); an event cut off before its blank line is not
    dispatched."""
    pending = b""
    name: str | None = None
    data: list[str] = []
    async for chunk in response.aiter_bytes():
        pending += chunk
        *lines, pending = _split_lines(pending)
        for raw in lines:
            line = raw.decode("utf-8")
            if not line:
                if name is not None or data:
                    yield ServerEvent(name, "\n".join(data))
                name, data = None, []
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


def _split_lines(buffer: bytes) -> list[bytes]:
    """Complete lines, then the unfinished rest (a trailing CR waits: LF may follow)."""
    if buffer.endswith(b"\r"):
        *lines, rest = _split_lines(buffer[:-1])
        return [*lines, rest + b"\r"]
    parts = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return parts


class Fields:
    """Attribute access to a decoded JSON object, as the SDKs' unvalidated models read:
    `event.message.usage` is a `Fields`, a list of objects a list of `Fields`, a missing key
    None. A value of the wrong kind fails where it is used (an AttributeError or TypeError
    that the adapters report as a malformed stream)."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        value = self._data.get(name)  # (`wrap`, inlined: every event field is read this way)
        if type(value) is dict:
            return Fields(value)
        if type(value) is list:
            return [wrap(item) for item in value]
        return value

    def __repr__(self) -> str:
        return f"Fields({self._data!r})"


def type_name(value: object) -> str:
    """The Python type a decoded JSON value had (`dict` for a `Fields`), for messages."""
    return "dict" if isinstance(value, Fields) else type(value).__name__


def wrap(value: Any) -> Any:
    """`value` with its objects as `Fields` (lists element by element)."""
    if isinstance(value, dict):
        return Fields(value)
    if isinstance(value, list):
        return [wrap(item) for item in value]
    return value
