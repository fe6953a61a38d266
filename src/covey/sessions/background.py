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
import time
from dataclasses import dataclass
from pathlib import Path

from covey.agent.definitions import load_definitions
from covey.config import effective_env, load_settings
from covey.errors import UserError
from covey.git.checkout import resolve_base
from covey.git.worktrees import find_repo
from covey.models.registry import BASE_URL_VARS, DEFAULT_MODEL, resolve_model
from covey.sessions.lease import LEASE_TTL_S, holder_alive, local_pid
from covey.sessions.runner import SessionOptions, _main_definition, _policy
from covey.sessions.state import LIVE_STATES, take_over_state
from covey.store import Store
from covey.store.commands import claimers, enqueue_command, requeue_claimed
from covey.store.events import append_event
from covey.store.sessions import (
    SessionMeta,
    SessionRow,
    SessionState,
    acquire_lease,
    get_session,
    insert_session,
    list_sessions,
    new_session_id,
    update_session,
)
from covey.tools.permissions import PERMISSION_MODES

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


def create_background_session(store: Store, req: BackgroundRequest) -> SessionRow:
    """Check the input like `-p` does (model, settings, agent, repository), then add a queued
    `background` session row holding the prompt. Nothing is written when the input is bad."""
    mode = req.permission_mode or BACKGROUND_MODE
    if mode not in PERMISSION_MODES:
        modes = ", ".join(PERMISSION_MODES)
        raise UserError(f"--permission-mode {mode!r} is not one of: {modes}")
    cwd = req.cwd.resolve()
    repo = find_repo(cwd)  # a background session works in a worktree: it needs a repository
    loaded = load_settings(cwd)
    definitions = load_definitions(cwd)
    defn = _main_definition(definitions, req.agent)
    settings = loaded.settings
    env = effective_env(settings, os.environ)
    own_model = defn.model if defn and defn.model != "inherit" else None
    spec = req.model or own_model or settings.model or DEFAULT_MODEL
    model = resolve_model(spec, env=env, aliases=settings.modelAliases)
    _policy(SessionOptions(cwd=cwd, permission_mode=mode), loaded, defn, cwd)
    base = resolve_base(repo, settings.worktree.baseRef)  # what is fresh at dispatch
    provider = model.name.partition(":")[0]
    base_url = env.get(BASE_URL_VARS.get(provider, "")) or None
    with store.write() as conn:
        session_id = new_session_id(conn)
        row = SessionRow.new(
            id=session_id,
            name=req.name,
            kind="background",
            cwd=str(cwd),
            model=model.name,
            permission_mode=mode,
            agent=defn.name if defn else None,
            meta=SessionMeta.model_validate(
                {
                    "provider": provider,
                    "base_url": base_url,
                    "prompt": req.prompt,
                    "base": base,
                    "repo": str(repo),
                }
            ),
        )
        insert_session(conn, row)
        append_event(conn, session_id, "state", {"state": "queued", "reason": None})
    return row


def claim_queued(store: Store, session_id: str, host_id: str) -> int | None:
    """Take a queued session for `host_id` and mark it working, in one transaction; its epoch,
    or None when it is no longer queued (stopped meanwhile) or someone else holds it."""
    with store.write() as conn:
        row = get_session(conn, session_id)
        if row is None or row.state != "queued":
            return None
        epoch = acquire_lease(conn, session_id, host_id, LEASE_TTL_S, time.time())
        if epoch is None:
            return None
        update_session(conn, session_id, epoch, state="working", reason=None)
        append_event(conn, session_id, "state", {"state": "working", "reason": None})
    return epoch


def orphaned_sessions(store: Store) -> list[SessionRow]:
    """Background sessions that were live when their host went away (dead or expired)."""
    now = time.time()
    with store.read() as conn:
        rows = list_sessions(conn, kinds=["background"], states=RESUMABLE_STATES)
    return [
        r
        for r in rows
        if not holder_alive(r.host_id) or r.lease_expires_at is None or r.lease_expires_at < now
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


def request_stop(store: Store, session_id: str) -> str:
    """Stop a session: a `stop` command for its live host (a foreground `covey` on this
    machine gets SIGINT, as if Ctrl+C was pressed in its terminal), or, with no live host,
    stopped here at once under a fresh lease. Returns "requested", "stopped" or "finished"."""
    with store.write() as conn:
        row = get_session(conn, session_id)
        if row is None:
            raise UserError(f"no session {session_id!r}: see covey agents")
        if row.state not in (*LIVE_STATES, "interrupted"):
            return "finished"
        expired = row.lease_expires_at is None or row.lease_expires_at < time.time()
        if row.host_id is not None and holder_alive(row.host_id) and not expired:
            pid = local_pid(row.host_id)
            if row.kind != "background" and pid is not None:  # a terminal's `covey`: as Ctrl+C
                os.kill(pid, signal.SIGINT)
            else:
                enqueue_command(conn, session_id, "stop")
            return "requested"
        take_over_state(conn, session_id, "stopped", "stopped by user", force=True)
    return "stopped"
