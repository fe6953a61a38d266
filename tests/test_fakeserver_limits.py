"""The fake provider's advertised rate limits (`AdvertisedLimits`, `--advertise-*`): reported
in each provider's headers, counted per minute, and read by the shared limiter, which lets a
burst through when they allow it and queues it when they do not."""

from __future__ import annotations

import asyncio
import http.client
import subprocess
import sys
import time
from pathlib import Path

from covey.budget.rate_limiter import SharedRateLimiter
from covey.config import RateLimitSettings
from covey.messages import Message
from covey.models.anthropic import AnthropicModel
from covey.models.base import ModelRequest
from covey.models.ratelimit import anthropic_windows, openai_windows
from covey.models.retry import RetryPolicy
from covey.models.script import Script
from covey.store import Store
from covey.testing.fakeserver import AdvertisedLimits, FakeServer
from test_fakeserver import HELLO, KEY, post

USAGE = {"input": 1200, "output": 40, "cache_read": 300, "cache_write": 50}
ADVERTISED = AdvertisedLimits(requests=500, input_tokens=1_000_000, output_tokens=100_000)


def _script(**turn: object) -> Script:
    return Script.model_validate({"turns": [{"text": "ok", "usage": USAGE, **turn}]})


def test_anthropic_headers_report_the_advertised_minute() -> None:
    with FakeServer(_script(), advertised=ADVERTISED) as srv:
        for _ in range(2):
            body = {"model": "m", "max_tokens": 5, "messages": HELLO}
            status, headers, _ = post(srv, "/v1/messages", body, {"x-api-key": KEY})
            assert status == 200
    now = time.time()
    windows = {w.kind: w for w in anthropic_windows(headers, now)}
    assert {k: (w.limit, w.remaining) for k, w in windows.items()} == {
        "requests": (500, 498),
        "input_tokens": (1_000_000, 1_000_000 - 2 * 1250),  # input + cache writes
        "output_tokens": (100_000, 100_000 - 2 * 40),
        "tokens": (100_000, 100_000 - 2 * 40),  # the most restrictive of the two
    }
    resets = {w.reset_at for w in windows.values()}
    assert len(resets) == 1 and now < resets.pop() <= now + 60.5  # the minute's end


def test_openai_headers_report_input_and_output_as_one_token_limit() -> None:
    with FakeServer(_script(), advertised=ADVERTISED) as srv:
        body = {"model": "m", "messages": HELLO}
        status, headers, _ = post(srv, "/v1/chat/completions", body, {"x-api-key": KEY})
    assert status == 200
    now = time.time()
    windows = {w.kind: w for w in openai_windows(headers, now)}
    assert (windows["requests"].limit, windows["requests"].remaining) == (500, 499)
    assert (windows["tokens"].limit, windows["tokens"].remaining) == (1_100_000, 1_100_000 - 1290)
    assert now + 55 < windows["tokens"].reset_at <= now + 60.5


def test_a_429_reports_none_left_of_the_advertised_limits() -> None:
    fault = {"faults": [{"status": 429, "retry_after": 0.5}]}
    with FakeServer(_script(**fault), advertised=ADVERTISED) as srv:
        body = {"model": "m", "max_tokens": 5, "messages": HELLO}
        status, headers, _ = post(srv, "/v1/messages", body, {"x-api-key": KEY})
    assert status == 429
    windows = anthropic_windows(headers, time.time())
    assert {w.limit for w in windows} >= {500, 1_000_000} and {w.remaining for w in windows} == {0}


def test_cli_advertises_the_limits_it_is_given(tmp_path: Path) -> None:
    script_file = tmp_path / "turns.yaml"
    script_file.write_text("turns:\n  - text: hi\n", encoding="utf-8")
    port_file = tmp_path / "port"
    cmd = [sys.executable, "-m", "covey.testing.fakeserver", "--script", str(script_file)]
    cmd += ["--port", "0", "--port-file", str(port_file)]
    bad = subprocess.run([*cmd, "--advertise-requests", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and not port_file.exists()
    assert bad.stderr.count("\n") == 1 and "--advertise-requests" in bad.stderr
    proc = subprocess.Popen([*cmd, "--advertise-input-tokens", "7000000"], stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        conn = http.client.HTTPConnection("127.0.0.1", int(port_file.read_text()), timeout=10)
        body = b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}'
        conn.request("POST", "/v1/messages", body=body, headers={"x-api-key": KEY})
        resp = conn.getresponse()
        resp.read()
        conn.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert resp.getheader("anthropic-ratelimit-input-tokens-limit") == "7000000"
    assert resp.getheader("anthropic-ratelimit-requests-limit") == "4000"  # the made-up figure


def test_the_limiter_lets_a_burst_through_when_the_advertised_limits_allow() -> None:
    roomy = AdvertisedLimits(requests=1_000, seconds=1.0)
    assert asyncio.run(_burst(roomy)) == 0


def test_the_limiter_queues_a_burst_the_advertised_limits_cannot_take() -> None:
    tight = AdvertisedLimits(requests=3, seconds=1.0)
    assert asyncio.run(_burst(tight)) >= 3


async def _burst(limits: AdvertisedLimits) -> int:
    """How many of 8 concurrent requests had to wait for the limiter, after one request
    taught it the endpoint's limits."""
    script = Script.model_validate({"turns": [{"text": "ok", "delay_s": 0.2}]})
    with FakeServer(script, advertised=limits) as srv, Store.open() as store:
        limiter = SharedRateLimiter(store, RateLimitSettings())
        model = AnthropicModel(
            "claude-sonnet-4-5",
            api_key="k",
            base_url=srv.url,
            retry=RetryPolicy(max_retries=0),
            limiter=limiter,
        )
        request = ModelRequest(system="s", messages=[Message.user("hi")])
        await model.complete(request)
        replies = await asyncio.gather(*(model.complete(request) for _ in range(8)))
        assert [r.message.text for r in replies] == ["ok"] * 8
        return limiter.waits
