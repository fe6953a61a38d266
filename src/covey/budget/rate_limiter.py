"""The one rate limiter every session of the user shares, across processes, its state in
the store (`covey.store.rate_limits`).

Before each model request a session reserves its estimated input tokens in one short
`BEGIN IMMEDIATE` transaction. It joins the endpoint's queue; it may go when the buckets
can take it together with every request queued before it (first come, first served, so
none starves). Otherwise it sleeps until the earliest reset that would let it (an asyncio
sleep, then a new look) while its session row shows `waiting_for: "rate limit"`; waiting is
not a retry and uses none of `retries.maxRetries`. The response teaches the buckets (its
headers), the reservation is reconciled with the real usage, and a 429 blocks the endpoint
until its `retry-after`.

While an endpoint has never answered, its headers have told nothing yet: one request goes
(or, when settings give `rateLimits.<provider>.requestsPerMinute`, up to that many at once, in
queue order) and the rest wait for the first answer, whose headers tell the limits. One at a
time keeps the promise "queues instead of failing" for accounts whose token limits a burst
would overrun; a user who knows their account's requests a minute gets the burst. If even
that is too much, the 429s carry the limits and a retry-after, which block the endpoint.

    limiter = shared_limiter(store, settings.rateLimits)   # None when turned off
    limiter.bind(session_id, epoch)                        # whose row shows the wait
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Callable

from covey.config import ProviderRateLimits, RateLimitSettings
from covey.models.ratelimit import (
    BLOCK_WITHOUT_RETRY_AFTER_S,
    Bucket,
    Outcome,
    Ticket,
    admit,
    learn,
    reconcile,
    take,
)
from covey.sessions.lease import holder_alive, new_host_id
from covey.store import Store, get_session, update_session
from covey.store import rate_limits as db
from covey.store.session_meta import with_meta

__all__ = ["FIRST_CONTACT_IN_FLIGHT", "RATE_LIMIT", "SharedRateLimiter", "shared_limiter"]

RATE_LIMIT = "rate limit"
"""What `waiting_for` says while a session waits for the limiter."""
POLL_S = 0.05
"""How soon a request that fits, but has others queued before it, looks again."""
MAX_SLEEP_S = 2.0
"""The longest sleep between two looks (a waiting row not looked at for long is dropped)."""
SHOW_AFTER_S = 0.2
"""A wait shorter than this is not written to the session row."""
FIRST_CONTACT_IN_FLIGHT = 1
"""How many requests may be in flight to an endpoint that has never answered, unless settings
give its requests a minute (a burst could overrun a token limit nobody has told us about; the
wait is once per endpoint and COVEY_HOME: the learned limits are kept in the store)."""
WAITING_TTL_S = 30.0
FLIGHT_TTL_S = 900.0
_SETTINGS_KINDS = {
    "requestsPerMinute": "requests",
    "inputTokensPerMinute": "input_tokens",
    "outputTokensPerMinute": "output_tokens",
    "tokensPerMinute": "tokens",
}


def shared_limiter(store: Store, settings: RateLimitSettings) -> SharedRateLimiter | None:
    """The limiter for a host's sessions, or None when settings `rateLimits.enabled` is off."""
    return SharedRateLimiter(store, settings) if settings.enabled else None


