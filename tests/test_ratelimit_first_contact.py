"""The shared limiter before an endpoint has ever answered: `FIRST_CONTACT_IN_FLIGHT` (one)
goes, or a burst up to settings' requests a minute, the rest wait for the first answer, and a
429 on first contact makes the others queue, not fail."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

from covey.budget.rate_limiter import FIRST_CONTACT_IN_FLIGHT, SharedRateLimiter
from covey.config import RateLimitSettings
from covey.messages import Message
from covey.models.anthropic import AnthropicModel
from covey.models.base import ModelRequest
from covey.models.ratelimit import Outcome, Ticket
from covey.models.retry import RetryPolicy
from covey.models.script import Script
from covey.store import Store
from covey.store import rate_limits as db
from covey.testing.fakeserver import FakeServer, RateWindow


def _limiter(store: Store, **settings: object) -> SharedRateLimiter:
    return SharedRateLimiter(store, RateLimitSettings.model_validate(settings))


async def _burst(limiter: SharedRateLimiter, endpoint: str, n: int) -> list[Ticket]:
    return await asyncio.wait_for(
        asyncio.gather(*(limiter.reserve(endpoint, "anthropic", 100) for _ in range(n))), 10
    )


def test_a_first_burst_goes_at_once_up_to_the_bound() -> None:
    asyncio.run(_a_first_burst_goes_at_once_up_to_the_bound())


async def _a_first_burst_goes_at_once_up_to_the_bound() -> None:
    with Store.open() as store:
        endpoint = "http://new#k"
        limiter = _limiter(store)
        tickets = await _burst(limiter, endpoint, FIRST_CONTACT_IN_FLIGHT)  # none answered yet
        assert limiter.waits == 0
        one_more = asyncio.create_task(limiter.reserve(endpoint, "anthropic", 100))
        await asyncio.sleep(0.3)
        assert not one_more.done()  # beyond the bound, it waits for the first answer
        limiter.settle(tickets[0], Outcome(status=200))
        last = await asyncio.wait_for(one_more, 5)
        for ticket in [*tickets[1:], last]:
            limiter.settle(ticket, Outcome(status=200))
        with store.read() as conn:
            assert db.queue_of(conn, endpoint) == []


def test_settings_requests_a_minute_bound_the_first_burst() -> None:
    asyncio.run(_settings_requests_a_minute_bound_the_first_burst())


async def _settings_requests_a_minute_bound_the_first_burst() -> None:
    with Store.open() as store:
        endpoint = "http://configured#k"
        limiter = _limiter(store, anthropic={"requestsPerMinute": 200})
        tickets = await _burst(limiter, endpoint, 80)  # more than the default bound
        assert limiter.waits == 0 and len(tickets) == 80
        for ticket in tickets:
            limiter.settle(ticket, Outcome(status=200))


def test_a_429_on_first_contact_makes_the_burst_queue_not_fail() -> None:
    asyncio.run(_a_429_on_first_contact_makes_the_burst_queue_not_fail())


async def _a_429_on_first_contact_makes_the_burst_queue_not_fail() -> None:
    script = Script.model_validate({"turns": [{"text": "ok"}]})
    window = RateWindow(seconds=1.0, requests=3)  # an account smaller than the first burst
    with FakeServer(script, window=window) as srv, Store.open() as store:
        limiter = _limiter(store, anthropic={"requestsPerMinute": 50})  # more than it takes
        model = AnthropicModel(
            "claude-sonnet-4-5",
            api_key="k",
            base_url=srv.url,
            retry=RetryPolicy(max_retries=2, initial_delay=0.05, max_delay=0.2),
            limiter=limiter,
        )
        request = ModelRequest(system="s", messages=[Message.user("hi")])
        started = time.monotonic()
        replies = await asyncio.gather(*(model.complete(request) for _ in range(8)))
        assert [r.message.text for r in replies] == ["ok"] * 8
        assert srv.window is not None and srv.window.admitted == 8
        assert srv.window.refused <= 5  # the first burst only: the 429s taught the limiter
        assert limiter.waits >= 1 and time.monotonic() - started >= 1.0


def test_a_dead_processs_rows_do_not_hold_the_first_burst_back() -> None:
    asyncio.run(_a_dead_processs_rows_do_not_hold_the_first_burst_back())


async def _a_dead_processs_rows_do_not_hold_the_first_burst_back() -> None:
    with Store.open() as store:
        endpoint = "http://crashed#k"
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        holder = f"{socket.gethostname()}:{dead.pid}:abcdef"
        now = time.time()
        with store.write() as conn:  # a crashed process's burst, never answered
            for _ in range(FIRST_CONTACT_IN_FLIGHT):
                db.grant(conn, db.enqueue(conn, endpoint, holder, None, 100, now), now)
        limiter = _limiter(store)
        ticket = await asyncio.wait_for(limiter.reserve(endpoint, "anthropic", 100), 5)
        limiter.settle(ticket, Outcome(status=200))
        with store.read() as conn:
            assert db.queue_of(conn, endpoint) == []


def test_a_request_that_got_no_response_does_not_end_first_contact() -> None:
    asyncio.run(_a_request_that_got_no_response_does_not_end_first_contact())


async def _a_request_that_got_no_response_does_not_end_first_contact() -> None:
    with Store.open() as store:
        endpoint = "http://unreached#k"
        limiter = _limiter(store)
        ticket = await _burst(limiter, endpoint, 1)
        limiter.settle(ticket[0], Outcome(status=None))  # a connection failure: no headers
        with store.read() as conn:
            assert not db.answered_before(conn, endpoint)
        ticket = await _burst(limiter, endpoint, 1)
        limiter.settle(ticket[0], Outcome(status=200))
        with store.read() as conn:
            assert db.answered_before(conn, endpoint)
