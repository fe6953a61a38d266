"""`openai:<id>`: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp
server, Ollama, OpenRouter…), streaming, through covey's own client (`covey.models._client`;
the official SDK is the reference in the contract tests, never imported here).

covey's messages follow the Anthropic shape; this module translates at the boundary:

    system prompt                     {"role": "system"}
    assistant text + tool_use blocks  one assistant message: content (or null) + tool_calls
    user tool_result blocks           one {"role": "tool"} message per result ("Error: " first
                                      when is_error), then the user's text, if any
    adjacent messages of one role     joined first (`covey.models.wire`)
    tool arguments                    a JSON string; one that is not a JSON object becomes
                                      {INVALID_ARGUMENTS_KEY: raw} and goes back out verbatim

covey retries (`covey.models.retry`), never after a tool call began streaming. Errors are
translated into `covey.errors` here and in `_http`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

from covey.errors import CredentialsError
from covey.messages import INVALID_ARGUMENTS_KEY, Message
from covey.models._client import (
    error_of,
    json_headers,
    open_stream,
    openai_error,
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
from covey.models._openai_reply import OpenAIReply, parse_arguments
from covey.models._pool import loop_http, pool_number
from covey.models.base import ModelRequest, ModelResponse, TextSink
from covey.models.ratelimit import RateLimiter, RequestGate
from covey.models.registry import MISSING_KEY
from covey.models.retry import Retryable, RetryCallback, RetryPolicy, retrying
from covey.models.wire import wire_messages

__all__ = [
    "OpenAIModel",
    "arguments_json",
    "build_request",
    "encode_request",
    "parse_arguments",
    "request_fields",
    "to_openai_messages",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "not-needed"
"""Sent when OPENAI_BASE_URL is set without a key: local servers accept anything (the SDK
sends something too)."""

_DEFAULT_RETRY = RetryPolicy()


class OpenAIModel:
    """A model behind an OpenAI-compatible `/chat/completions` endpoint.

    `on_text` receives text deltas as they stream; if a stream drops and is retried, the
    text of the new attempt is streamed again from its start.
    """

    def __init__(
        self,
        model_id: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        retry: RetryPolicy = _DEFAULT_RETRY,
        on_retry: RetryCallback | None = None,
        limiter: RateLimiter | None = None,
        max_tokens: int = 16_000,
        context_window: int = 128_000,
    ) -> None:
        if not api_key and not base_url:
            raise CredentialsError(MISSING_KEY["openai"])
        self._model_id = model_id
        self._api_key = api_key or PLACEHOLDER_KEY
        self._endpoint = Endpoint(
            provider="openai",
            base_url=(base_url or DEFAULT_BASE_URL).rstrip("/"),
            key_var="OPENAI_API_KEY",
            key_set=bool(api_key),
        )
        # OpenAI's own API wants `max_completion_tokens` (reasoning models refuse
        # `max_tokens`); compatible servers do not all know the newer name.
        self._tokens_param = "max_completion_tokens" if not base_url else "max_tokens"
        self._retry = retry
        self._on_retry = on_retry
        self._gate = RequestGate(limiter, "openai", self._endpoint.base_url, api_key)
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
    ) -> OpenAIModel:
        """Credentials from `env` (the process environment merged with settings `env`):
        `OPENAI_API_KEY` and/or `OPENAI_BASE_URL` (a local server needs no key)."""
        api_key = env.get("OPENAI_API_KEY") or None
        base_url = env.get("OPENAI_BASE_URL") or None
        if not api_key and not base_url:
            raise CredentialsError(MISSING_KEY["openai"])
        return cls(
            model_id,
            api_key=api_key,
            base_url=base_url,
            retry=retry,
            on_retry=on_retry,
            limiter=limiter,
        )

    @property
    def name(self) -> str:
        return f"openai:{self._model_id}"

    @property
    def context_window(self) -> int:
        return self._context_window

    async def complete(
        self, request: ModelRequest, on_text: TextSink | None = None
    ) -> ModelResponse:
        max_tokens = min(request.max_tokens, self._max_tokens)
        fields = request_fields(
            request, self._model_id, {self._tokens_param: max_tokens}, self._encoded
        )
        body = encode_request(request, fields, self._encoded)
        headers = json_headers(self._api_key) | agent_headers(self._endpoint, request.agent_name)
        http = await loop_http(self._pool)
        return await retrying(
            "openai",
            lambda: self._attempt(http, body, headers, on_text),
            self._retry,
            self._on_retry,
        )

    @functools.cached_property
    def _url(self) -> SplitResult:
        """Parsed once, not on every request."""
        return urlsplit(f"{self._endpoint.base_url}/chat/completions")

    async def _attempt(
        self,
        http: Any,
        body: bytes,
        headers: dict[str, str],
        on_text: TextSink | None,
    ) -> ModelResponse:
        reply = OpenAIReply(on_text)
        endpoint = self._endpoint
        ticket = await self._gate.before_request(body)  # the shared rate limiter; may wait
        status, heard, done = None, None, False
        try:
            async with open_stream(http, self._url, body, headers) as response:
                status, heard = response.status_code, response.headers
                if response.is_error:
                    message, kind = await error_of(response, "openai")
                    raise status_failure(
                        endpoint, response.status_code, message, kind=kind, headers=response.headers
                    )
                async for event in sse_events(response):
                    # After `[DONE]` the body is read to its end, unparsed (as the SDK does),
                    # so that the connection goes back to the pool instead of being cut.
                    done = done or event.data.startswith("[DONE]")
                    if done:
                        continue
                    data = event.json()
                    if isinstance(data, dict) and data.get("error"):
                        message, kind = openai_error(data["error"])
                        failure = stream_error_failure(endpoint, kind, message)
                        raise unless_tool_began(endpoint, failure, reply.tool_began)
                    reply.feed(wrap(data))
        except HTTPFailure as e:
            if reply.finish_reason is None:
                dropped = connection_failure(e)
                raise unless_tool_began(endpoint, dropped, reply.tool_began) from e
            # Cut after the finish chunk: the answer is whole, only usage may be missing.
        except ValueError as e:  # a `data:` line that is not JSON, a chunk that does not fit
            if not done:  # (after `[DONE]`, a line that is not UTF-8 changes nothing)
                raise unless_tool_began(endpoint, malformed_failure(e), reply.tool_began) from e
        finally:
            whole = reply.finish_reason is not None
            self._gate.after_response(ticket, status, heard, reply.usage if whole else None)
        if reply.finish_reason is None:
            failure = Retryable("the stream ended without a finish_reason")
            raise unless_tool_began(endpoint, failure, reply.tool_began)
        return reply.response(self._model_id)


def build_request(request: ModelRequest, model_id: str) -> dict[str, Any]:
    """The chat-completions body, without `stream` and the max-tokens parameter."""
    messages = to_openai_messages(request.system, request.messages)
    return {"messages": messages} | _settings(request, model_id)


def encode_request(
    request: ModelRequest, fields: dict[str, Any] | bytes, encoded: EncodedMessages
) -> bytes:
    """The body as the JSON sent: the messages of `build_request`, then `fields` (the model,
    tools, stream…); each message's JSON comes from `encoded` when an earlier request
    encoded it."""
    system = [dumps(_system(request.system))] if request.system else []
    return request_json(fields, system + encoded.fragments(wire_messages(request.messages)))


def request_fields(
    request: ModelRequest, model_id: str, limit: dict[str, int], encoded: EncodedMessages
) -> bytes:
    """The streamed body's fields beside the messages, as JSON (`limit`: the output cap under
    the parameter name this endpoint takes); kept by `encoded` while the tools stay the same."""
    return encoded.fields(
        (model_id, *limit.items(), request.allow_tool_calls),
        request.tools,
        lambda: (
            _settings(request, model_id)
            | {"stream": True, **limit, "stream_options": {"include_usage": True}}
        ),
    )


def _settings(request: ModelRequest, model_id: str) -> dict[str, Any]:
    """The body's fields beside the messages: the model, the tools."""
    body: dict[str, Any] = {"model": model_id}
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.input_schema,
                },
            }
            for t in request.tools
        ]
        if not request.allow_tool_calls:
            body["tool_choice"] = "none"
    return body


