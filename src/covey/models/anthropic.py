"""`anthropic:<id>`: the Anthropic Messages API, streaming, through covey's own client
(`covey.models._client`; the official SDK is the reference in the contract tests, never
imported here).

covey retries (`covey.models.retry`), so that a stream that drops after a tool call began is
*not* repeated. Errors are translated into `covey.errors` here and in `_http`, nowhere else.

The conversation goes out as `covey.models.wire.wire_messages` shapes it (adjacent messages
of one role joined, tool results first and once).

Prompt caching: breakpoints on the system prompt, the last tool definition and the last
content block of the last message (3 of the API's 4), so each turn reads the previous
turn's prefix from the cache.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

from covey.errors import ContextOverflowError, CredentialsError
from covey.messages import (
    Message,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from covey.models._anthropic_reply import AnthropicReply
from covey.models._client import (
    ANTHROPIC_VERSION,
    ServerEvent,
    anthropic_error,
    error_of,
    json_headers,
    open_stream,
    sse_events,
    wrap,
)
from covey.models._encoded import EncodedMessages, dumps, request_json
from covey.models._http import (
    Endpoint,
    agent_headers,
    connection_failure,
    malformed_failure,
    status_failure,
    stream_error_failure,
    unless_tool_began,
)
from covey.models._http11 import HTTPFailure
from covey.models._pool import loop_http, pool_number
from covey.models.base import ModelRequest, ModelResponse, TextSink
from covey.models.ratelimit import RateLimiter, RequestGate
from covey.models.registry import MISSING_KEY
from covey.models.retry import Retryable, RetryCallback, RetryPolicy, retrying
from covey.models.wire import wire_messages

__all__ = ["AnthropicModel", "build_request", "encode_request"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
_EPHEMERAL = {"type": "ephemeral"}
_DEFAULT_RETRY = RetryPolicy()


class AnthropicModel:
    """A Claude model behind the Messages API (or any server speaking it).

    `on_text` receives text deltas as they stream; if a stream drops and is retried, the
    text of the new attempt is streamed again from its start.
    """

    def __init__(
        self,
        model_id: str,
        *,
        api_key: str | None = None,
        auth_token: str | None = None,
        base_url: str | None = None,
        retry: RetryPolicy = _DEFAULT_RETRY,
        on_retry: RetryCallback | None = None,
        limiter: RateLimiter | None = None,
        max_tokens: int = 16_000,
        context_window: int = 200_000,
    ) -> None:
        if not api_key and not auth_token:
            raise CredentialsError(MISSING_KEY["anthropic"])
        self._model_id = model_id
        # Like the SDK with both variables set, the key wins; both go out as a bearer token.
        self._credential = api_key or auth_token or ""
        self._endpoint = Endpoint(
            provider="anthropic",
            base_url=(base_url or DEFAULT_BASE_URL).rstrip("/"),
            key_var="ANTHROPIC_API_KEY" if api_key else "ANTHROPIC_AUTH_TOKEN",
        )
        self._retry = retry
        self._on_retry = on_retry
        credential = api_key or auth_token
        self._gate = RequestGate(limiter, "anthropic", self._endpoint.base_url, credential)
        self._max_tokens = max_tokens
        self._context_window = context_window
        self._encoded = EncodedMessages(_entries)
        self._pool = pool_number()

    @classmethod
    def from_env(
        cls,
        model_id: str,
        env: Mapping[str, str],
        *,
        retry: RetryPolicy = _DEFAULT_RETRY,
        on_retry: RetryCallback | None = None,
        limiter: RateLimiter | None = None,
    ) -> AnthropicModel:
        """Credentials from `env` (the process environment merged with settings `env`):
        `ANTHROPIC_API_KEY` or `ANTHROPIC_AUTH_TOKEN`, and optionally `ANTHROPIC_BASE_URL`."""
        api_key = env.get("ANTHROPIC_API_KEY") or None
        auth_token = env.get("ANTHROPIC_AUTH_TOKEN") or None
        if not api_key and not auth_token:
            raise CredentialsError(MISSING_KEY["anthropic"])
        return cls(
            model_id,
            api_key=api_key,
            auth_token=None if api_key else auth_token,
            base_url=env.get("ANTHROPIC_BASE_URL") or None,
            retry=retry,
            on_retry=on_retry,
            limiter=limiter,
        )

    @property
    def name(self) -> str:
        return f"anthropic:{self._model_id}"

    @property
    def context_window(self) -> int:
        return self._context_window

    async def complete(
        self, request: ModelRequest, on_text: TextSink | None = None
    ) -> ModelResponse:
        max_tokens = min(request.max_tokens, self._max_tokens)
        body = encode_request(request, self._model_id, max_tokens, self._encoded)
        headers = json_headers(self._credential)
        headers["anthropic-version"] = ANTHROPIC_VERSION
        headers |= agent_headers(self._endpoint, request.agent_name)
        http = await loop_http(self._pool)
        return await retrying(
            "anthropic",
            lambda: self._attempt(http, body, headers, on_text),
            self._retry,
            self._on_retry,
        )

    @functools.cached_property
    def _url(self) -> SplitResult:
        """Parsed once, not on every request."""
        return urlsplit(f"{self._endpoint.base_url}/v1/messages")

    async def _attempt(
        self,
        http: Any,
        body: bytes,
        headers: dict[str, str],
        on_text: TextSink | None,
    ) -> ModelResponse:
        reply = AnthropicReply(on_text)
        endpoint = self._endpoint
        ticket = await self._gate.before_request(body)  # the shared rate limiter; may wait
        status, heard = None, None
        try:
            async with open_stream(http, self._url, body, headers) as response:
                status, heard = response.status_code, response.headers
                if response.is_error:
                    message, kind = await error_of(response, "anthropic")
                    raise status_failure(
                        endpoint, response.status_code, message, kind=kind, headers=response.headers
                    )
                async for event in sse_events(response):
                    if event.event == "error":
                        message, kind = _stream_error(event)
                        failure = stream_error_failure(endpoint, kind, message)
                        raise unless_tool_began(endpoint, failure, reply.tool_began)
                    # As the SDK: events without a name, pings and empty data are skipped.
                    if event.event not in (None, "ping") and event.data:
                        reply.feed(wrap(event.json()))
        except HTTPFailure as e:
            raise unless_tool_began(endpoint, connection_failure(e), reply.tool_began) from e
        except ValueError as e:  # a `data:` line that is not JSON, an event that does not fit
            raise unless_tool_began(endpoint, malformed_failure(e), reply.tool_began) from e
        finally:
            usage = reply.response(self._model_id).usage if reply.done else None
            self._gate.after_response(ticket, status, heard, usage)
        if not reply.done:
            failure = Retryable("the stream ended before message_stop")
            raise unless_tool_began(endpoint, failure, reply.tool_began)
        if reply.stop_reason == "model_context_window_exceeded":
            raise ContextOverflowError(
                "anthropic: the conversation filled the model's context window "
                "(stop_reason model_context_window_exceeded)"
            )
        return reply.response(self._model_id)


def _stream_error(event: ServerEvent) -> tuple[str, str | None]:
    """(message, kind) of an `error` event inside a stream that began with 200."""
    try:
        body = event.json()
    except ValueError:
        return anthropic_error(event.data, event.data or "Error code: 200")
    return anthropic_error(body, f"{body}" or "Error code: 200")


def build_request(request: ModelRequest, model_id: str, max_tokens: int) -> dict[str, Any]:
    """The Messages API body (without `stream`), with the cache breakpoints set."""
    body: dict[str, Any] = {
        "model": model_id,
        "max_tokens": max_tokens,
        "messages": [_entry(m) for m in wire_messages(request.messages)],
    }
    if body["messages"]:
        body["messages"][-1]["content"][-1]["cache_control"] = _EPHEMERAL
    return body | _settings(request)


def encode_request(
    request: ModelRequest, model_id: str, max_tokens: int, encoded: EncodedMessages
) -> bytes:
    """`build_request` with `"stream": true`, as the JSON sent: each past message's JSON
    comes from `encoded` (what earlier requests encoded), the last one, which carries the
    cache breakpoint, is encoded anew."""
    messages = wire_messages(request.messages)
    fragments = encoded.fragments(messages[:-1])
    if messages:
        last = _entry(messages[-1])
        last["content"][-1]["cache_control"] = _EPHEMERAL
        fragments.append(dumps(last))
    fields = encoded.fields(
        (model_id, max_tokens, request.allow_tool_calls),
        (request.system, *request.tools),
        lambda: {"model": model_id, "max_tokens": max_tokens, **_settings(request), "stream": True},
    )
    return request_json(fields, fragments)


def _settings(request: ModelRequest) -> dict[str, Any]:
    """The body's fields beside the model and the messages: system prompt, tools."""
    body: dict[str, Any] = {}
    if request.system:
        body["system"] = [{"type": "text", "text": request.system, "cache_control": _EPHEMERAL}]
    if request.tools:
        tools = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in request.tools
        ]
        tools[-1]["cache_control"] = _EPHEMERAL
        body["tools"] = tools
        if not request.allow_tool_calls:
            body["tool_choice"] = {"type": "none"}
    return body


def _entry(message: Message) -> dict[str, Any]:
    return {"role": message.role, "content": [_block(b) for b in message.content]}


def _entries(message: Message) -> list[dict[str, Any]]:
    return [_entry(message)]


def _block(block: TextBlock | ToolUseBlock | ToolResultBlock) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolUseBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    result: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": block.tool_use_id,
        "content": block.content,
    }
    if block.is_error:
        result["is_error"] = True
    return result
