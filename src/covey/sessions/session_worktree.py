"""The worktree a hosted session works in, for `SessionHost.open`:

    worktree, plan = open_session_worktree(store, plan, wake_supervisor)  # -w, or bg-ID
    record_worktree(store, row, epoch, worktree)   # a queued background session's, in its row
    worktree = worktree or existing_worktree(row)  # a continued session's, if still there

Opening one runs the WorktreeCreate hooks (not for a queued background session, whose
dispatch ran them), asks the supervisor to top up the warm pool it was taken from, and
moves the plan into it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from covey.git.worktrees import Worktree, find_repo, gitignore_hint, open_worktree
from covey.sessions.control import request_pool_refill
from covey.sessions.hooks_bridge import WorktreeCommandHooks, hook_runner
from covey.sessions.plan import SessionPlan
from covey.store import Store
from covey.store.sessions import SessionRow, update_session

__all__ = ["existing_worktree", "open_session_worktree", "record_worktree"]


def open_session_worktree(
    store: Store, plan: SessionPlan, wake_supervisor: Callable[[], object] | None
) -> tuple[Worktree | None, SessionPlan]:
    """The worktree a new session asks for (`-w`, or a queued background session's
    `bg-ID`), and the plan moved into it."""
    previous = plan.previous
    queued = previous is not None and previous.state == "queued" and previous.kind == "background"
    if queued:
        assert previous is not None
        name: str | None = f"bg-{previous.id}"
        base, repo = previous.meta.base, previous.meta.repo
    elif plan.options.worktree is not None and previous is None:
        name, base, repo = plan.options.worktree or None, None, None
    else:
        return None, plan
    settings = plan.settings.worktree
    hooks = None
    if not queued:
        hooks = WorktreeCommandHooks(
            hook_runner(
                plan.hooks,
                session_id="",
                cwd=plan.cwd,
                project_dir=plan.loaded.project_root,
                mode=plan.policy.mode,
                settings=plan.settings,
            )
        )
    wt = open_worktree(
        plan.cwd, name, settings, hooks=hooks, base=base, repo=Path(repo) if repo else None
    )
    refill = settings.pool > 0 and request_pool_refill(store, wt.repo_root) is not None
    if refill and wake_supervisor is not None:
        wake_supervisor()
    hint = None if queued else gitignore_hint(wt.repo_root)
    return wt, plan.moved_to(wt.path, warning=hint)


def record_worktree(store: Store, row: SessionRow, epoch: int, wt: Worktree) -> None:
    """A queued background session now works in its worktree (not a state change)."""
    meta = row.meta.model_copy(update={"worktree": str(wt.path), "branch": wt.branch})
    with store.write() as conn:
        update_session(conn, row.id, epoch, cwd=str(wt.path), meta=meta)


def existing_worktree(row: SessionRow) -> Worktree | None:
    """The worktree a continued session works in, if it still exists."""
    if not row.meta.worktree or not Path(row.meta.worktree).is_dir():
        return None
    path = Path(row.meta.worktree)
    repo = Path(row.meta.repo) if row.meta.repo else find_repo(path)
    return Worktree(path.name, path, row.meta.branch or "", "", repo, created=False)
