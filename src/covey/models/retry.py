"""Retrying failed model requests: the policy, `retry-after` parsing, and the loop.

Provider adapters run each attempt through `retrying()`. An attempt that failed in a way worth
repeating raises `Retryable` (a private signal that never leaves the loop); any other exception
passes straight through. When the retries run out, the loop raises `ModelError`.

    policy = RetryPolicy(max_retries=10)
    response = await retrying("anthropic", attempt, policy, on_retry=print)
    # prints "Retrying in 2.0s · attempt 1/10 (529 overloaded)" before each retry
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from covey.errors import ModelError

__all__ = [
    "RetryCallback",
    "RetryNotice",
    "RetryPolicy",
    "Retryable",
    "header",
    "parse_retry_after",
    "retrying",
    "should_retry_header",
]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before repeating a failed model request."""

    max_retries: int = 10
    """Retries after the first attempt (so at most `max_retries + 1` requests)."""
    initial_delay: float = 0.5
    """Seconds before the first retry; doubled for each later one."""
    max_delay: float = 32.0
    """Cap on the exponential backoff (not on a server's `retry-after`)."""
    max_retry_after: float = 120.0
    """A server asking to wait longer than this is not retried at all."""

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait before retry number `attempt` (1 for the first retry).

        A server's `retry-after` is honoured as given when it is at most `max_retry_after`;
        a longer one returns None, meaning: do not retry. Without one, the delay is
        `initial_delay * 2**(attempt-1)` capped at `max_delay`, minus up to 25% jitter so
        that many sessions failing at once do not retry in step.
        """
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return max(0.0, retry_after)
        backoff = min(self.initial_delay * 2.0 ** max(0, attempt - 1), self.max_delay)
        return backoff * (1.0 - 0.25 * random.random())


@dataclass(frozen=True)
class RetryNotice:
    """Told to `on_retry` before each wait, so a UI can say what is happening."""

    attempt: int
    """Which retry this is, from 1."""
    max_retries: int
    delay_s: float
    reason: str
    """Short words for the failure, e.g. `529 overloaded`, `connection dropped`."""

    def __str__(self) -> str:
        return (
            f"Retrying in {self.delay_s:.1f}s · attempt {self.attempt}/{self.max_retries} "
            f"({self.reason})"
        )


RetryCallback = Callable[[RetryNotice], None]


class Retryable(Exception):
    """Raised by an attempt that may be repeated. Never escapes `retrying()`."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


async def retrying(
    provider: str,
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    on_retry: RetryCallback | None = None,
) -> T:
    """Await `attempt()` until it returns, retrying it while it raises `Retryable`.

    Raises `ModelError` naming the last failure when the retries run out, or when the server
    asks to wait longer than `policy.max_retry_after`. Other exceptions pass through.
    """
    import asyncio  # here: a dispatch reads RetryPolicy and runs no event loop

    retries = 0
    while True:
        try:
            return await attempt()
        except Retryable as failure:
            if retries >= policy.max_retries:
                raise ModelError(
                    f"{provider}: gave up after {retries} retries: {failure.reason}"
                ) from failure
            retries += 1
            delay = policy.delay(retries, failure.retry_after)
            if delay is None:
                raise ModelError(
                    f"{provider}: {failure.reason}; the server asks to wait "
                    f"{failure.retry_after:.0f}s (more than {policy.max_retry_after:.0f}s), "
                    "so it is not retried"
                ) from failure
            if on_retry is not None:
                on_retry(RetryNotice(retries, policy.max_retries, delay, failure.reason))
            await asyncio.sleep(delay)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever the case of its name in `headers`."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def parse_retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, else `retry-after` (seconds or
    an HTTP date). None when absent or unreadable; a date in the past gives 0."""
    ms = header(headers, "retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = header(headers, "retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # ~10 ms, only for an HTTP date

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def should_retry_header(headers: Mapping[str, str]) -> bool | None:
    """The server's own verdict (`x-should-retry: true|false`), if it gave one."""
    value = header(headers, "x-should-retry")
    if value is None:
        return None
    return value.strip().lower() == "true"
