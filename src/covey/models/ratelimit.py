"""Provider rate limits: what the response headers say, the bucket arithmetic of the one
limiter all sessions of the user share, and the gate an adapter calls around each request.

The headers (both kept as `Window`s, reset times as epoch seconds):

    Anthropic  anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,
               remaining,reset}
               reset is an RFC 3339 time: 2026-12-03T12:00:05Z (fractions allowed)
    OpenAI     x-ratelimit-{limit,remaining,reset}-{requests,tokens}
               reset is a Go-style duration from now: 6m0s, 1s, 20ms, 1h2m3.5s

A `Bucket` is one limit as the limiter keeps it (learned from headers, or set in settings
`rateLimits`, kind `settings:…`): how much is left until `reset_at`, when it is full again.
Every request takes one from each `requests` bucket and its estimated input tokens from each
`input_tokens`/`tokens` bucket; an `output_tokens` bucket only has to be non-empty.

The limiter itself (state in the store, a first-come-first-served queue across processes)
lives in `covey.budget.rate_limiter`; adapters see only the `RateLimiter` protocol through
a `RequestGate`:

    ticket = await gate.before_request(body)      # may wait; never a retry
    ...send, stream...
    gate.after_response(ticket, status, headers, usage)
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from covey.messages import Usage
from covey.models.retry import header, parse_retry_after
from covey.models.tokens import estimate_tokens_of

__all__ = [
    "BLOCK_WITHOUT_RETRY_AFTER_S",
    "SENT_FIELDS",
    "Bucket",
    "Outcome",
    "RateLimiter",
    "RequestGate",
    "Ticket",
    "Window",
    "admit",
    "anthropic_windows",
    "endpoint_key",
    "learn",
    "openai_windows",
    "parse_duration",
    "parse_rfc3339",
    "reconcile",
    "roll",
    "take",
]

BLOCK_WITHOUT_RETRY_AFTER_S = 1.0
"""How long a 429 that names no retry-after (and no reset of an empty bucket) blocks."""

SENT_FIELDS = 24
"""Tokens added to a request's estimate for what the client adds as it sends it (`stream`,
`stream_options`…)."""

_SAME_WINDOW_S = 0.5
"""Two reset times closer than this describe the same window."""


@dataclass(frozen=True)
class Window:
    """One limit as the provider reported it on a response."""

    kind: str
    """requests | tokens | input_tokens | output_tokens"""
    limit: int
    remaining: int
    reset_at: float
    """Epoch seconds when the limit is whole again."""


def parse_rfc3339(text: str) -> float | None:
    """Epoch seconds of an RFC 3339 time (`Z` or an offset); None when unreadable."""
    try:
        when = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str) -> float | None:
    """Seconds of a Go-style duration (`6m0s`, `1s`, `20ms`, `1h2m3.5s`; a bare number is
    seconds); None when unreadable."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except ValueError:
        return None


def anthropic_windows(headers: Mapping[str, str], now: float) -> list[Window]:
    """The `anthropic-ratelimit-*` limits of a response (those given whole)."""
    out = []
    for name in ("requests", "tokens", "input-tokens", "output-tokens"):
        prefix = f"anthropic-ratelimit-{name}-"
        limit = _int(header(headers, prefix + "limit"))
        remaining = _int(header(headers, prefix + "remaining"))
        reset_text = header(headers, prefix + "reset")
        reset_at = parse_rfc3339(reset_text) if reset_text else None
        if limit is None or remaining is None:
            continue
        out.append(
            Window(name.replace("-", "_"), limit, remaining, now if reset_at is None else reset_at)
        )
    return out


def openai_windows(headers: Mapping[str, str], now: float) -> list[Window]:
    """The `x-ratelimit-*` limits of a response (those given whole)."""
    out = []
    for name in ("requests", "tokens"):
        limit = _int(header(headers, f"x-ratelimit-limit-{name}"))
        remaining = _int(header(headers, f"x-ratelimit-remaining-{name}"))
        reset_text = header(headers, f"x-ratelimit-reset-{name}")
        after = parse_duration(reset_text) if reset_text else None
        if limit is None or remaining is None:
            continue
        out.append(Window(name, limit, remaining, now + (after or 0.0)))
    return out