class SharedRateLimiter:
    """Implements `covey.models.ratelimit.RateLimiter` over the store."""

    def __init__(
        self,
        store: Store,
        settings: RateLimitSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.holder = new_host_id()
        self.session_id: str | None = None
        self.epoch: int | None = None
        self.waits = 0
        """Requests that had to wait (statistics)."""
        self.waited_s = 0.0

    def bind(self, session_id: str, epoch: int) -> None:
        """The session whose row shows `waiting_for: "rate limit"` while a request waits."""
        self.session_id, self.epoch = session_id, epoch

    async def reserve(self, endpoint: str, provider: str, tokens: int) -> Ticket:
        row_id: int | None = None
        shown = False
        slept = False
        started = self.clock()
        try:
            while True:
                now = self.clock()
                with self.store.write() as conn:
                    if row_id is None:
                        row_id = db.enqueue(
                            conn, endpoint, self.holder, self.session_id, tokens, now
                        )
                    ticket, wait = self._try(conn, endpoint, provider, tokens, row_id, now)
                    long_wait = wait >= SHOW_AFTER_S or now - started >= SHOW_AFTER_S
                    if ticket is None and not shown and long_wait:
                        shown = self._show(conn, RATE_LIMIT)
                    elif ticket is not None and shown:
                        self._show(conn, None)
                if ticket is not None:
                    if slept:
                        self.waits += 1
                        self.waited_s += now - started
                    return ticket
                await asyncio.sleep(wait)
                slept = True
        except BaseException:
            if row_id is not None:
                with self.store.write() as conn:
                    db.remove(conn, row_id)
                    if shown:
                        self._show(conn, None)
            raise

    def settle(self, ticket: Ticket, outcome: Outcome) -> None:
        now = self.clock()
        with self.store.write() as conn:
            db.remove(conn, ticket.id)
            if outcome.status is not None:  # no response (a connection failure) taught nothing
                db.mark_answered(conn, ticket.endpoint, now)
            stored = {b.kind: _bucket(b) for b in db.read_buckets(conn, ticket.endpoint)}
            for kind, reset in ticket.resets:
                if kind in stored:
                    stored[kind] = reconcile(stored[kind], ticket.tokens, outcome, reset)
            for window in outcome.windows:
                stored[window.kind] = learn(stored.get(window.kind), window, now)
            for bucket in stored.values():
                db.write_bucket(conn, ticket.endpoint, _row(bucket), now)
            if outcome.status == 429:
                db.block_until(conn, ticket.endpoint, now + _block_s(outcome, now))

    def _try(
        self,
        conn: sqlite3.Connection,
        endpoint: str,
        provider: str,
        tokens: int,
        row_id: int,
        now: float,
    ) -> tuple[Ticket | None, float]:
        """One look: the ticket if the request may go (its share taken), else how long to
        sleep before the next look. Rows of dead processes or left stale can only hold a
        request back, so they are looked for only when it cannot go (most looks need not)."""
        db.touch(conn, row_id, now)
        ticket, wait = self._look(conn, endpoint, provider, tokens, row_id, now)
        if ticket is not None:
            return ticket, wait
        db.drop_stale(
            conn,
            endpoint,
            now,
            alive=holder_alive,
            waiting_ttl_s=WAITING_TTL_S,
            flight_ttl_s=FLIGHT_TTL_S,
        )
        return self._look(conn, endpoint, provider, tokens, row_id, now)

    def _look(
        self,
        conn: sqlite3.Connection,
        endpoint: str,
        provider: str,
        tokens: int,
        row_id: int,
        now: float,
    ) -> tuple[Ticket | None, float]:
        ahead = db.waiting_ahead(conn, endpoint, row_id)
        in_flight = db.in_flight(conn, endpoint)
        blocked = db.blocked_until(conn, endpoint)
        if blocked > now:
            return None, min(blocked - now, MAX_SLEEP_S)
        first_contact = in_flight + len(ahead) >= self._first_contact_in_flight(provider)
        if first_contact and not db.answered_before(conn, endpoint):
            return None, POLL_S  # the first answer's headers will tell what fits
        stored = {b.kind: _bucket(b) for b in db.read_buckets(conn, endpoint)}
        buckets = [b for b in stored.values() if not b.kind.startswith("settings:")]
        buckets += self._settings_buckets(stored, provider)
        taken, wait = admit(buckets, tokens, now, ahead)
        if wait is not None:
            if math.isinf(wait):
                if in_flight or ahead:
                    return None, POLL_S  # a response will say when the window resets
                taken = [take(b, tokens, now) for b in taken]  # nothing can tell us: go
            else:
                return None, min(wait + 0.01, MAX_SLEEP_S)
        for bucket in taken:
            db.write_bucket(conn, endpoint, _row(bucket), now)
        db.grant(conn, row_id, now)
        resets = tuple((b.kind, b.reset_at) for b in taken)
        return Ticket(row_id, endpoint, tokens, resets), 0.0

    def _first_contact_in_flight(self, provider: str) -> int:
        limits = getattr(self.settings, provider, None)
        per_minute = limits.requestsPerMinute if isinstance(limits, ProviderRateLimits) else None
        return per_minute or FIRST_CONTACT_IN_FLIGHT

    def _settings_buckets(self, stored: dict[str, Bucket], provider: str) -> list[Bucket]:
        """The buckets settings `rateLimits.<provider>` asks for (the stored state of each,
        its limit as these settings say)."""
        limits = getattr(self.settings, provider, None)
        if not isinstance(limits, ProviderRateLimits):
            return []
        out = []
        for field, kind in _SETTINGS_KINDS.items():
            limit = getattr(limits, field)
            if limit is None:
                continue
            key = f"settings:{kind}"
            known = stored.get(key)
            if known is None:
                out.append(Bucket(key, limit, float(limit), None, 60.0))
            else:
                remaining = min(known.remaining, float(limit))
                out.append(Bucket(key, limit, remaining, known.reset_at, 60.0))
        return out

    def _show(self, conn: sqlite3.Connection, waiting: str | None) -> bool:
        """Write `waiting` into the bound session's row (None clears it)."""
        if self.session_id is None or self.epoch is None:
            return False
        row = get_session(conn, self.session_id)
        if row is None:
            return False
        meta = with_meta(row.meta, waiting=waiting)
        return update_session(conn, self.session_id, self.epoch, meta=meta)


def _bucket(row: db.BucketRow) -> Bucket:
    return Bucket(row.kind, row.limit, row.remaining, row.reset_at, row.window_s)


def _row(bucket: Bucket) -> db.BucketRow:
    return db.BucketRow(
        bucket.kind, bucket.limit, bucket.remaining, bucket.reset_at, bucket.window_s
    )


def _block_s(outcome: Outcome, now: float) -> float:
    """How long a 429 blocks its endpoint: its retry-after, else until the reset of a
    bucket it reports empty, else a moment."""
    if outcome.retry_after is not None:
        return outcome.retry_after
    empty = [w.reset_at - now for w in outcome.windows if w.remaining <= 0 and w.reset_at > now]
    return min(empty) if empty else BLOCK_WITHOUT_RETRY_AFTER_S
