"""Spend limits: settings `budget.sessionUsd` and `budget.dailyUsd`, and `--max-budget-usd`.

One `SessionBudget` per hosted session guards every model request of it (its main agent and
each subagent: `Agent(request_guard=...)`). Before a request it reads from the ledger
(`covey.store.usage`) what the session spent, its subagents and teammates included (the tree
under its root session), and what the user spent today (every session, every process, since
local midnight); it adds what requests in flight may cost, and estimates the request's cost
from its size:

    input  = estimate_tokens(system + tools + messages)   (covey.models.tokens, ≈ 4 bytes)
    output = OUTPUT_SHARE × max_tokens
    cost   = both at the model's uncached prices           (covey.models.pricing)

When a limit cannot cover that, the request is not sent: `BudgetExceeded`. Otherwise its
estimate is reserved before it is sent, in the same write transaction as the check
(`covey.store.budget_holds`: the session's row, counted by every other process while the
session's lease is live), so sessions in several processes checking at once cannot all spend
the same remainder. The reservation is given back once the response's usage row is in the
ledger (the persister writes it before the agent's next await; the give-back is scheduled
after that), so a request is never counted by nobody. Only a response longer than its
estimate can overrun a limit, by less than that one request. A model without a price costs
nothing and never stops. At `WARN_AT` of a limit, once per budget per session
(a daily budget: once per day), the host is told (`BudgetWarning`: stream-json, the
Notification hook) and a `budget_warning` event is stored.

A background session stopped by a budget waits in `needs_input` (`waiting_for: "budget"`);
`covey reply ID "raise to 5"` stores the raise with the session (`meta.budget_raises`), or a
settings change and `covey respawn ID` continue it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from covey.agent.events import BudgetWarning
from covey.config import BudgetSettings
from covey.errors import BudgetExceeded, CoveyError
from covey.messages import Message, dump_message
from covey.models.base import Model, ModelRequest
from covey.models.pricing import PriceSetting, price_for
from covey.models.tokens import estimate_tokens
from covey.store import Store
from covey.store.budget_holds import reserved_usd, set_reserved
from covey.store.events import append_event, read_events
from covey.store.session_meta import Pending, with_meta
from covey.store.sessions import get_session, update_session
from covey.store.usage import cost_since, session_usage

__all__ = [
    "BUDGET_CONTINUE_PROMPT",
    "OUTPUT_SHARE",
    "WARN_AT",
    "BudgetLimits",
    "InputTokens",
    "SessionBudget",
    "budget_pending",
    "budget_raise",
    "parse_raise",
    "raise_budget",
    "request_cost",
    "warn_host",
    "warning_text",
]

WARN_AT = 0.8
"""The share of a limit at which the session is warned."""
OUTPUT_SHARE = 0.25
"""The share of a request's `max_tokens` its estimate counts as output (a full-length answer
is rare; counting it all would stop sessions far below their limit)."""

Warn = Callable[[BudgetWarning], Awaitable[None]]


def warn_host(
    observers: Sequence[Callable[[BudgetWarning], None]],
    notify: Callable[[str, str], Awaitable[None]],
    session_id: str,
) -> Warn:
    """How a host is warned: its agent's observers (stream-json, the screen) are told, and
    the Notification hook fires `budget_warning`."""

    async def warn(warning: BudgetWarning) -> None:
        for observer in observers:
            observer(warning)
        await notify("budget_warning", f"session {session_id}: {warning_text(warning)}")

    return warn


def warning_text(warning: BudgetWarning) -> str:
    """`session budget 83% used ($0.83 of $1.00)`."""
    used = warning.spent_usd / warning.limit_usd
    return (
        f"{warning.budget} budget {used:.0%} used "
        f"(${warning.spent_usd:.2f} of ${warning.limit_usd:.2f})"
    )


@dataclass(frozen=True)
class BudgetLimits:
    """The configured limits in USD (None: none)."""

    session_usd: float | None = None
    daily_usd: float | None = None

    @classmethod
    def of(cls, settings: BudgetSettings, max_budget_usd: float | None = None) -> BudgetLimits:
        """`--max-budget-usd` over settings `budget.sessionUsd`."""
        return cls(max_budget_usd or settings.sessionUsd, settings.dailyUsd)

    def raised(self, raises: Mapping[str, float]) -> dict[str, float]:
        """The limits in force: a raise counts where it is above a configured limit."""
        limits = {"session": self.session_usd, "daily": self.daily_usd}
        return {k: max(v, raises.get(k, 0.0)) for k, v in limits.items() if v is not None}


class InputTokens:
    """Input tokens of a request, estimated once per message (a conversation only grows)."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[Message, int, int]] = {}
        """id of a messages list → (its first message, how many were counted, their tokens)."""

    def __call__(self, request: ModelRequest) -> int:
        tools = sum(
            estimate_tokens(t.name + t.description + json.dumps(t.input_schema))
            for t in request.tools
        )
        messages = request.messages
        first, counted, tokens = self._seen.get(id(messages), (None, 0, 0))
        if not messages or first is not messages[0] or counted > len(messages):
            counted, tokens = 0, 0
        tokens += sum(estimate_tokens(json.dumps(dump_message(m))) for m in messages[counted:])
        if messages:
            self._seen[id(messages)] = (messages[0], len(messages), tokens)
        return estimate_tokens(request.system) + tools + tokens


