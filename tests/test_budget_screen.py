"""The session screen at its budget: the turn ends before the request it cannot cover, and
the screen says why and what to raise."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Static

from covey.models.script import Script
from covey.sessions.interactive import ForegroundHost
from covey.store import Store
from covey.store.sessions import get_session
from covey.testing.fakeserver import FakeServer
from covey.tui.session_app import SessionApp
from tui_seed import store, wait_for

__all__ = ["store"]  # the fixture, used by name

USAGE = {"input": 30_000, "output": 500}
"""$0.0975 a request: a $1 budget stops after ten (see test_budget)."""


def test_the_session_screen_ends_the_turn_at_the_budget_and_says_so(
    store: Store, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    glob = {"tool_calls": [{"name": "Glob", "input": {"pattern": "*"}}], "usage": USAGE}
    script = Script.model_validate({"turns": [{**glob, "delay_s": 0.3}] + [glob] * 19})
    with FakeServer(script) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        host = ForegroundHost(
            store, git_repo, model="anthropic:claude-sonnet-4-5", max_budget_usd=1.0
        )
        messages: list[str] = []

        async def run() -> None:
            app = SessionApp(store, host=host, initial_prompt="list the files")
            async with app.run_test(size=(200, 30)) as pilot:
                screen = app.screen
                show = screen.show_message  # every message the screen shows, in order

                def recorded(text: str) -> None:
                    messages.append(text)
                    show(text)

                screen.show_message = recorded  # type: ignore[method-assign]
                await wait_for(pilot, lambda: host.error is not None, "the turn to end")
                await wait_for(pilot, lambda: not host.running, "the turn to end")
                shown = str(screen.query_one("#session-message", Static).render())
                assert shown == messages[-1]

        asyncio.run(run())
        assert len(server.requests) == 10
    assert any(m.startswith("warning: session budget 8") for m in messages), messages
    assert messages[-1].startswith("session budget of $1.00 reached")
    assert "raise --max-budget-usd or settings budget.sessionUsd" in messages[-1]
    assert host.session_id is not None
    with store.read() as conn:
        row = get_session(conn, host.session_id)
    assert row is not None and row.state == "stopped"
