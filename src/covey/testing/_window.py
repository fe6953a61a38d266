"""An enforced rate-limit window for the fake server: at most `input_tokens` input tokens
and `requests` requests per `seconds`, in fixed windows counted from the server's start. A
request that does not fit is refused (429 with `retry-after`: the time left in the window)
and counts for nothing; a request bigger than the whole window goes into an empty one."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

__all__ = ["Limit", "RateWindow", "WindowCounter"]


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