def request_cost(
    model: str,
    input_tokens: int,
    max_tokens: int,
    pricing: Mapping[str, PriceSetting] | None = None,
) -> float:
    """What a request may cost in USD: its input at the uncached price, plus `OUTPUT_SHARE`
    of `max_tokens` as output (0 for a model without a price)."""
    price = price_for(model, pricing)
    if price is None:
        return 0.0
    return (input_tokens * price.input + max_tokens * OUTPUT_SHARE * price.output) / 1e6


def _local_midnight(now: float) -> float:
    return (
        datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    )


def _root_of(conn: sqlite3.Connection, session_id: str) -> str:
    """The top-level session above `session_id` (a subagent's or a teammate's lead)."""
    current, seen = session_id, {session_id}
    while (row := get_session(conn, current)) is not None and row.parent_id is not None:
        if row.parent_id in seen:
            break
        current = row.parent_id
        seen.add(current)
    return current


class SessionBudget:
    """The budget check of one hosted session: a `request_guard` for its agents."""

    def __init__(
        self,
        store: Store,
        session_id: str,
        limits: BudgetLimits,
        *,
        pricing: Mapping[str, PriceSetting] | None = None,
        warn: Warn | None = None,
    ) -> None:
        self.store, self.session_id, self.limits = store, session_id, limits
        self.pricing = pricing
        self.warn = warn
        """Told of each warning (the host's observers and the Notification hook)."""
        self._tokens = InputTokens()
        self._in_flight: list[float] = []
        """Estimates of this host's requests sent and not answered yet."""
        self._root: str | None = None
        self._warned: set[str] | None = None

    @property
    def active(self) -> bool:
        return self.limits.session_usd is not None or self.limits.daily_usd is not None

    @contextlib.asynccontextmanager
    async def __call__(self, request: ModelRequest, model: Model) -> AsyncIterator[None]:
        """Check the request against the limits (raises `BudgetExceeded` when one cannot
        cover it) and count it as in flight while it runs."""
        if not self.active:
            yield
            return
        estimate = request_cost(model.name, self._tokens(request), request.max_tokens, self.pricing)
        # check and reserve in one write transaction: other processes' checks wait for it,
        # and parallel subagents of this host see each other's requests in flight
        warnings, exceeded = self._check(estimate)
        try:
            for warning in warnings:  # a limit reached now was 80% used, too
                if self.warn is not None:
                    await self.warn(warning)
            if exceeded is not None:
                raise exceeded
            yield
        finally:
            if exceeded is None:
                self._in_flight.remove(estimate)
                # after the agent's next await: its response's usage row is in the ledger
                asyncio.get_running_loop().call_soon(self._publish)

    def _publish(self) -> None:
        """What this host's requests in flight may cost, for every other check to count. A
        give-back that fails (the store closed) leaves more counted, never less, until the
        session's lease ends."""
        with contextlib.suppress(sqlite3.Error, CoveyError), self.store.write() as conn:
            set_reserved(conn, self.session_id, sum(self._in_flight))

    def _check(self, estimate: float) -> tuple[list[BudgetWarning], BudgetExceeded | None]:
        """The warnings due (recorded as given), and the limit the request would overrun;
        when none, the request's estimate is reserved (in the same transaction)."""
        now = time.time()
        day = datetime.fromtimestamp(now).date().isoformat()
        before = len(self._in_flight)
        try:
            return self._check_in_one_transaction(estimate, now, day)
        except BaseException:  # not committed (busy, disk full): the estimate reserves nothing
            del self._in_flight[before:]
            raise

    def _check_in_one_transaction(
        self, estimate: float, now: float, day: str
    ) -> tuple[list[BudgetWarning], BudgetExceeded | None]:
        with self.store.write() as conn:
            limits, spent, held = self._spent(conn, now)
            exceeded = next(
                (
                    BudgetExceeded(budget, spent[budget] + held[budget], limit, estimate)
                    for budget, limit in limits.items()
                    if spent[budget] + held[budget] + estimate > limit
                ),
                None,
            )
            if exceeded is None:
                self._in_flight.append(estimate)
                set_reserved(conn, self.session_id, sum(self._in_flight))
            warnings = []
            for budget, limit in limits.items():
                key = budget if budget == "session" else f"daily:{day}"
                if spent[budget] >= WARN_AT * limit and key not in self._warned_in(conn):
                    self._warned_in(conn).add(key)
                    warnings.append(BudgetWarning(budget, spent[budget], limit))
                    data = {"budget": budget, "spent_usd": spent[budget], "limit_usd": limit}
                    append_event(conn, self.session_id, "budget_warning", {**data, "day": day})
        return warnings, exceeded

    def _spent(
        self, conn: sqlite3.Connection, now: float
    ) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        """The limits in force; per limit, what the ledger says was spent, and what requests
        in flight hold (this host's, and every other live session's the limit covers)."""
        if self._root is None:
            self._root = _root_of(conn, self.session_id)
        row = get_session(conn, self.session_id)
        limits = self.limits.raised(row.meta.budget_raises if row is not None else {})
        mine = sum(self._in_flight)
        spent, held = {"session": 0.0, "daily": 0.0}, {"session": mine, "daily": mine}
        if "session" in limits:
            spent["session"] = session_usage(conn, self._root)[1]
            held["session"] += reserved_usd(
                conn, now, excluding=self.session_id, tree_of=self._root
            )
        if "daily" in limits:
            spent["daily"] = cost_since(conn, _local_midnight(now))
            held["daily"] += reserved_usd(conn, now, excluding=self.session_id)
        return limits, spent, held

    def _warned_in(self, conn: sqlite3.Connection) -> set[str]:
        if self._warned is None:
            self._warned = _warned_before(conn, self.session_id)
        return self._warned


