"""The budget check without a provider: estimates, requests in flight, raises, warnings."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from covey.agent.events import BudgetWarning
from covey.budget.spend_limits import (
    BudgetLimits,
    InputTokens,
    SessionBudget,
    parse_raise,
    raise_budget,
    request_cost,
)
from covey.config import BudgetSettings
from covey.errors import BudgetExceeded, StoreBusy
from covey.messages import Message, Usage, dump_message
from covey.models.base import ModelRequest
from covey.models.script import Script
from covey.models.scripted import ScriptedModel
from covey.models.tokens import estimate_tokens
from covey.store import Store
from covey.store.budget_holds import held_by, set_reserved
from covey.store.sessions import release_lease
from covey.store.usage import record_usage
from tui_seed import seed_session, store

__all__ = ["store"]  # the fixture, used by name

SONNET = ScriptedModel(Script(turns=[]), name="anthropic:claude-sonnet-4-5")


def _request(*texts: str) -> ModelRequest:
    return ModelRequest(system="be brief", messages=[Message.user(t) for t in texts])


@pytest.mark.parametrize(
    ("reply", "usd"),
    [("raise to 5", 5.0), ("$7.50 please", 7.5), ("make it 10 dollars", 10.0), ("no", None)],
)
def test_a_reply_names_the_new_limit(reply: str, usd: float | None) -> None:
    assert parse_raise(reply) == usd


def test_the_input_estimate_counts_a_growing_conversation_once_per_message() -> None:
    tokens = InputTokens()
    messages: list[Message] = []
    for i in range(5):
        messages.append(Message.user(f"message {i} " * (i + 1)))
        request = ModelRequest(system="be brief", messages=messages)
        full = estimate_tokens("be brief") + sum(
            estimate_tokens(json.dumps(dump_message(m))) for m in messages
        )
        assert tokens(request) == full == InputTokens()(request)
    assert tokens(ModelRequest(system="be brief", messages=messages[:2])) == InputTokens()(
        ModelRequest(system="be brief", messages=messages[:2])
    )


def test_a_model_without_a_price_costs_nothing() -> None:
    assert request_cost("scripted:x.yaml", 10_000, 16_000) == 0.0
    assert request_cost("anthropic:claude-sonnet-4-5", 10_000, 16_000) > 0


def test_requests_in_flight_count_against_the_limit(store: Store, tmp_path: Path) -> None:
    sid, _ = seed_session(store, tmp_path, name=None, state="working", kind="print")
    request = _request("hello")
    one = request_cost(SONNET.name, InputTokens()(request), request.max_tokens)
    budget = SessionBudget(store, sid, BudgetLimits(session_usd=one * 1.5))

    async def run() -> None:
        async with budget(request, SONNET):  # the first request is still running
            with pytest.raises(BudgetExceeded) as stopped:
                async with budget(request, SONNET):
                    pass
            assert stopped.value.budget == "session"
        async with budget(request, SONNET):  # answered (and it cost nothing): room again
            pass

    asyncio.run(run())


def test_a_reservation_counts_for_other_sessions_while_its_host_holds_the_lease(
    store: Store, tmp_path: Path
) -> None:
    """A lead and its teammate (two hosts, one tree) and a stranger under the daily limit: a
    request in flight of one is counted by the others' checks until its host lets go."""
    lead, _ = seed_session(store, tmp_path, name=None, state="working", kind="print")
    mate, _ = seed_session(store, tmp_path, name="mate", state="working", kind="print")
    other, _ = seed_session(store, tmp_path, name=None, state="working", kind="print")
    with store.write() as conn:
        conn.execute("UPDATE sessions SET parent_id = ? WHERE id = ?", (lead, mate))
    request = _request("hello")
    one = request_cost(SONNET.name, InputTokens()(request), request.max_tokens)
    limits = BudgetLimits(session_usd=one * 1.5, daily_usd=one * 2.5)
    lead_budget, mate_budget = (SessionBudget(store, s, limits) for s in (lead, mate))
    other_budget = SessionBudget(store, other, BudgetLimits(daily_usd=one * 2.5))

    async def run() -> None:
        async with lead_budget(request, SONNET):
            with store.read() as conn:  # published in the lead's own row
                assert held_by(conn, lead) == one
            with pytest.raises(BudgetExceeded) as stopped:  # the tree's session budget
                async with mate_budget(request, SONNET):
                    pass
            assert stopped.value.budget == "session"
            async with other_budget(request, SONNET):  # the day has room for two
                with pytest.raises(BudgetExceeded) as stopped:
                    async with other_budget(request, SONNET):
                        pass
                assert stopped.value.budget == "daily"
        await asyncio.sleep(0)  # the give-back runs after the agent's next await
        async with mate_budget(request, SONNET):  # answered (it cost nothing): room again
            pass

    asyncio.run(run())
    with store.write() as conn:  # a host that died holding a reservation…
        set_reserved(conn, mate, one * 10)
        host, epoch = conn.execute(
            "SELECT host_id, epoch FROM sessions WHERE id = ?", (mate,)
        ).fetchone()
        release_lease(conn, mate, host, epoch)

    async def after() -> None:  # …holds nothing once its lease is gone
        async with lead_budget(request, SONNET):
            pass

    asyncio.run(after())


