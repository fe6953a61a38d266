"""What a person does to sessions, from the CLI or the agent view: dispatch, reply, stop,
remove, respawn. Each is a committed row in the store (a session or a command) that the host
acts on, so nothing is lost if a process dies in between.

- `dispatch`: a queued background session (`@agent prompt` picks a definition).
- `reply`: a `reply` command. The supervisor answers the pending question or permission with
  it; a session that is not waiting (finished, interrupted) is continued with it as the next
  prompt; a session in the middle of a turn gets it once the turn ends.
- `respawn`: a `respawn` command: the supervisor continues a finished, failed, stopped or
  interrupted session from its transcript.
- `hand_over`: a foreground session whose screen detached becomes a background one; the
  supervisor continues it if it was in the middle of a turn.
- `request_pool_refill`: a `refill_pool` command: the supervisor tops up a repository's warm
  pool of worktrees after one was taken from it.
- `wake`: peeking at or attaching to an interrupted background session respawns it.
- `remove`: stop it if live, snapshot and remove its worktree (its branch stays while it holds
  commits merged nowhere), and hide the row; the transcript stays (`covey --resume ID`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from covey.errors import UserError
from covey.git.cleanup import remove_worktree
from covey.git.worktrees import Worktree, find_repo, unlock_worktree
from covey.sessions.background import BackgroundRequest, create_background_session, request_stop
from covey.sessions.lease import holder_alive
from covey.sessions.listing import display_state
from covey.sessions.state import LIVE_STATES, take_over_state
from covey.store import Store
from covey.store.commands import enqueue_command, pending_commands
from covey.store.events import append_event
from covey.store.sessions import (
    SessionRow,
    SessionState,
    find_session,
    get_session,
    mark_deleted,
)

__all__ = [
    "MIN_PROMPT_CHARS",
    "RemoveReport",
    "dispatch",
    "find",
    "hand_over",
    "parse_dispatch",
    "remove",
    "reply",
    "request_pool_refill",
    "respawn",
    "stop",
    "wake",
]

MIN_PROMPT_CHARS = 4
STOP_WAIT_S = 30.0


def find(store: Store, session: str) -> SessionRow:
    """The session by id, id prefix or name, or a UserError naming what to run instead."""
    with store.read() as conn:
        row = find_session(conn, session)
    if row is None:
        raise UserError(f"no session {session!r}: see covey agents --json --all")
    return row


def parse_dispatch(text: str) -> tuple[str | None, str]:
    """`@agent prompt` → ("agent", "prompt"); anything else → (None, text). A prompt under
    four characters is refused ("Too short")."""
    text = text.strip()
    agent: str | None = None
    if text.startswith("@"):
        agent, _, text = text[1:].partition(" ")
        text = text.strip()
        if not agent:
            raise UserError("@: name an agent definition, as in @reviewer check the diff")
    if len(text) < MIN_PROMPT_CHARS:
        raise UserError(f"Too short: a prompt needs at least {MIN_PROMPT_CHARS} characters")
    return agent, text


def dispatch(
    store: Store,
    cwd: Path,
    text: str,
    *,
    name: str | None = None,
    model: str | None = None,
    permission_mode: str | None = None,
) -> SessionRow:
    """A new queued background session for `text` (see `parse_dispatch`)."""
    agent, prompt = parse_dispatch(text)
    request = BackgroundRequest(
        cwd=cwd,
        prompt=prompt,
        name=name,
        agent=agent,
        model=model,
        permission_mode=permission_mode,
    )
    return create_background_session(store, request)


def reply(store: Store, session: str, text: str) -> tuple[SessionRow, int]:
    """Queue `text` for a session; (its row, the command id)."""
    if not text.strip():
        raise UserError("reply: the text is empty; say what the agent should hear")
    row = find(store, session)
    if row.parent_id is not None:
        raise UserError(f"session {row.id} is a subagent: reply to its parent {row.parent_id}")
    if _foreground_live(row):
        raise UserError(f"session {row.id} runs in a terminal ({row.host_id}): answer it there")
    with store.write() as conn:
        command_id = enqueue_command(conn, row.id, "reply", {"text": text})
    return row, command_id


def respawn(store: Store, session: str) -> tuple[SessionRow, int | None]:
    """Ask the supervisor to continue a session that no host runs; (its row, the command id),
    or no command when the session is live already."""
    row = find(store, session)
    if row.parent_id is not None:
        raise UserError(f"session {row.id} is a subagent: respawn its parent {row.parent_id}")
    if _foreground_live(row):
        raise UserError(f"session {row.id} runs in a terminal ({row.host_id}); nothing to do")
    pending = row.meta.pending
    if row.state == "needs_input" and pending and pending.kind in ("question", "permission"):
        raise UserError(
            f"session {row.id} waits for a reply to: {pending.text} "
            f"(answer with covey reply {row.id} TEXT)"
        )
    if row.state == "queued" or (row.state in LIVE_STATES and holder_alive(row.host_id)):
        return row, None
    with store.write() as conn:
        command_id = enqueue_command(conn, row.id, "respawn")
    return row, command_id


def _foreground_live(row: SessionRow) -> bool:
    return row.kind != "background" and row.state in LIVE_STATES and holder_alive(row.host_id)


def wake(store: Store, session_id: str) -> int | None:
    """Peeking at or attaching to an interrupted background session continues it (with
    `background.autoResume` off, nothing else does): a `respawn` command, unless one is
    pending already. The command id, or None when there was nothing to do."""
    with store.write() as conn:
        row = get_session(conn, session_id)
        if row is None or row.kind != "background" or display_state(row) != "interrupted":
            return None
        if pending_commands(conn, session_id=session_id, types=["respawn"]):
            return None
        return enqueue_command(conn, session_id, "respawn")


def request_pool_refill(store: Store, repo: Path) -> int | None:
    """Ask the supervisor to top up the warm pool of `repo` (`worktree.pool`), unless such a
    request is pending already; the command id, or None."""
    with store.write() as conn:
        for command in pending_commands(conn, types=["refill_pool"]):
            if command.data.get("repo") == str(repo):
                return None
        return enqueue_command(conn, None, "refill_pool", {"repo": str(repo)})


def stop(store: Store, session: str) -> tuple[SessionRow, str]:
    """Stop a session (see `request_stop`); (its row, "requested" | "stopped" | "finished")."""
    row = find(store, session)
    return row, request_stop(store, row.id)


def hand_over(store: Store, session_id: str) -> int | None:
    """Make a foreground session (whose host has let go of it) a background one; when it was
    mid-turn, queue a `respawn` so the supervisor continues it. The command id, or None."""
    with store.write() as conn:
        row = get_session(conn, session_id)
        if row is None:
            raise UserError(f"no session {session_id!r}")
        mid_turn = row.state in ("working", "needs_input", "interrupted")
        state: SessionState = "interrupted" if mid_turn else row.state
        if not take_over_state(conn, session_id, state, "handed over", kind="background"):
            raise UserError(f"session {session_id} is still held by its host; nothing changed")
        return enqueue_command(conn, session_id, "respawn") if mid_turn else None


@dataclass(frozen=True)
class RemoveReport:
    session: SessionRow
    snapshot: str | None = None
    """The ref holding the worktree's last state, when there was a worktree."""
    dirty: bool = False
    branch: str | None = None
    branch_kept: bool = False
    """The branch stays because it holds commits merged nowhere."""


