"""The hook around every model request of a run, compaction's included: it may refuse the
request by raising a `RunError` (a session's budget, `covey.budget.spend_limits`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from covey.models.base import Model, ModelRequest

__all__ = ["RequestGuard", "unguarded"]

RequestGuard = Callable[[ModelRequest, Model], AbstractAsyncContextManager[None]]
"""Entered just before each model request and left when it is answered."""


def unguarded(_request: ModelRequest, _model: Model) -> AbstractAsyncContextManager[None]:
    return contextlib.nullcontext()