def to_openai_messages(system: str, messages: list[Message]) -> list[dict[str, Any]]:
    out = [_system(system)] if system else []
    for message in wire_messages(messages):
        out.extend(_entries(message))
    return out


def _system(text: str) -> dict[str, Any]:
    return {"role": "system", "content": text}


def _entries(message: Message) -> list[dict[str, Any]]:
    """The chat-completions messages one (wire) message becomes."""
    if message.role == "assistant":
        calls = [
            {
                "id": use.id,
                "type": "function",
                "function": {"name": use.name, "arguments": arguments_json(use.input)},
            }
            for use in message.tool_uses
        ]
        entry: dict[str, Any] = {"role": "assistant", "content": message.text or None}
        if calls:
            entry["tool_calls"] = calls
        elif entry["content"] is None:
            entry["content"] = ""
        return [entry]
    out: list[dict[str, Any]] = []
    results = message.tool_results
    for result in results:
        content = f"Error: {result.content}" if result.is_error else result.content
        out.append({"role": "tool", "tool_call_id": result.tool_use_id, "content": content})
    if message.text or not results:
        out.append({"role": "user", "content": message.text})
    return out


def arguments_json(tool_input: dict[str, Any]) -> str:
    """A tool_use input as OpenAI `arguments`; arguments that never parsed go back verbatim."""
    raw = tool_input.get(INVALID_ARGUMENTS_KEY)
    if len(tool_input) == 1 and isinstance(raw, str):
        return raw
    return json.dumps(tool_input, ensure_ascii=False)
