"""The provider adapters as they were through the official SDKs: the reference covey's own
client (`covey.models._client`) is held to in `test_models_contract.py`.

Each reference model is covey's adapter with its transport swapped: the same body (from the
adapter's `build_request`), the same reply assembly (`AnthropicReply` / `OpenAIReply`, which
read the SDKs' event objects and covey's `Fields` alike) and the same error translation
(`covey.models._http`), but
the request, the SSE decoding, the JSON parsing and the error objects are the SDK's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anthropic
import httpx2
import openai

from covey.errors import ContextOverflowError, ModelError
from covey.models import anthropic as covey_anthropic
from covey.models import openai as covey_openai
from covey.models._anthropic_reply import AnthropicReply
from covey.models._http import (
    agent_headers,
    connection_failure,
    malformed_failure,
    one_line,
    ssl_context,
    status_failure,
    stream_error_failure,
    unless_tool_began,
)
from covey.models._openai_reply import OpenAIReply
from covey.models._proxied import failure as httpx_failure
from covey.models.base import ModelRequest, ModelResponse, TextSink
from covey.models.retry import Retryable, retrying


class SdkAnthropicModel(covey_anthropic.AnthropicModel):
    """`AnthropicModel` through `anthropic.AsyncAnthropic` (retries off: covey retries)."""

    def sdk_client(self, http: httpx2.AsyncClient) -> anthropic.AsyncAnthropic:
        credential = (
            {"api_key": self._credential}
            if self._endpoint.key_var == "ANTHROPIC_API_KEY"
            else {"auth_token": self._credential}
        )
        return anthropic.AsyncAnthropic(
            **credential, base_url=self._endpoint.base_url, max_retries=0, http_client=http
        )

    async def complete(
        self, request: ModelRequest, on_text: TextSink | None = None
    ) -> ModelResponse:
        max_tokens = min(request.max_tokens, self._max_tokens)
        body = covey_anthropic.build_request(request, self._model_id, max_tokens)
        headers = agent_headers(self._endpoint, request.agent_name)
        async with anthropic.DefaultAsyncHttpxClient(verify=ssl_context()) as http:
            client = self.sdk_client(http)
            return await retrying(
                "anthropic",
                lambda: self.sdk_attempt(client, body, headers, on_text),
                self._retry,
                self._on_retry,
            )

    async def sdk_attempt(
        self,
        client: anthropic.AsyncAnthropic,
        body: dict[str, Any],
        headers: dict[str, str],
        on_text: TextSink | None,
    ) -> ModelResponse:
        reply = AnthropicReply(on_text)
        endpoint = self._endpoint
        try:
            stream = await client.messages.create(**body, stream=True, extra_headers=headers)
            async with stream:
                async for event in stream:
                    reply.feed(event)
        except anthropic.APIStatusError as e:
            message = e.api_message or e.message
            if e.status_code < 400:  # an `error` event inside a stream that began with 200
                failure = stream_error_failure(endpoint, e.type, message)
                raise unless_tool_began(endpoint, failure, reply.tool_began) from e
            raise status_failure(
                endpoint, e.status_code, message, kind=e.type, headers=e.response.headers
            ) from e
        except (anthropic.APIConnectionError, httpx2.HTTPError) as e:
            raise unless_tool_began(endpoint, dropped_by(e), reply.tool_began) from e
        except anthropic.APIError as e:
            raise ModelError(f"anthropic: {one_line(e.message)}") from e
        except ValueError as e:
            raise unless_tool_began(endpoint, malformed_failure(e), reply.tool_began) from e
        if not reply.done:
            failure = Retryable("the stream ended before message_stop")
            raise unless_tool_began(endpoint, failure, reply.tool_began)
        if reply.stop_reason == "model_context_window_exceeded":
            raise ContextOverflowError(
                "anthropic: the conversation filled the model's context window "
                "(stop_reason model_context_window_exceeded)"
            )
        return reply.response(self._model_id)


class SdkOpenAIModel(covey_openai.OpenAIModel):
    """`OpenAIModel` through `openai.AsyncOpenAI` (retries off: covey retries)."""

    def sdk_client(self, http: httpx2.AsyncClient) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self._api_key, base_url=self._endpoint.base_url, max_retries=0, http_client=http
        )

    async def complete(
        self, request: ModelRequest, on_text: TextSink | None = None
    ) -> ModelResponse:
        body = covey_openai.build_request(request, self._model_id)
        body[self._tokens_param] = min(request.max_tokens, self._max_tokens)
        headers = agent_headers(self._endpoint, request.agent_name)
        async with openai.DefaultAsyncHttpxClient(verify=ssl_context()) as http:
            client = self.sdk_client(http)
            return await retrying(
                "openai",
                lambda: self.sdk_attempt(client, body, headers, on_text),
                self._retry,
                self._on_retry,
            )

    async def sdk_attempt(
        self,
        client: openai.AsyncOpenAI,
        body: dict[str, Any],
        headers: dict[str, str],
        on_text: TextSink | None,
    ) -> ModelResponse:
        reply = OpenAIReply(on_text)
        endpoint = self._endpoint
        try:
            stream = await client.chat.completions.create(
                **body,
                stream=True,
                stream_options={"include_usage": True},
                extra_headers=headers,
            )
            async with stream:
                async for chunk in stream:
                    reply.feed(chunk)
        except openai.APIStatusError as e:
            message, kind = _error_text(e)
            raise status_failure(
                endpoint, e.status_code, message, kind=kind, headers=e.response.headers
            ) from e
        except (openai.APIConnectionError, httpx2.HTTPError) as e:
            if reply.finish_reason is None:
                dropped = dropped_by(e)
                raise unless_tool_began(endpoint, dropped, reply.tool_began) from e
        except openai.APIError as e:  # an error object inside a stream that began with 200
            message, kind = _error_text(e)
            failure = stream_error_failure(endpoint, kind, message)
            raise unless_tool_began(endpoint, failure, reply.tool_began) from e
        except ValueError as e:
            raise unless_tool_began(endpoint, malformed_failure(e), reply.tool_began) from e
        if reply.finish_reason is None:
            failure = Retryable("the stream ended without a finish_reason")
            raise unless_tool_began(endpoint, failure, reply.tool_began)
        return reply.response(self._model_id)


def _error_text(error: openai.APIError) -> tuple[str, str | None]:
    body = error.body
    message = error.message
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        message = body["message"]
    return message, error.code or error.type


def dropped_by(exc: Exception) -> Retryable:
    """covey's verdict on an SDK's connection failure (its cause is httpx's exception)."""
    cause = exc if isinstance(exc, httpx2.HTTPError) else exc.__cause__
    if not isinstance(cause, httpx2.HTTPError):
        return Retryable(f"connection error ({one_line(exc, 120)})")
    return connection_failure(httpx_failure(cause))
