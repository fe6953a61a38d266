"""The retry policy, `retry-after` parsing, the retry loop and the shared error translation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from covey.errors import ContextOverflowError, CredentialsError, ModelError
from covey.models._http import (
    Endpoint,
    status_failure,
    stream_error_failure,
    unless_tool_began,
)
from covey.models.retry import (
    Retryable,
    RetryNotice,
    RetryPolicy,
    parse_retry_after,
    retrying,
    should_retry_header,
)

FAST = RetryPolicy(max_retries=3, initial_delay=0.001, max_delay=0.002)
ENDPOINT = Endpoint("anthropic", "https://api.example.test", "ANTHROPIC_API_KEY")


# --- the policy ---------------------------------------------------------------------------


def test_delay_honours_retry_after_exactly() -> None:
    policy = RetryPolicy()
    assert policy.delay(1, 2.5) == 2.5
    assert policy.delay(7, 0.0) == 0.0
    assert policy.delay(1, 120.0) == 120.0


def test_delay_refuses_a_retry_after_beyond_the_maximum() -> None:
    assert RetryPolicy(max_retry_after=120.0).delay(1, 120.5) is None
    assert RetryPolicy(max_retry_after=5.0).delay(1, 6.0) is None


def test_delay_backs_off_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=32.0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 32.0), (12, 32.0)]:
        samples = [policy.delay(attempt) for _ in range(200)]
        assert all(s is not None and 0.75 * ceiling <= s <= ceiling for s in samples), attempt
        assert len(set(samples)) > 1, "no jitter"


# --- headers ------------------------------------------------------------------------------


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5


def test_retry_after_in_seconds_whatever_the_header_case() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    headers = {"retry-after": "Wed, 01 Jan 2025 12:00:30 GMT"}
    assert parse_retry_after(headers, now=now) == 30.0
    past = {"retry-after": "Wed, 01 Jan 2025 11:00:00 GMT"}
    assert parse_retry_after(past, now=now) == 0.0


def test_retry_after_absent_or_unreadable_is_none() -> None:
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None


def test_x_should_retry() -> None:
    assert should_retry_header({"x-should-retry": "true"}) is True
    assert should_retry_header({"X-Should-Retry": "false"}) is False
    assert should_retry_header({}) is None


def test_retry_notice_reads_like_a_status_line() -> None:
    notice = RetryNotice(attempt=1, max_retries=10, delay_s=2.0, reason="529 overloaded")
    assert str(notice) == "Retrying in 2.0s · attempt 1/10 (529 overloaded)"


# --- the loop -----------------------------------------------------------------------------


class Flaky:
    """Fails with the given exceptions in turn, then answers "ok"."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def test_retrying_repeats_retryable_failures_and_tells_on_retry() -> None:
    notices: list[RetryNotice] = []
    attempt = Flaky(Retryable("529 overloaded"), Retryable("429 rate limited", retry_after=0.01))
    assert asyncio.run(retrying("p", attempt, FAST, notices.append)) == "ok"
    assert attempt.calls == 3
    assert [(n.attempt, n.max_retries, n.reason) for n in notices] == [
        (1, 3, "529 overloaded"),
        (2, 3, "429 rate limited"),
    ]
    assert notices[1].delay_s == 0.01


def test_retrying_gives_up_naming_the_last_failure() -> None:
    attempt = Flaky(*[Retryable("529 overloaded") for _ in range(5)])
    with pytest.raises(ModelError, match=r"^p: gave up after 3 retries: 529 overloaded$"):
        asyncio.run(retrying("p", attempt, FAST))
    assert attempt.calls == 4


def test_retrying_stops_when_the_server_asks_to_wait_too_long() -> None:
    attempt = Flaky(Retryable("429 rate limited", retry_after=3600))
    notices: list[RetryNotice] = []
    with pytest.raises(ModelError, match="asks to wait 3600s"):
        asyncio.run(retrying("p", attempt, FAST, notices.append))
    assert attempt.calls == 1
    assert notices == []


def test_retrying_lets_other_errors_through_at_once() -> None:
    attempt = Flaky(CredentialsError("bad key"))
    with pytest.raises(CredentialsError, match="bad key"):
        asyncio.run(retrying("p", attempt, FAST))
    assert attempt.calls == 1


# --- translation of failures --------------------------------------------------------------


def test_401_names_the_variable_and_the_base_url_on_one_line() -> None:
    failure = status_failure(ENDPOINT, 401, "invalid\n x-api-key")
    assert isinstance(failure, CredentialsError)
    text = str(failure)
    assert "ANTHROPIC_API_KEY" in text and "https://api.example.test" in text
    assert "\n" not in text and "invalid x-api-key" in text


def test_401_without_a_configured_key_says_to_set_it() -> None:
    keyless = Endpoint("openai", "http://localhost:8080/v1", "OPENAI_API_KEY", key_set=False)
    failure = status_failure(keyless, 401, "unauthorized")
    assert isinstance(failure, CredentialsError)
    assert "OPENAI_API_KEY is not set" in str(failure)


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (400, "prompt is too long: 210000 tokens > 200000 maximum", "invalid_request_error"),
        (400, "This model's maximum context length is 8192 tokens", None),
        (400, "too long", "context_length_exceeded"),
        (413, "request too large", "request_too_large"),
    ],
)
def test_context_overflow(status: int, message: str, kind: str | None) -> None:
    assert isinstance(status_failure(ENDPOINT, status, message, kind=kind), ContextOverflowError)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (408, "408 request timeout"),
        (409, "409 conflict"),
        (429, "429 rate limited"),
        (500, "500 server error"),
        (503, "503 service unavailable"),
        (529, "529 overloaded"),
    ],
)
def test_transient_statuses_are_retryable(status: int, reason: str) -> None:
    failure = status_failure(ENDPOINT, status, "x", headers={"retry-after": "2"})
    assert isinstance(failure, Retryable)
    assert failure.reason == reason
    assert failure.retry_after == 2.0


def test_x_should_retry_overrides_the_status() -> None:
    spend_cap = status_failure(ENDPOINT, 429, "spend cap", headers={"x-should-retry": "false"})
    assert isinstance(spend_cap, ModelError)
    forced = status_failure(ENDPOINT, 400, "try again", headers={"x-should-retry": "true"})
    assert isinstance(forced, Retryable)


def test_other_client_errors_carry_the_provider_message() -> None:
    failure = status_failure(ENDPOINT, 404, "model: claude-nope\nnot found")
    assert type(failure) is ModelError
    assert str(failure) == "anthropic: 404 model: claude-nope not found"


def test_errors_inside_a_stream() -> None:
    overloaded = stream_error_failure(ENDPOINT, "overloaded_error", "Overloaded")
    assert isinstance(overloaded, Retryable) and "overloaded" in overloaded.reason
    assert isinstance(stream_error_failure(ENDPOINT, "api_error", "boom"), Retryable)
    invalid = stream_error_failure(ENDPOINT, "invalid_request_error", "bad")
    assert type(invalid) is ModelError


def test_a_retryable_failure_after_a_tool_call_began_is_final() -> None:
    dropped = Retryable("connection dropped")
    assert unless_tool_began(ENDPOINT, dropped, tool_began=False) is dropped
    final = unless_tool_began(ENDPOINT, dropped, tool_began=True)
    assert type(final) is ModelError
    assert "dropped during a tool call" in str(final) and "not retried" in str(final)