def test_a_raise_counts_above_the_configured_limit_only(store: Store, tmp_path: Path) -> None:
    sid, epoch = seed_session(store, tmp_path, name=None, state="working", kind="background")
    with store.write() as conn:
        record_usage(conn, sid, "main", "claude-sonnet-4-5", Usage(input=1), 0.95)
    request = _request("hello")
    budget = SessionBudget(store, sid, BudgetLimits.of(BudgetSettings(sessionUsd=1.0)))

    async def check() -> None:
        async with budget(request, SONNET):
            pass

    with pytest.raises(BudgetExceeded):
        asyncio.run(check())
    raise_budget(store, sid, epoch, "session", 0.5)  # below the configured $1: no effect
    with pytest.raises(BudgetExceeded):
        asyncio.run(check())
    raise_budget(store, sid, epoch, "session", 5.0)
    asyncio.run(check())
    assert BudgetLimits.of(BudgetSettings(sessionUsd=1.0), 2.0).session_usd == 2.0


def test_a_warning_comes_once_per_budget_even_for_the_next_host(
    store: Store, tmp_path: Path
) -> None:
    sid, _ = seed_session(store, tmp_path, name=None, state="working", kind="print")
    with store.write() as conn:
        record_usage(conn, sid, "main", "claude-sonnet-4-5", Usage(input=1), 8.5)
    heard: list[BudgetWarning] = []

    async def warn(warning: BudgetWarning) -> None:
        heard.append(warning)

    limits = BudgetLimits(session_usd=10.0, daily_usd=100.0)

    async def two_requests(budget: SessionBudget) -> None:
        for _ in range(2):
            async with budget(_request("hi"), SONNET):
                pass

    asyncio.run(two_requests(SessionBudget(store, sid, limits, warn=warn)))
    assert heard == [BudgetWarning("session", 8.5, 10.0)]
    asyncio.run(two_requests(SessionBudget(store, sid, limits, warn=warn)))  # a new host
    assert len(heard) == 1
    other, _ = seed_session(store, tmp_path, name=None, state="completed", kind="print")
    with store.write() as conn:  # another session's spending counts for the day
        record_usage(conn, other, "main", "claude-sonnet-4-5", Usage(input=1), 80.0)
    asyncio.run(two_requests(SessionBudget(store, sid, limits, warn=warn)))
    assert heard[1:] == [BudgetWarning("daily", 88.5, 100.0)]


def test_a_check_whose_transaction_failed_reserves_nothing(store: Store, tmp_path: Path) -> None:
    """The store stayed locked past the retry time at the check (another process holding
    it): StoreBusy, and the request's estimate is not left counted for the session's later
    requests. (A failure after the estimate was taken, inside the transaction: a full disk,
    an I/O error, is undone the same way, `_check`; not simulated here.)"""
    sid, _ = seed_session(store, tmp_path, name=None, state="working", kind="print")
    request = _request("hello")
    one = request_cost(SONNET.name, InputTokens()(request), request.max_tokens)
    with Store.open(store.path, retry_for_s=0.2) as impatient:
        budget = SessionBudget(impatient, sid, BudgetLimits(session_usd=one * 1.5))
        other = sqlite3.connect(store.path)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the store

        async def run() -> None:
            with pytest.raises(StoreBusy):
                async with budget(request, SONNET):
                    pass
            other.rollback()
            async with budget(request, SONNET):  # room for one request: nothing in flight
                pass

        try:
            asyncio.run(run())
        finally:
            other.close()
