"""The shared rate limiter end to end: many `covey -p` processes against a fake provider that
enforces a rate window, and a model whose limiter waits are not retries."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from covey.budget.rate_limiter import SharedRateLimiter
from covey.config import RateLimitSettings
from covey.messages import Message
from covey.models.anthropic import AnthropicModel
from covey.models.base import ModelRequest
from covey.models.retry import RetryPolicy
from covey.models.script import Script
from covey.sessions.listing import ALL_KINDS, agent_rows
from covey.store import Store
from covey.testing.fakeserver import FakeServer, RateWindow

SESSIONS = 12
READ_THEN_ANSWER = {
    "turns": [
        {"tool_calls": [{"name": "Read", "input": {"file_path": "notes.txt"}}]},
        {"text": "done"},
    ]
}


def _watch_waiting(stop: threading.Event, seen: set[str]) -> None:
    """Every `waiting_for` a working session shows while the runs go on."""
    with Store.open() as store:
        while not stop.is_set():
            for row in agent_rows(store, kinds=ALL_KINDS):
                if row.state == "working" and row.waiting_for:
                    seen.add(row.waiting_for)
            stop.wait(0.05)


@pytest.mark.timeout(400)  # twelve processes start slowly on a loaded 2-core machine
def test_twelve_processes_share_the_limiter_with_almost_no_429(git_repo: Path) -> None:
    (git_repo / "notes.txt").write_text("the notes\n")
    (git_repo / ".covey").mkdir()
    retries = {"retries": {"maxRetries": 10, "initialDelay": 0.05, "maxDelay": 0.5}}
    (git_repo / ".covey" / "settings.json").write_text(json.dumps(retries))
    window = RateWindow(seconds=2.0, input_tokens=4_000)  # two requests a window
    with FakeServer(Script.model_validate(READ_THEN_ANSWER), window=window) as srv:
        env = {**os.environ, "ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": srv.url}
        seen: set[str] = set()
        stop = threading.Event()
        watcher = threading.Thread(target=_watch_waiting, args=(stop, seen))
        watcher.start()
        try:
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "covey",
                        "-p",
                        "read the notes",
                        "--model",
                        "anthropic:claude-sonnet-4-5",
                        "--output-format",
                        "json",
                    ],
                    cwd=git_repo,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(SESSIONS)
            ]
            results = [p.communicate(timeout=400) for p in procs]
        finally:
            stop.set()
            watcher.join()
        assert srv.window is not None
        refused, admitted = srv.window.refused, srv.window.admitted
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert json.loads(out)["result"] == "done"
    assert admitted == 2 * SESSIONS
    assert refused <= 3, f"{refused} requests were refused with 429"
    assert seen == {"rate limit"}


def test_waiting_for_the_limiter_uses_no_retries() -> None:
    asyncio.run(_waiting_for_the_limiter_uses_no_retries())


async def _waiting_for_the_limiter_uses_no_retries() -> None:
    script = Script.model_validate({"turns": [{"text": "ok"}]})
    with FakeServer(script, window=RateWindow(seconds=0.8, requests=1)) as srv, Store.open() as st:
        limiter = SharedRateLimiter(st, RateLimitSettings())
        model = AnthropicModel(
            "claude-sonnet-4-5",
            api_key="k",
            base_url=srv.url,
            retry=RetryPolicy(max_retries=0),  # a single 429 would fail a request
            limiter=limiter,
        )
        request = ModelRequest(system="s", messages=[Message.user("hi")])
        await model.complete(request)  # its answer tells the limiter the window
        started = time.monotonic()
        replies = await asyncio.gather(*(model.complete(request) for _ in range(4)))
        assert [r.message.text for r in replies] == ["ok"] * 4
        assert srv.window is not None and srv.window.refused == 0
        assert limiter.waits >= 3
        assert time.monotonic() - started >= 3 * 0.8 - 0.8  # one request a window
