"""The shared rate limiter: header parsing for both providers, the bucket arithmetic, the
limiter over a real store (FIFO, waiting shown on the row, 429 blocks), settings."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from clitools import covey
from covey.budget.rate_limiter import RATE_LIMIT, SharedRateLimiter
from covey.config import RateLimitSettings, load_settings
from covey.errors import UserError
from covey.models.ratelimit import (
    Bucket,
    Outcome,
    Window,
    admit,
    anthropic_windows,
    learn,
    openai_windows,
    parse_duration,
    parse_rfc3339,
)
from covey.sessions.listing import ALL_KINDS, AgentRow, agent_rows
from covey.store import Store
from covey.store import rate_limits as db
from covey.testing import _anthropic_wire, _openai_wire
from covey.tui.peek import peek_body
from covey.tui.rows import summary_text
from tui_seed import seed_session

NOW = 1_800_000_000.0


def test_anthropic_headers_give_four_windows_with_rfc3339_resets() -> None:
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2027-01-15T08:00:01Z",
        "Anthropic-RateLimit-Input-Tokens-Limit": "400000",
        "anthropic-ratelimit-input-tokens-remaining": "399000",
        "anthropic-ratelimit-input-tokens-reset": "2027-01-15T08:00:00.250Z",
        "anthropic-ratelimit-output-tokens-limit": "80000",
        "anthropic-ratelimit-output-tokens-remaining": "80000",
        "anthropic-ratelimit-output-tokens-reset": "2027-01-15T08:00:00+00:00",
        "anthropic-ratelimit-tokens-limit": "480000",
        "anthropic-ratelimit-tokens-remaining": "479000",
        "anthropic-ratelimit-tokens-reset": "2027-01-15T08:00:00Z",
    }
    windows = {w.kind: w for w in anthropic_windows(headers, NOW)}
    assert set(windows) == {"requests", "input_tokens", "output_tokens", "tokens"}
    base = parse_rfc3339("2027-01-15T08:00:00Z")
    assert base is not None
    assert windows["requests"] == Window("requests", 50, 49, base + 1)
    assert windows["input_tokens"] == Window("input_tokens", 400000, 399000, base + 0.25)
    assert windows["output_tokens"].reset_at == base


def test_openai_headers_give_durations_from_now() -> None:
    headers = {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "149984",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    windows = {w.kind: w for w in openai_windows(headers, NOW)}
    assert windows["requests"] == Window("requests", 60, 59, NOW + 1)
    assert windows["tokens"] == Window("tokens", 150000, 149984, NOW + 360)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("1s", 1.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_unreadable_headers_are_left_out() -> None:
    assert parse_duration("soon") is None and parse_duration("5x") is None
    assert parse_rfc3339("tomorrow") is None
    headers = {"x-ratelimit-limit-requests": "many", "x-ratelimit-remaining-requests": "1"}
    assert openai_windows(headers, NOW) == []
    assert anthropic_windows({}, NOW) == []


def test_the_fake_servers_headers_read_back() -> None:
    a = anthropic_windows(_anthropic_wire.headers("r", 0, limited=True, reset_in=2.5), NOW)
    assert all(w.remaining == 0 for w in a) and len(a) == 4
    o = openai_windows(_openai_wire.headers("r", 0, limited=True, reset_in=2.5), NOW)
    assert [(w.kind, w.remaining, w.reset_at) for w in o] == [
        ("requests", 0, NOW + 2.5),
        ("tokens", 0, NOW + 2.5),
    ]


def test_admit_waits_for_the_reset_and_keeps_the_queue_order() -> None:
    bucket = Bucket("input_tokens", 10_000, 3_000.0, NOW + 4, None)
    taken, wait = admit([bucket], 2_000, NOW)
    assert wait is None and taken[0].remaining == 1_000
    _, wait = admit([bucket], 2_000, NOW, ahead=(2_000,))  # fits alone, not behind the other
    assert wait == pytest.approx(4.0)
    taken, wait = admit([bucket], 2_000, NOW + 4.5)  # the window reset
    assert wait is None and taken[0].remaining == 8_000


def test_learn_takes_the_smaller_remaining_in_one_window_and_a_new_window_whole() -> None:
    local = Bucket("input_tokens", 10_000, 2_000.0, NOW + 4, None)
    same = learn(local, Window("input_tokens", 10_000, 5_000, NOW + 4.1), NOW)
    assert same.remaining == 2_000
    newer = learn(local, Window("input_tokens", 10_000, 9_000, NOW + 1), NOW)
    assert newer.remaining == 9_000 and newer.reset_at == NOW + 1


def _limiter(store: Store, **settings: object) -> SharedRateLimiter:
    return SharedRateLimiter(store, RateLimitSettings.model_validate(settings))


def _seed_empty_bucket(store: Store, endpoint: str, reset_in: float) -> None:
    now = time.time()
    with store.write() as conn:
        db.write_bucket(conn, endpoint, db.BucketRow("requests", 5, 0.0, now + reset_in, None), now)
        db.mark_answered(conn, endpoint, now)


def test_a_waiting_request_shows_on_its_row_and_in_agents_json(tmp_path: Path) -> None:
    asyncio.run(_a_waiting_request_shows_on_its_row_and_in_agents_json(tmp_path))


async def _a_waiting_request_shows_on_its_row_and_in_agents_json(tmp_path: Path) -> None:
    with Store.open() as store:
        sid, epoch = seed_session(store, tmp_path, name="waiter", state="working")
        limiter = _limiter(store)
        limiter.bind(sid, epoch)
        _seed_empty_bucket(store, "http://x#k", reset_in=30)
        task = asyncio.create_task(limiter.reserve("http://x#k", "anthropic", 100))
        for _ in range(100):
            await asyncio.sleep(0.05)
            rows = agent_rows(store, kinds=ALL_KINDS)
            if rows and rows[0].waiting_for == RATE_LIMIT:
                break
        assert rows[0].state == "working" and rows[0].waiting_for == RATE_LIMIT
        listed = covey("agents", "--json", "--all", cwd=tmp_path)
        assert listed.code == 0, listed.err
        [entry] = [e for e in json.loads(listed.out) if e["id"] == sid]
        assert entry["state"] == "working" and entry["waiting_for"] == "rate limit"
        with store.write() as conn:  # the window resets: the request goes, the row says so
            db.write_bucket(
                conn, "http://x#k", db.BucketRow("requests", 5, 5.0, time.time() + 30, None), 0
            )
        ticket = await asyncio.wait_for(task, 10)
        assert agent_rows(store, kinds=ALL_KINDS)[0].waiting_for is None
        limiter.settle(ticket, Outcome(status=200))
        with store.read() as conn:
            assert db.queue_of(conn, "http://x#k") == []


def test_first_come_first_served_across_limiters() -> None:
    asyncio.run(_first_come_first_served_across_limiters())


async def _first_come_first_served_across_limiters() -> None:
    with Store.open() as store:
        endpoint = "http://fifo#k"
        _seed_empty_bucket(store, endpoint, reset_in=0.4)
        order: list[int] = []

        async def one(n: int) -> None:
            ticket = await _limiter(store).reserve(endpoint, "anthropic", 10)
            order.append(n)
            _limiter(store).settle(ticket, Outcome(status=200))

        tasks = []
        for n in range(4):  # each queues before the next starts
            tasks.append(asyncio.create_task(one(n)))
            await asyncio.sleep(0.05)
        with store.write() as conn:  # room for one request per window from now on
            row = db.BucketRow("requests", 1, 0.0, time.time() + 0.3, 0.3)
            db.write_bucket(conn, endpoint, row, 0)
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
        assert order == [0, 1, 2, 3]


def test_a_429_blocks_the_endpoint_until_its_retry_after() -> None:
    asyncio.run(_a_429_blocks_the_endpoint_until_its_retry_after())


async def _a_429_blocks_the_endpoint_until_its_retry_after() -> None:
    with Store.open() as store:
        endpoint = "http://429#k"
        limiter = _limiter(store)
        ticket = await limiter.reserve(endpoint, "openai", 10)
        limiter.settle(ticket, Outcome(status=429, retry_after=0.6))
        with store.read() as conn:
            assert db.blocked_until(conn, endpoint) > time.time() + 0.4
        started = time.monotonic()
        ticket = await limiter.reserve(endpoint, "openai", 10)
        assert time.monotonic() - started >= 0.4
        limiter.settle(ticket, Outcome(status=200))


def test_settings_limits_apply_before_any_header() -> None:
    asyncio.run(_settings_limits_apply_before_any_header())


async def _settings_limits_apply_before_any_header() -> None:
    with Store.open() as store:
        endpoint = "http://settings#k"
        limiter = _limiter(store, anthropic={"requestsPerMinute": 2})
        for _ in range(2):
            limiter.settle(await limiter.reserve(endpoint, "anthropic", 10), Outcome(status=200))
        third = asyncio.create_task(limiter.reserve(endpoint, "anthropic", 10))
        await asyncio.sleep(0.5)
        assert not third.done()  # the third of the minute waits
        third.cancel()
        with pytest.raises(asyncio.CancelledError):
            await third
        with store.read() as conn:
            assert db.queue_of(conn, endpoint) == []  # a cancelled wait leaves no row


def test_rate_limit_settings_are_checked(tmp_path: Path) -> None:
    (tmp_path / ".covey").mkdir()
    path = tmp_path / ".covey" / "settings.json"
    path.write_text(json.dumps({"rateLimits": {"anthropic": {"inputTokensPerMinute": 0}}}))
    with pytest.raises(UserError, match=r"rateLimits\.anthropic\.inputTokensPerMinute"):
        load_settings(tmp_path)
    path.write_text(json.dumps({"rateLimits": {"enabled": "no"}}))
    with pytest.raises(UserError, match=r"rateLimits\.enabled must be true or false"):
        load_settings(tmp_path)
    good = {"anthropic": {"inputTokensPerMinute": 400000, "requestsPerMinute": 50}}
    path.write_text(json.dumps({"rateLimits": good}))
    limits = load_settings(tmp_path).settings.rateLimits
    assert limits.enabled and limits.anthropic.requestsPerMinute == 50


def test_a_bad_rate_limit_setting_is_one_line_and_exit_2(git_repo: Path) -> None:
    (git_repo / ".covey").mkdir()
    settings = {"rateLimits": {"openai": {"requestsPerMinute": "fast"}}}
    (git_repo / ".covey" / "settings.json").write_text(json.dumps(settings))
    run = covey("-p", "hi", "--model", "openai:gpt-4.1", cwd=git_repo, env={"OPENAI_API_KEY": "k"})
    assert run.code == 2
    assert len(run.err.strip().splitlines()) == 1
    assert "rateLimits.openai.requestsPerMinute" in run.err


def test_the_agent_view_says_a_working_session_waits_for_the_rate_limit() -> None:
    fields = dict(id="s1", name=None, kind="background", reason=None, summary=None, cwd="/r")
    row = AgentRow(
        **fields, state="working", worktree=None, branch=None, agent=None,
        created=NOW, updated=NOW, cost_usd=0.0, waiting=RATE_LIMIT,
    )  # fmt: skip
    assert row.waiting_for == "rate limit" and row.as_json()["question"] is None
    assert summary_text(row) == "waiting for rate limit"
    assert peek_body(row, ["Reading the notes."]).splitlines() == [
        "waiting for rate limit",
        "Reading the notes.",
    ]


def test_stale_queue_rows_go_and_live_ones_stay(tmp_path: Path) -> None:
    """A dead process's rows, a waiting row nobody looked at for the waiting TTL and a request
    in flight past the flight TTL are forgotten; the rest stay, and what waits ahead of a row
    and whether one is in flight are read from what stays."""
    now = 1000.0
    with Store.open(tmp_path / "covey.db") as store, store.write() as conn:
        e = "http://q#k"
        rows = {
            "dead": db.enqueue(conn, e, "gone", None, 1, now),
            "old wait": db.enqueue(conn, e, "live", None, 2, now - 31),
            "old flight": db.enqueue(conn, e, "live", None, 3, now - 901),
            "flight": db.enqueue(conn, e, "live", None, 4, now - 500),
            "wait": db.enqueue(conn, e, "live", None, 5, now - 10),
            "me": db.enqueue(conn, e, "live", None, 6, now),
            "other endpoint": db.enqueue(conn, "http://other#k", "gone", None, 7, now),
        }
        db.grant(conn, rows["old flight"], now - 901)
        db.grant(conn, rows["flight"], now - 500)
        db.drop_stale(
            conn, e, now, alive=lambda h: h == "live", waiting_ttl_s=30.0, flight_ttl_s=900.0
        )
        left = {q.id for q in db.queue_of(conn, e)}
        assert left == {rows["flight"], rows["wait"], rows["me"]}
        assert db.waiting_ahead(conn, e, rows["me"]) == (5,)
        assert db.any_in_flight(conn, e)
        assert [q.tokens for q in db.queue_of(conn, "http://other#k")] == [7]
