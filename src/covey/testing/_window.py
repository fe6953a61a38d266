"""Rate limits of the fake server, in fixed windows counted from the server's start.

- `RateWindow` (enforced): at most `input_tokens` input tokens and `requests` requests per
  `seconds`. A request that does not fit is refused (429 with `retry-after`: the time left in
  the window) and counts for nothing; a request bigger than the whole window goes into an
  empty one.
- `AdvertisedLimits` (reported, not enforced): per-minute limits of requests, input and output
  tokens, as a provider account has them; every answered request counts, and the headers say
  what is left of the current minute and when it ends, as the real APIs do."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

__all__ = ["AdvertisedLimits", "Limit", "RateWindow", "UsageCounter", "WindowCounter"]


@dataclass(frozen=True)
class RateWindow:
    seconds: float
    input_tokens: int | None = None
    requests: int | None = None


@dataclass(frozen=True)
class Limit:
    """One limit as the headers report it."""

    limit: int
    remaining: int
    reset_at: float
    """Epoch seconds when the window ends."""


class WindowCounter:
    """Counts requests and input tokens per window; thread-safe."""

    def __init__(self, window: RateWindow, start: float | None = None) -> None:
        self.window = window
        self.start = time.time() if start is None else start
        self._lock = threading.Lock()
        self._index = -1
        self._tokens = 0
        self._requests = 0
        self.admitted = 0
        self.refused = 0

    def _roll(self, now: float) -> float:
        """Start the window `now` falls in; its end."""
        index = math.floor((now - self.start) / self.window.seconds)
        if index != self._index:
            self._index, self._tokens, self._requests = index, 0, 0
        return self.start + (index + 1) * self.window.seconds

    def admit(self, tokens: int, now: float | None = None) -> float | None:
        """Count the request and return None, or refuse it: the seconds until the window
        ends."""
        now = time.time() if now is None else now
        with self._lock:
            end = self._roll(now)
            w = self.window
            over_tokens = (
                w.input_tokens is not None
                and self._tokens > 0
                and self._tokens + tokens > w.input_tokens
            )
            over_requests = w.requests is not None and self._requests + 1 > w.requests
            if over_tokens or over_requests:
                self.refused += 1
                return max(0.001, end - now)
            self._tokens += tokens
            self._requests += 1
            self.admitted += 1
            return None

    def limits(self, now: float | None = None) -> dict[str, Limit]:
        """`input_tokens` and `requests` as they stand (those enforced)."""
        now = time.time() if now is None else now
        with self._lock:
            end = self._roll(now)
            out = {}
            if self.window.input_tokens is not None:
                left = max(0, self.window.input_tokens - self._tokens)
                out["input_tokens"] = Limit(self.window.input_tokens, left, end)
            if self.window.requests is not None:
                left = max(0, self.window.requests - self._requests)
                out["requests"] = Limit(self.window.requests, left, end)
            return out


@dataclass(frozen=True)
class AdvertisedLimits:
    """What the fake provider's rate-limit headers report, per `seconds` (a minute, as the
    real APIs count). The defaults are its made-up figures."""

    requests: int = 4_000
    input_tokens: int = 2_000_000
    output_tokens: int = 400_000
    seconds: float = 60.0


class UsageCounter:
    """Counts the requests and tokens of each window against `AdvertisedLimits`; never
    refuses. Thread-safe."""

    def __init__(self, limits: AdvertisedLimits, start: float | None = None) -> None:
        self.advertised = limits
        self.start = time.time() if start is None else start
        self._lock = threading.Lock()
        self._index = -1
        self._used = {"requests": 0, "input_tokens": 0, "output_tokens": 0}

    def _roll(self, now: float) -> float:
        seconds = self.advertised.seconds
        index = math.floor((now - self.start) / seconds)
        if index != self._index:
            self._index = index
            self._used = dict.fromkeys(self._used, 0)
        return self.start + (index + 1) * seconds

    def count(self, input_tokens: int, output_tokens: int, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            self._roll(now)
            self._used["requests"] += 1
            self._used["input_tokens"] += input_tokens
            self._used["output_tokens"] += output_tokens

    def limits(self, now: float | None = None) -> dict[str, Limit]:
        """`requests`, `input_tokens` and `output_tokens` as they stand."""
        now = time.time() if now is None else now
        a = self.advertised
        with self._lock:
            end = self._roll(now)
            return {
                kind: Limit(limit, max(0, limit - self._used[kind]), end)
                for kind, limit in (
                    ("requests", a.requests),
                    ("input_tokens", a.input_tokens),
                    ("output_tokens", a.output_tokens),
                )
            }