def remove(store: Store, session: str, *, wait_s: float = STOP_WAIT_S) -> RemoveReport:
    """Stop (and wait for the host to let go), snapshot and remove the worktree, hide the row."""
    row = find(store, session)
    _, outcome = stop(store, row.id)
    if outcome == "requested":
        row = _wait_stopped(store, row.id, wait_s)
    report = RemoveReport(session=row)
    if row.meta.worktree and Path(row.meta.worktree).exists():
        path = Path(row.meta.worktree)
        repo = find_repo(path)
        # the session is stopped: a lock of its own (left by a host that died) goes too
        unlock_worktree(Worktree(path.name, path, row.meta.branch or "", "", repo, False))
        gone = remove_worktree(repo, path.name, keep_branch=True)
        report = RemoveReport(
            session=row,
            snapshot=gone.snapshot,
            dirty=gone.dirty,
            branch=gone.branch,
            branch_kept=gone.branch is not None and not gone.branch_deleted,
        )
    with store.write() as conn:
        mark_deleted(conn, row.id)
        append_event(conn, row.id, "removed", {"snapshot": report.snapshot})
    return report


def _wait_stopped(store: Store, session_id: str, wait_s: float) -> SessionRow:
    deadline = time.monotonic() + wait_s
    while True:
        with store.read() as conn:
            row = get_session(conn, session_id)
        if row is None:
            raise UserError(f"session {session_id} vanished while stopping")
        if display_state(row) not in LIVE_STATES and not holder_alive(row.host_id):
            return row
        if time.monotonic() > deadline:
            raise UserError(
                f"session {session_id} did not stop within {wait_s:.0f} s; nothing removed "
                "(see covey daemon status)"
            )
        time.sleep(0.05)
