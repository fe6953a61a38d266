"""The exception tree, sorted by audience.

    CoveyError
    ├── UserError              bad input from a person: one line naming the file/flag, exit 2
    │   └── CredentialsError   a missing or rejected API key; names the variable
    ├── ToolError              the model sees it as an error tool result and goes on
    └── RunError               the run ends with a recorded reason, exit 1
        ├── ModelError         the provider failed after retries (overloaded, 5xx, dropped)
        │   └── ContextOverflowError   the conversation no longer fits the model's window
        ├── MaxTurnsExceeded   the run hit --max-turns
        └── LeaseLost          another host took the session over; this one lets go

Foreign exceptions (SDK, sqlite, git) are translated into these once, at the boundary
that calls the foreign code.
"""

from __future__ import annotations

__all__ = [
    "ContextOverflowError",
    "CoveyError",
    "CredentialsError",
    "LeaseLost",
    "MaxTurnsExceeded",
    "ModelError",
    "RunError",
    "ToolError",
    "UserError",
]


class CoveyError(Exception):
    """Base of every error covey raises on purpose."""


class UserError(CoveyError):
    """Bad input from a person. The message is one line: what is wrong, where, how to fix it."""

    exit_code = 2


class CredentialsError(UserError):
    """No usable credentials for a provider. The message names the environment variable."""


class ToolError(CoveyError):
    """A tool call failed in a way the model should see and can react to."""


class RunError(CoveyError):
    """The run cannot go on. `reason` is a short machine-readable word for the session row."""

    exit_code = 1
    reason = "error"


class ModelError(RunError):
    reason = "model_error"


class ContextOverflowError(ModelError):
    reason = "context_overflow"


class MaxTurnsExceeded(RunError):
    reason = "max_turns"


class LeaseLost(RunError):
    """Another host took this session over; this one must stop writing and let go."""

    reason = "lease_lost"
