"""The exception tree, sorted by audience.

    CoveyError
    ├── UserError              bad input from a person: one line naming the file/flag, exit 2
    │   └── CredentialsError   a missing or rejected API key; names the variable
    ├── ToolError              the model sees it as an error tool result and goes on
    └── RunError               the run ends with a recorded reason, exit 1
        ├── ModelError         the provider failed after retries (overloaded, 5xx, dropped)
        │   └── ContextOverflowError   the conversation no longer fits the model's window
        ├── MaxTurnsExceeded   the run hit --max-turns
        ├── BudgetExceeded     the next model request could overrun a spend limit
        ├── LeaseLost          another host took the session over; this one lets go
        ├── PromptBlocked      a UserPromptSubmit hook blocked the prompt
        ├── StoreBusy          the store stayed locked past the retry time
        └── StoreWriteFailed   the disk refused a store write (full, I/O error); rolled back
    GitError                   a git command failed (git's own words)
    MergeConflict              `covey merge` would conflict; nothing changed (exit 1)
    ProcessStartError          a program could not be started
    CommandFailed              `proc.run(check=True)` saw a failure

Foreign exceptions (SDK, sqlite, git) are translated into these once, at the boundary
that calls the foreign code.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types named in signatures only: this module imports nothing of covey's
    from covey.git.merge import ConflictFile
    from covey.proc import ProcessResult

__all__ = [
    "BudgetExceeded",
    "CommandFailed",
    "ContextOverflowError",
    "CoveyError",
    "CredentialsError",
    "GitError",
    "LeaseLost",
    "MaxTurnsExceeded",
    "MergeConflict",
    "ModelError",
    "ProcessStartError",
    "PromptBlocked",
    "RunError",
    "StoreBusy",
    "StoreWriteFailed",
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


class BudgetExceeded(RunError):
    """The remaining budget cannot cover the next model request; it was not sent.
    `budget` names the limit (`session` or `daily`)."""

    reason = "budget"

    def __init__(self, budget: str, spent_usd: float, limit_usd: float, estimate_usd: float):
        self.budget = budget
        self.spent_usd, self.limit_usd, self.estimate_usd = spent_usd, limit_usd, estimate_usd
        what = "session budget" if budget == "session" else "daily budget"
        self.summary = (
            f"{what} of ${limit_usd:.2f} reached: ${spent_usd:.4f} spent, and the next model "
            f"request may cost up to ${estimate_usd:.4f}, so it was not sent"
        )
        how = (
            "--max-budget-usd or settings budget.sessionUsd"
            if budget == "session"
            else "settings budget.dailyUsd"
        )
        super().__init__(f"{self.summary} (to go on, raise {how})")


class LeaseLost(RunError):
    """Another host took this session over; this one must stop writing and let go."""

    reason = "lease_lost"


class PromptBlocked(RunError):
    """A UserPromptSubmit hook blocked the prompt."""

    reason = "prompt_blocked"


class GitError(CoveyError):
    """A git command failed; the message carries git's own words."""


class MergeConflict(CoveyError):
    """The merge would conflict; nothing was changed. `report()` is the multi-line story."""

    exit_code = 1

    def __init__(self, name: str, into: str, files: list[ConflictFile], step: str = "") -> None:
        self.name, self.into, self.files, self.step = name, into, files, step
        what = f"rebasing {step} onto {into}" if step else f"merging worktree {name!r} into {into}"
        super().__init__(f"{what} would conflict in {len(files)} file(s); nothing was changed")

    def report(self) -> str:
        width = max(len(f.path) for f in self.files) if self.files else 0
        lines = [f"{self}.", "conflicting files:"]
        for f in self.files:
            also = f"  also changed in worktrees: {', '.join(f.touched_by)}" if f.touched_by else ""
            lines.append(f"  {f.path.ljust(width)}{also}".rstrip())
        how = f"git rebase {self.into}" if self.step else f"git merge {self.into}"
        lines.append(
            f"Resolve them in the worktree (cd .covey/worktrees/{self.name} && {how}), "
            f"then run `covey merge {self.name}` again."
        )
        return "\n".join(lines)


class StoreBusy(RunError):
    """The store stayed locked longer than `RETRY_FOR_S`: another process holds it (hung?)."""

    reason = "store_busy"


class StoreWriteFailed(RunError):
    """The disk refused a write (full, or an I/O error): the transaction was rolled back, so
    the store holds everything up to the last step and nothing half-written."""

    reason = "store_write_failed"


class ProcessStartError(CoveyError):
    """The program could not be started (not found, not executable, bad cwd)."""


class CommandFailed(CoveyError):
    """`run(..., check=True)` saw a non-zero exit or a timeout. Adapters translate it."""

    def __init__(self, result: ProcessResult) -> None:
        self.result = result
        why = "timed out" if result.timed_out else f"exited with {result.exit_code}"
        detail = (result.stderr.strip() or result.stdout.strip())[-500:]
        super().__init__(f"{shlex.join(result.argv)} {why}" + (f": {detail}" if detail else ""))