@dataclass(frozen=True)
class Bucket:
    """One limit as the limiter keeps it."""

    kind: str
    """A `Window` kind, or `settings:<kind>` for a limit set in settings."""
    limit: int
    remaining: float
    reset_at: float | None
    """When it is full again; None: not known (the next response will say)."""
    window_s: float | None
    """How long a window lasts, when known (settings: 60 s; headers: the longest seen)."""

    @property
    def base_kind(self) -> str:
        return self.kind.removeprefix("settings:")

    def need(self, tokens: int) -> float:
        """What one request of `tokens` estimated input tokens takes from this bucket: a
        request too big for a whole window may still go, alone, into a full one."""
        if self.base_kind == "requests":
            return 1.0
        if self.base_kind == "output_tokens":
            return 1.0  # output is not known in advance: the bucket must merely not be empty
        return float(min(tokens, self.limit))


def roll(bucket: Bucket, now: float) -> Bucket:
    """The bucket at `now`: whole again once its reset time has passed (the next reset one
    window later, when the window's length is known)."""
    if bucket.reset_at is None or now < bucket.reset_at:
        return bucket
    reset_at: float | None = None
    if bucket.window_s:
        passed = math.floor((now - bucket.reset_at) / bucket.window_s) + 1
        reset_at = bucket.reset_at + passed * bucket.window_s
    return replace(bucket, remaining=float(bucket.limit), reset_at=reset_at)


def admit(
    buckets: list[Bucket], tokens: int, now: float, ahead: tuple[int, ...] = ()
) -> tuple[list[Bucket], float | None]:
    """Whether a request of `tokens` estimated input tokens may go now, behind the requests
    `ahead` of it in the queue (it goes only if they all fit too, so none is overtaken by a
    later one). Returns the buckets after taking this request's share (all rolled to `now`)
    and None, or the buckets rolled and the seconds to wait (inf: until a response says)."""
    rolled = [roll(b, now) for b in buckets]
    waits = [
        (b.reset_at - now) if b.reset_at is not None else math.inf
        for b in rolled
        if b.remaining < sum(b.need(t) for t in (*ahead, tokens))
    ]
    if waits:
        return rolled, max(0.0, min(waits))
    return [take(b, tokens, now) for b in rolled], None


def take(bucket: Bucket, tokens: int, now: float) -> Bucket:
    """The bucket after one request of `tokens` estimated input tokens went (a window known
    only by its length starts now)."""
    share = 0.0 if bucket.base_kind == "output_tokens" else bucket.need(tokens)
    reset_at = bucket.reset_at
    if reset_at is None and bucket.window_s:
        reset_at = now + bucket.window_s
    return replace(bucket, remaining=bucket.remaining - share, reset_at=reset_at)


def learn(bucket: Bucket | None, window: Window, now: float) -> Bucket:
    """A header bucket after a response reported `window`. In the window the bucket knows,
    the smaller of what each side thinks is left wins (the limiter has counted requests the
    server has not seen yet; the server, requests from elsewhere); a later window replaces it."""
    seen_window = max(0.0, window.reset_at - now)
    if bucket is None:
        return Bucket(window.kind, window.limit, float(window.remaining), window.reset_at, None)
    window_s = max(bucket.window_s or 0.0, seen_window) or None
    if window.reset_at <= now:  # a response from a window that is over: only the limit
        return replace(roll(bucket, now), limit=window.limit, window_s=window_s)
    current = roll(bucket, now)
    if current.reset_at is None or window.reset_at > current.reset_at + _SAME_WINDOW_S:
        remaining = min(current.remaining, float(window.remaining))
    elif window.reset_at < current.reset_at - _SAME_WINDOW_S:
        remaining = float(window.remaining)
    else:
        remaining = min(current.remaining, float(window.remaining))
    return Bucket(window.kind, window.limit, remaining, window.reset_at, window_s)


