"""Budgets (layer 4): what a user lets the sessions spend and send.

`spend_limits.py`: the spend limits (settings `budget.sessionUsd`, `budget.dailyUsd`,
`--max-budget-usd`) checked around every model request against the usage ledger
(`covey.store.usage`). `rate_limiter.py`: the one provider rate limiter every session of the
user shares, over the store. The session host builds both; the adapters (`covey.models`) see
only the `RateLimiter` protocol it hands them, the agent only its `request_guard`.
"""
