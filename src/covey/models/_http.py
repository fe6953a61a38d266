"""What the two provider adapters share: the TLS context, and the one translation of a failed
request into covey's errors (`covey.errors`) or a `Retryable` signal for the retry loop.

    HTTP status / stream failure        becomes
    401, 403                            CredentialsError naming the variable and the base URL
    400/413 "prompt is too long"…       ContextOverflowError
    408, 409, 429, ≥500 (529 too)       Retryable (with the server's retry-after)
    connection error, dropped stream    Retryable, unless a tool call had begun streaming:
                                        then ModelError (a tool must not run twice)
    malformed stream (a `data:` line    Retryable, as a dropped stream (same tool rule)
    that is not JSON, an event for a
    block that never started)
    anything else                       ModelError with the provider's message, one line
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from covey.errors import ContextOverflowError, CredentialsError, ModelError
from covey.models._http11 import ConnectionDropped, HTTPFailure, Timeout
from covey.models.retry import Retryable, parse_retry_after, should_retry_header

__all__ = [
    "AGENT_HEADER",
    "Endpoint",
    "MalformedStream",
    "agent_headers",
    "connection_failure",
    "malformed_failure",
    "one_line",
    "ssl_context",
    "status_failure",
    "stream_error_failure",
    "unless_tool_began",
]

_REASONS = {
    408: "request timeout",
    409: "conflict",
    429: "rate limited",
    500: "server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
    529: "overloaded",
}

_OVERFLOW_PHRASES = (
    "prompt is too long",
    "context window",
    "context length",
    "context_length_exceeded",
    "maximum context",
    "context size",
)

_FATAL_STREAM_ERRORS = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "billing_error",
        "not_found_error",
    }
)


@dataclass(frozen=True)
class Endpoint:
    """Who we are talking to, for error messages."""

    provider: str
    """`anthropic` or `openai`: the prefix of every message."""
    base_url: str
    key_var: str
    """The environment variable whose value was sent as the credential."""
    key_set: bool = True
    """False when no key was configured and a placeholder was sent (local servers)."""


AGENT_HEADER = "x-covey-agent"
"""Names the (sub)agent asking, so the fake server can answer from that agent's script."""


def agent_headers(endpoint: Endpoint, agent_name: str | None) -> dict[str, str]:
    """`{AGENT_HEADER: agent_name}` when the base URL is a loopback address (the fake
    server, a model server on this machine), else nothing: a real provider never learns
    covey's agent names."""
    if not agent_name or not is_loopback(endpoint.base_url):
        return {}
    return {AGENT_HEADER: agent_name}


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One TLS context per process: building one costs ~40 ms, a client using it ~0.2 ms."""
    import httpx2  # its default context: certifi's CAs, SSL_CERT_FILE / SSL_CERT_DIR

    return httpx2.create_ssl_context()


def one_line(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def is_context_overflow(status: int | None, message: str, kind: str | None = None) -> bool:
    if status == 413:
        return True
    if status not in (None, 200, 400):
        return False
    haystack = f"{kind or ''} {message}".lower()
    return any(phrase in haystack for phrase in _OVERFLOW_PHRASES)


def status_failure(
    endpoint: Endpoint,
    status: int,
    message: str,
    *,
    kind: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Exception:
    """The exception to raise for an HTTP error response. `kind` is the provider's error
    type or code (`overloaded_error`, `context_length_exceeded`)."""
    headers = headers or {}
    text = one_line(message)
    detail = f"{status} {text}".strip() if text else str(status)
    name = endpoint.provider
    if status in (401, 403):
        if not endpoint.key_set:
            return CredentialsError(
                f"{name}: {endpoint.base_url} refused the request ({detail}): "
                f'{endpoint.key_var} is not set; export it, or put it in the settings "env" block'
            )
        return CredentialsError(
            f"{name}: {endpoint.base_url} rejected the key in {endpoint.key_var} ({detail}); "
            "check it, or the base URL"
        )
    if is_context_overflow(status, text, kind):
        return ContextOverflowError(
            f"{name}: the conversation does not fit the model's context window ({detail})"
        )
    verdict = should_retry_header(headers)
    if verdict is None:
        verdict = status in (408, 409, 429) or status >= 500
    if verdict:
        words = _REASONS.get(status) or ("server error" if status >= 500 else kind or "error")
        return Retryable(f"{status} {words}", parse_retry_after(headers))
    return ModelError(f"{name}: {detail}")


def stream_error_failure(endpoint: Endpoint, kind: str | None, message: str) -> Exception:
    """An error the server sent inside a stream that had begun with HTTP 200."""
    text = one_line(message)
    if is_context_overflow(None, text, kind):
        return ContextOverflowError(
            f"{endpoint.provider}: the conversation does not fit the model's context window "
            f"({text})"
        )
    if kind in _FATAL_STREAM_ERRORS:
        return ModelError(f"{endpoint.provider}: {kind}: {text}")
    words = "overloaded" if kind == "overloaded_error" else (kind or "error")
    return Retryable(f"{words} in the stream" + (f": {text}" if text else ""))


def connection_failure(exc: HTTPFailure) -> Retryable:
    """A connection that failed, timed out or was cut: worth another try."""
    if isinstance(exc, Timeout):
        return Retryable("timed out")
    if isinstance(exc, ConnectionDropped):
        return Retryable("connection dropped")
    detail = one_line(exc, 120)
    return Retryable(f"connection error ({detail or type(exc).__name__})")


class MalformedStream(ValueError):
    """Raised while assembling a reply from an event that does not fit it: a delta for a
    content block that was never started, or of the wrong kind for its block."""


def malformed_failure(exc: ValueError) -> Retryable:
    """A stream that began with 200 but carried something other than the API's events (a
    ValueError for a `data:` line that is not JSON or not UTF-8): worth another try, like a
    dropped stream."""
    if isinstance(exc, MalformedStream):
        detail = str(exc)
    else:
        kind = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else "not JSON"
        detail = f"a data line is {kind}: {exc}"
    return Retryable(f"malformed stream ({one_line(detail, 160)})")


def unless_tool_began(endpoint: Endpoint, failure: Exception, tool_began: bool) -> Exception:
    """A retryable failure after a tool call began streaming is final: retrying could make
    the model ask for (and covey run) the tool a second time."""
    if tool_began and isinstance(failure, Retryable):
        return ModelError(
            f"{endpoint.provider}: the stream dropped during a tool call ({failure.reason}) "
            "and was not retried, so the tool cannot run twice"
        )
    return failure