def reconcile(
    bucket: Bucket, tokens: int, outcome: Outcome, reserved_reset: float | None
) -> Bucket:
    """The bucket once a request that reserved `tokens` was answered: what it reserved
    beyond what the provider counted is given back (or the difference taken), and output
    tokens are taken from an output bucket, if the bucket is still in the window the
    reservation was taken from."""
    kind = bucket.base_kind
    if kind == "requests" or outcome.input_tokens is None:
        return bucket
    if bucket.reset_at is None or reserved_reset is None:
        return bucket
    if abs(bucket.reset_at - reserved_reset) > _SAME_WINDOW_S:
        return bucket
    output = outcome.output_tokens or 0
    if kind == "output_tokens":
        change = -float(output)
    else:
        used = outcome.input_tokens + (output if kind == "tokens" else 0)
        change = bucket.need(tokens) - used
    return replace(bucket, remaining=min(float(bucket.limit), bucket.remaining + change))


def endpoint_key(base_url: str, credential: str | None) -> str:
    """Names a provider endpoint in the store: the base URL and a hash of the key (never the
    key itself)."""
    digest = hashlib.sha256((credential or "").encode()).hexdigest()[:16]
    return f"{base_url.rstrip('/')}#{digest}"


@dataclass(frozen=True)
class Ticket:
    """A request's place with the limiter, from its reservation to its answer."""

    id: int
    endpoint: str
    tokens: int
    """The input tokens reserved."""
    resets: tuple[tuple[str, float | None], ...] = ()
    """(bucket kind, its reset time) when the reservation was taken, to reconcile in the
    same window only."""


@dataclass(frozen=True)
class Outcome:
    """What came back for a request, as the limiter needs it."""

    status: int | None
    """The HTTP status; None when no response came (connection failure)."""
    windows: tuple[Window, ...] = ()
    retry_after: float | None = None
    input_tokens: int | None = None
    """The input tokens the provider counted against the limit, once the answer was whole."""
    output_tokens: int | None = None


class RateLimiter(Protocol):
    """The shared limiter, as adapters see it."""

    async def reserve(self, endpoint: str, provider: str, tokens: int) -> Ticket:
        """Wait (first come, first served) until a request of `tokens` estimated input
        tokens fits the endpoint's limits, and take them."""
        ...

    def settle(self, ticket: Ticket, outcome: Outcome) -> None:
        """Learn from the response and reconcile the reservation with the real usage."""
        ...


class RequestGate:
    """What a provider adapter calls around each HTTP request; does nothing without a
    limiter (`rateLimits.enabled` false, or a model built outside a session)."""

    def __init__(
        self,
        limiter: RateLimiter | None,
        provider: str,
        base_url: str,
        credential: str | None,
    ) -> None:
        self.limiter = limiter
        self.provider = provider
        self.endpoint = endpoint_key(base_url, credential)

    async def before_request(self, body: bytes) -> Ticket | None:
        """Reserve the request's estimated input tokens (the size of its JSON `body`, as
        sent), waiting if need be."""
        if self.limiter is None:
            return None
        size = estimate_tokens_of(body)
        # a little over, as when the estimate was made without `stream` and the like
        return await self.limiter.reserve(self.endpoint, self.provider, size + SENT_FIELDS)

    def after_response(
        self,
        ticket: Ticket | None,
        status: int | None,
        headers: Mapping[str, str] | None,
        usage: Usage | None,
    ) -> None:
        """Report a request's answer (status and headers, if any came; usage, if whole)."""
        if self.limiter is None or ticket is None:
            return
        now = time.time()
        headers = headers or {}
        parse = openai_windows if self.provider == "openai" else anthropic_windows
        counted = None
        if usage is not None:  # cache reads count against OpenAI's limit, not Anthropic's
            openai = self.provider == "openai"
            counted = usage.total_input if openai else usage.input + usage.cache_write
        outcome = Outcome(
            status=status,
            windows=tuple(parse(headers, now)),
            retry_after=parse_retry_after(headers) if status == 429 else None,
            input_tokens=counted,
            output_tokens=usage.output if usage is not None else None,
        )
        self.limiter.settle(ticket, outcome)