def _warned_before(conn: sqlite3.Connection, session_id: str) -> set[str]:
    """The warnings this session was given already (by an earlier host, too)."""
    return {
        str(e.data.get("budget"))
        if e.data.get("budget") == "session"
        else f"daily:{e.data.get('day')}"
        for e in read_events(conn, session_id=session_id)
        if e.type == "budget_warning"
    }


_AMOUNT = re.compile(r"\$?\s*(\d+(?:\.\d+)?)")


def parse_raise(text: str) -> float | None:
    """The dollar amount in a reply (`raise to 5`, `$7.50`, `10 dollars`); None if none."""
    found = _AMOUNT.search(text)
    if found is None:
        return None
    amount = float(found.group(1))
    return amount if amount > 0 else None


def budget_pending(error: BudgetExceeded, session_id: str) -> Pending:
    """What a background session stopped by `error` waits for."""
    setting = "budget.sessionUsd" if error.budget == "session" else "budget.dailyUsd"
    text = (
        f'{error.summary}. Reply with a new limit (covey reply {session_id} "raise to '
        f'{_suggest(error.limit_usd)}"), or change settings {setting} and covey respawn '
        f"{session_id}"
    )
    return Pending(kind="budget", text=text, budget=error.budget)


def _suggest(limit: float) -> str:
    return f"{max(limit * 2, limit + 1):g}"


BUDGET_CONTINUE_PROMPT = (
    "The session stopped at its spend limit and may go on now. Continue the task where you "
    "left off."
)


def budget_raise(pending: Pending, reply: str) -> tuple[str, float] | None:
    """The raise a reply to a budget stop asks for: (`session` | `daily`, USD), or None (a
    respawn, a reply without an amount: checked again with the settings as they are now)."""
    amount = parse_raise(reply)
    return (pending.budget or "session", amount) if amount is not None else None


def raise_budget(store: Store, session_id: str, epoch: int, budget: str, usd: float) -> None:
    """Store a raise of `budget` to `usd` with the session (see `BudgetLimits.raised`)."""
    with store.write() as conn:
        row = get_session(conn, session_id)
        if row is not None:
            raises: dict[str, Any] = {**row.meta.budget_raises, budget: usd}
            meta = with_meta(row.meta, budget_raises=raises)
            update_session(conn, session_id, epoch, meta=meta)
