"""How a hosted background session begins and ends in the supervisor (`daemon`): the `Start`
it is given, the prompt that continues an adopted one, where its credentials come from, the
commit of its worktree when it completes, and the state of one that could not be opened."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from covey.errors import RunError
from covey.git.repo import commit_all, git
from covey.models.registry import BASE_URL_VARS
from covey.sessions.background import supervisor_environ
from covey.sessions.host import SessionHost
from covey.sessions.pending import Pending, with_meta
from covey.sessions.state import set_state
from covey.store import Store
from covey.store.session_meta import Grant, SessionMeta
from covey.store.sessions import SessionRow, get_session, release_lease
from covey.store.transcript import read_entries

__all__ = [
    "CONTINUE_PROMPT",
    "OPENERS",
    "Start",
    "commit_session",
    "fail_unprepared",
    "first_prompt",
    "openers",
    "session_environ",
]

OPENERS = 3
"""Threads that open sessions (plan, claim, worktree checkout) for the supervisor. Opening is
~15 ms of Python a session, under the interpreter's one lock: with asyncio's six default
threads, a hundred sessions queued at once kept the event loop of the sessions already
running from the lock (each later turn 68-113 ms beyond its answer, median, through the real
adapter; 18-44 ms with three threads, 40-54 ms with two), while fewer threads open the
hundred more slowly (the last claimed after 2.0-2.3 s with three, 1.6-2.1 s with six): the
whole run took as long either way (`bench/agents.py --provider fake`: 1.23-1.28x with three,
1.26-1.29x with six), so the running sessions' turns come first."""


def openers() -> ThreadPoolExecutor:
    """The supervisor's pool for opening sessions (see `OPENERS`)."""
    return ThreadPoolExecutor(OPENERS, thread_name_prefix="covey-open")


CONTINUE_PROMPT = (
    "The background host restarted while you were working. Continue the task where you "
    "left off; check the state of anything that was interrupted before relying on it."
)


@dataclass(frozen=True)
class Start:
    """How a hosted session begins: fresh from the queue, or continued from its transcript
    with `prompt` (None: carry on where it stopped), storing `grants` first."""

    fresh: bool
    adopted: bool = False
    """Resumed because its previous host died (not asked for by a command)."""
    prompt: str | None = None
    grants: tuple[Grant, ...] = ()
    budget_raise: tuple[str, float] | None = None
    """A budget the reply raised: (`session` | `daily`, USD), stored before the turn."""


def first_prompt(store: Store, session_id: str, row: SessionRow, start: Start) -> str:
    """What a hosted session's first turn here is asked: the `Start`'s prompt, else its own
    prompt, or `CONTINUE_PROMPT` when its transcript shows it began elsewhere."""
    if start.prompt:
        return start.prompt
    with store.read() as conn:
        started = bool(read_entries(conn, session_id))
    return CONTINUE_PROMPT if started else (row.meta.prompt or "")


def commit_session(host: SessionHost, final_text: str) -> str:
    """Commit the worktree's changes to the session branch; the one-line report."""
    did = (final_text.strip().splitlines() or ["done"])[0][:120]
    wt = host.worktree
    if wt is None:
        return did
    changed = [line for line in git("status", "--porcelain", cwd=wt.path).splitlines() if line]
    if changed:
        commit_all(wt.path, f"covey {host.session_id}: {did}")
    return f"{did} · branch {wt.branch} · {len(changed)} file(s) changed"


def session_environ(meta: SessionMeta) -> dict[str, str]:
    """Where a hosted session's credentials come from: the supervisor's environment (it
    inherited the one of the command that started it), `$COVEY_HOME/credentials.json` over it,
    and the endpoint the session was dispatched with. Settings `env` still wins (runner)."""
    environ = supervisor_environ()
    var = BASE_URL_VARS.get(meta.provider or "")
    if var and meta.base_url:
        environ[var] = meta.base_url
    return environ


def fail_unprepared(
    store: Store, host_id: str, session_id: str, reason: str, pending: Pending | None = None
) -> None:
    """A session that could not be opened: `failed`, or `needs_input` with what it waits for
    (credentials); a lease the supervisor `host_id` took for it is let go."""
    with store.read() as conn:
        row = get_session(conn, session_id)
    if row is None or row.host_id not in (None, host_id):
        return
    with contextlib.suppress(RunError):
        if pending is None:
            set_state(store, session_id, row.epoch, "failed", reason[:300])
        else:
            meta = with_meta(row.meta, pending=pending)
            set_state(store, session_id, row.epoch, "needs_input", reason[:300], meta=meta)
    with store.write() as conn:
        release_lease(conn, session_id, host_id, row.epoch)
