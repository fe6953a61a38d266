"""Background sessions: created queued by `covey --bg`, run by the supervisor daemon.

A background session records the provider and the endpoint (base URL) it was dispatched with,
never a key: the supervisor uses that endpoint, with keys from its own environment, the
settings `env` block or `$COVEY_HOME/credentials.json`.

The prompt of a background session is kept in its row's `meta.prompt` until the supervisor
starts it (then it is the transcript's first user message, like any session). A background
session runs with the permission mode given by `--permission-mode`, else `acceptEdits`
(nobody is there to approve edits), in its own worktree `.covey/worktrees/bg-<id>`, which
starts from the base commit resolved at dispatch (`meta.base`, per `worktree.baseRef`).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from covey.config import load_credentials, user_settings
from covey.errors import UserError
from covey.git.base import resolve_base
from covey.git.repo import find_repo
from covey.models.registry import BASE_URL_VARS
from covey.sessions.lease import LEASE_TTL_S, holder_alive, is_supervisor, local_pid
from covey.sessions.plan import SessionOptions, plan_session
from covey.sessions.state import LIVE_STATES, take_over_state
from covey.store import Store
from covey.store.commands import claimers, enqueue_command, requeue_claimed
from covey.store.events import append_event
from covey.store.session_meta import SessionMeta, StoredOptions
from covey.store.sessions import (
    SessionRow,
    SessionState,
    acquire_lease,
    get_session,
    insert_session,
    list_sessions,
    new_session_id,
)

__all__ = [
    "BACKGROUND_MODE",
    "RESUMABLE_STATES",
    "BackgroundRequest",
    "claim_queued",
    "create_background_session",
    "mark_interrupted",
    "orphaned_sessions",
    "request_stop",
    "requeue_orphaned_commands",
    "stored_options",
    "supervisor_environ",
    "take_orphan",
    "tree_root",
]

BACKGROUND_MODE = "acceptEdits"
"""The permission mode of a background session when none is given."""
RESUMABLE_STATES: tuple[SessionState, ...] = ("working", "needs_input", "interrupted")
"""States of a background session the next supervisor picks up again once its host is gone."""


@dataclass
class BackgroundRequest:
    cwd: Path
    prompt: str
    name: str | None = None
    agent: str | None = None
    model: str | None = None
    permission_mode: str | None = None
    allowed_tools: Sequence[str] = ()
    disallowed_tools: Sequence[str] = ()
    max_turns: int | None = None
    append_system_prompt: str | None = None
    max_budget_usd: float | None = None

    def options(self, environ: Mapping[str, str]) -> SessionOptions:
        return SessionOptions(
            cwd=self.cwd.resolve(),
            model=self.model,
            max_turns=self.max_turns,
            permission_mode=self.permission_mode or BACKGROUND_MODE,
            allowed_tools=tuple(self.allowed_tools),
            disallowed_tools=tuple(self.disallowed_tools),
            append_system_prompt=self.append_system_prompt,
            kind="background",
            agent=self.agent,
            environ=environ,
            max_budget_usd=self.max_budget_usd,
        )


def supervisor_environ() -> dict[str, str]:
    """The environment the supervisor gives a session: its own (inherited from the command
    that started it), with `$COVEY_HOME/credentials.json` over it."""
    return {**os.environ, **load_credentials()}


def create_background_session(store: Store, req: BackgroundRequest) -> SessionRow:
    """Check the input as the supervisor will plan it (model and the credentials it will
    have, settings, agent, rules, repository), then add a queued `background` session row
    holding the prompt and the options. Nothing is written when the input is bad."""
    plan = plan_session(req.options(supervisor_environ()))
    repo = find_repo(plan.cwd)  # a background session works in a worktree: it needs a repository
    base = resolve_base(repo, plan.settings.worktree.baseRef)  # what is fresh at dispatch
    if (executor := user_settings().background).executor == "ray":  # no Ray import otherwise
        from covey.executors.ray_address import check_cluster

        check_cluster(executor.ray)  # unreachable: one line, exit 2, nothing queued
    provider = plan.model_name.partition(":")[0]
    base_url = plan.env.get(BASE_URL_VARS.get(provider, "")) or None
    options = plan.options
    with store.write() as conn:
        session_id = new_session_id(conn)
        row = SessionRow.new(
            id=session_id,
            name=req.name,
            kind="background",
            cwd=str(plan.cwd),
            model=plan.model_name,
            permission_mode=plan.policy.mode,
            agent=plan.definition.name if plan.definition else None,
            meta=SessionMeta(
                provider=provider,
                base_url=base_url,
                prompt=req.prompt,
                base=base,
                repo=str(repo),
                options=StoredOptions(
                    allowed_tools=tuple(options.allowed_tools),
                    disallowed_tools=tuple(options.disallowed_tools),
                    max_turns=options.max_turns,
                    append_system_prompt=options.append_system_prompt,
                    max_budget_usd=options.max_budget_usd,
                ),
            ),
        )
        insert_session(conn, row)
        append_event(conn, session_id, "state", {"state": "queued", "reason": None})
    return row


def stored_options(row: SessionRow, environ: Mapping[str, str]) -> SessionOptions:
    """The options a hosted background session runs with: what it was dispatched with."""
    stored = row.meta.options or StoredOptions()
    return SessionOptions(
        cwd=Path(row.cwd),
        max_turns=stored.max_turns,
        permission_mode=row.permission_mode,
        allowed_tools=stored.allowed_tools,
        disallowed_tools=stored.disallowed_tools,
        append_system_prompt=stored.append_system_prompt,
        kind="background",
        environ=environ,
        max_budget_usd=stored.max_budget_usd,
    )


def claim_queued(store: Store, session_id: str, host_id: str) -> int | None:
    """Take the lease of a queued session for `host_id` (its state stays `queued` until its
    first turn starts); the epoch, or None when it is no longer queued (stopped meanwhile)
    or someone else holds it."""
    with store.write() as conn:
        row = get_session(conn, session_id)
        if row is None or row.state != "queued":
            return None
        force = not holder_alive(row.host_id)  # a supervisor that died while starting it
        return acquire_lease(conn, session_id, host_id, LEASE_TTL_S, time.time(), force=force)


def take_orphan(store: Store, session_id: str, host_id: str) -> int | None:
    """Take the lease of a session whose host is gone (see `orphaned_sessions`) for
    `host_id`, a new epoch fencing the old host out; None when it ended meanwhile."""
    with store.write() as conn:
        row = get_session(conn, session_id)
        if row is None or row.state not in RESUMABLE_STATES:
            return None
        return acquire_lease(conn, session_id, host_id, LEASE_TTL_S, time.time(), force=True)


def orphaned_sessions(
    store: Store,
    supervisor: str | None = None,
    states: tuple[SessionState, ...] = RESUMABLE_STATES,
) -> list[SessionRow]:
    """Background sessions that were live when their host went away (dead or expired).
    `supervisor`: the host id of the caller, which holds the supervisor lock, so any other
    supervisor that held a session is gone, whatever its pid looks like (a zombie, reused)."""
    now = time.time()
    with store.read() as conn:
        rows = list_sessions(conn, kinds=["background"], states=states)
    return [
        r
        for r in rows
        if r.host_id != supervisor
        and (
            (supervisor is not None and is_supervisor(r.host_id))
            or not holder_alive(r.host_id)
            or r.lease_expires_at is None
            or r.lease_expires_at < now
        )
    ]


def requeue_orphaned_commands(store: Store) -> int:
    """Put back to pending the commands claimed by hosts that died before finishing them
    (a reply is never lost with its host); how many."""
    with store.write() as conn:
        dead = [c for c in claimers(conn) if not holder_alive(c)]
        return sum(requeue_claimed(conn, claimer) for claimer in dead)


def mark_interrupted(store: Store, session_id: str, reason: str) -> bool:
    """Take over a session whose host died and mark it `interrupted` (nobody resumes it
    until asked). False when a live host holds it after all."""
    with store.write() as conn:
        row = get_session(conn, session_id)
        if row is None or holder_alive(row.host_id):
            return False
        return take_over_state(conn, session_id, "interrupted", reason, force=True)


def tree_root(conn: sqlite3.Connection, row: SessionRow) -> SessionRow:
    """The top of the session's tree (itself when it has no parent; a parent loop, which
    only a damaged store holds, ends where it comes back)."""
    seen = {row.id}
    while row.parent_id is not None and row.parent_id not in seen:
        if (parent := get_session(conn, row.parent_id)) is None:
            break
        row = parent
        seen.add(row.id)
    return row


def request_stop(store: Store, session_id: str) -> str:
    """Stop a session: a `stop` command for its live host (a foreground `covey` on this
    machine gets SIGINT, as if Ctrl+C was pressed in its terminal, unless the session is one of
    its subagents or teammates), or, with no live host, stopped here at once under a fresh
    lease. Returns "requested", "stopped" or "finished"."""
    with store.write() as conn:
        row = get_session(conn, session_id)
        if row is None:
            raise UserError(f"no session {session_id!r}: see covey agents")
        if row.state not in (*LIVE_STATES, "interrupted"):
            return "finished"
        expired = row.lease_expires_at is None or row.lease_expires_at < time.time()
        if row.host_id is not None and holder_alive(row.host_id) and not expired:
            pid = local_pid(row.host_id)
            # a terminal's `covey`: as Ctrl+C; a subagent (which its host stops alone, see
            # `subagent_stops`), a teammate, or a child of a background session (the
            # supervisor's, or a Ray node's, whose worker may share this hostname): a command
            # its host acts on, never a signal to the process hosting the whole tree
            children = ("background", "teammate", "subagent")
            if row.kind in children or tree_root(conn, row).kind == "background":
                pid = None
            if pid is not None:
                os.kill(pid, signal.SIGINT)
            else:
                enqueue_command(conn, session_id, "stop")
            return "requested"
        take_over_state(conn, session_id, "stopped", "stopped by user", force=True)
    return "stopped"
