"""The supervisor daemon: one asyncio `TaskGroup`, one task per hosted background session.

Every `POLL_S` it reads the store, once, for (a) queued background sessions, which it claims
(a lease under its own host id) and starts, and (b) pending commands: `stop` cancels a hosted
session's task (state `stopped`); `reply` answers a session waiting on a question or a
permission (see `asking`), or continues a session nobody hosts with the reply as its next
prompt (a reply to a session mid-turn waits until the turn ends); `respawn` continues a
session nobody hosts. Session preparation (settings, checkout) runs in a worker thread, so
the loop never waits for git.

On start it first adopts the background sessions whose host died while they were live: it
takes their lease over (a new epoch, so the old host, should it wake, can write nothing) and
continues the conversation from the transcript with a short "continue" prompt (a tool call
that was running is answered as interrupted, never re-run) — unless `background.autoResume`
is off, or the session waits on a stored question (its reply will continue it). SIGTERM ends
it: its sessions are marked `interrupted` (a waiting one stays `needs_input`) and the pid file
is removed; so does having had nothing to host for `background.idleExitMinutes` (see
`lifecycle`). Credentials: see `session_environ`; a session whose key is missing waits in
`needs_input` naming the variable, and a reply or `covey respawn` retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from covey.config import load_credentials, load_settings
from covey.errors import CredentialsError, RunError
from covey.git.pool import refill_pool
from covey.git.repo import commit_all, git
from covey.git.worktrees import (
    Worktree,
    find_repo,
    lock_worktree,
    open_worktree,
    unlock_worktree,
)
from covey.models.registry import BASE_URL_VARS
from covey.sessions.background import (
    RESUMABLE_STATES,
    claim_queued,
    mark_interrupted,
    orphaned_sessions,
    requeue_orphaned_commands,
)
from covey.sessions.control import request_pool_refill
from covey.sessions.lease import holder_alive, new_host_id
from covey.sessions.pending import with_meta
from covey.sessions.runner import PreparedSession, SessionOptions, prepare_session
from covey.sessions.state import set_state
from covey.store import Store
from covey.store.commands import CommandRow, claim_command, finish_command, pending_commands
from covey.store.sessions import (
    SessionMeta,
    SessionRow,
    get_session,
    list_sessions,
    release_lease,
)
from covey.store.transcript import read_entries
from covey.supervisor.asking import Replies, SessionAsker, resume_prompt

__all__ = ["CONTINUE_PROMPT", "Start", "Supervisor", "session_environ"]

FinishStatus = Literal["done", "failed"]

log = logging.getLogger("covey.supervisor")

POLL_S = 0.1
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
    grants: tuple[dict[str, Any], ...] = ()


class Supervisor:
    def __init__(self, store: Store, *, idle_exit_s: float = 0.0) -> None:
        self.store = store
        self.host_id = new_host_id()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.stopped_by_user: set[str] = set()
        self.replies = Replies()
        self.stopping = asyncio.Event()
        self.idle_exit_s = idle_exit_s
        """Return from `serve` after this long with nothing to host (0: never)."""
        self.went_idle = False
        self._refills = 0
        self._idle_since: float | None = None

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        async with asyncio.TaskGroup() as tg:
            if requeued := requeue_orphaned_commands(self.store):
                log.info("requeued %d command(s) a dead host had claimed", requeued)
            for row in orphaned_sessions(self.store):
                self._adopt(tg, row)
            while not self.stopping.is_set():
                try:
                    self._poll(tg)
                except Exception:
                    log.exception("poll failed")
                if self._idle_long_enough():
                    self.went_idle = True
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_S):
                        await self.stopping.wait()
            log.info("stopping: interrupting %d session(s)", len(self.tasks))
            for task in self.tasks.values():
                task.cancel()

    def _adopt(self, tg: asyncio.TaskGroup, row: SessionRow) -> None:
        """A session left live by a dead host: a stored question waits for its reply (no
        host needed); the others resume now, or with `background.autoResume` off, show
        `interrupted` until someone replies or respawns them."""
        if row.state == "needs_input" and row.meta.extra("pending"):
            return
        try:
            auto = load_settings(Path(row.cwd)).settings.background.autoResume
        except Exception:  # broken settings: the session reports it when it starts
            auto = True
        if auto:
            self._start(tg, row, Start(fresh=False, adopted=True))
        elif row.state != "interrupted":
            mark_interrupted(self.store, row.id, "host died; background.autoResume is off")

    def _idle_long_enough(self) -> bool:
        """Nothing hosted, queued or being refilled for `idle_exit_s` (a command left for
        another host, such as a stop for a foreground session, does not keep it up)."""
        if self.idle_exit_s <= 0 or self.tasks or self._refills:
            self._idle_since = None
            return False
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        return now - self._idle_since >= self.idle_exit_s

    def _poll(self, tg: asyncio.TaskGroup) -> None:
        with self.store.read() as conn:  # one read per poll; a write only when there is work
            queued = list_sessions(conn, kinds=["background"], states=["queued"])
            pending = pending_commands(conn, types=["stop", "reply", "respawn", "refill_pool"])
        if queued:
            self._idle_since = None
        for row in reversed(queued):  # oldest first
            if row.id not in self.tasks:
                self._start(tg, row, Start(fresh=True))
        for command in pending:
            if command.type == "refill_pool":
                if self._claim(command):
                    self._refill(tg, Path(str(command.data.get("repo", ""))), command)
            elif command.session_id is not None:
                self._handle(tg, command, command.session_id)

    def _handle(self, tg: asyncio.TaskGroup, command: CommandRow, sid: str) -> None:
        if command.type == "stop":
            if sid in self.tasks and self._claim(command):
                self.stopped_by_user.add(sid)
                self.tasks[sid].cancel()
                self._finish(command, "done", {"stopped": True})
            elif sid not in self.tasks and not self._held_elsewhere(sid) and self._claim(command):
                # it ended meanwhile: a stale stop must not cancel a later run
                self._finish(command, "done", {"stopped": False, "running": False})
        elif command.type == "reply" and self.replies.accepts(sid, command.ts):
            if self._claim(command):
                self.replies.deliver(sid, str(command.data.get("text", "")))
                self._finish(command, "done", {"delivered": True})
        elif command.type == "respawn" and sid in self.tasks:
            if self._claim(command):
                self._finish(command, "done", {"running": True})
        elif sid not in self.tasks and self._claim(command):  # reply or respawn
            self._continue(tg, command)
        # a reply for a session in the middle of a turn waits for the turn to end

    def _refill(self, tg: asyncio.TaskGroup, repo: Path, command: CommandRow | None) -> None:
        """Top up `repo`'s warm pool in a worker thread (a second refill of the same repo
        returns at once: `refill_pool` holds a lock)."""

        async def refill() -> None:
            self._refills += 1
            try:
                settings = load_settings(repo).settings.worktree
                report = await asyncio.to_thread(refill_pool, repo, settings)
                result: dict[str, Any] = {"ready": report.ready, "made": report.made}
                status: FinishStatus = "done"
            except Exception as e:
                log.exception("refilling the pool of %s failed", repo)
                result, status = {"error": str(e)[:300]}, "failed"
            finally:
                self._refills -= 1
            if command is not None:
                self._finish(command, status, result)

        tg.create_task(refill(), name=f"refill-{repo}")

    def _held_elsewhere(self, session_id: str) -> bool:
        with self.store.read() as conn:
            row = get_session(conn, session_id)
        return (
            row is not None
            and row.host_id not in (None, self.host_id)
            and holder_alive(row.host_id)
        )

    def _claim(self, command: CommandRow) -> bool:
        with self.store.write() as conn:
            return claim_command(conn, command.id, claimer=self.host_id)

    def _finish(self, command: CommandRow, status: FinishStatus, result: dict[str, Any]) -> None:
        with self.store.write() as conn:
            finish_command(conn, command.id, status, result)

    def _continue(self, tg: asyncio.TaskGroup, command: CommandRow) -> None:
        """A reply to a session nobody hosts (finished, interrupted, or waiting on a stored
        question), or a respawn: host it again, continuing its transcript."""
        sid = command.session_id or ""
        with self.store.read() as conn:
            row = get_session(conn, sid)
        if row is None or row.deleted_at is not None:
            self._finish(command, "failed", {"error": "no such session"})
            return
        if row.host_id not in (None, self.host_id) and holder_alive(row.host_id):
            expired = row.lease_expires_at is None or row.lease_expires_at < time.time()
            if not expired:
                self._finish(command, "failed", {"error": f"held by {row.host_id}"})
                return
        pending = dict(row.meta.extra("pending") or {})
        start = Start(fresh=False)
        if command.type == "reply":
            text = str(command.data.get("text", ""))
            if pending:
                prompt, grants = resume_prompt(pending, text)
                start = Start(fresh=False, prompt=prompt or None, grants=tuple(grants))
            else:
                start = Start(fresh=False, prompt=text)
        self._finish(command, "done", {"continued": True})
        self._start(tg, row, start)

    def _start(self, tg: asyncio.TaskGroup, row: SessionRow, start: Start) -> None:
        log.info("%s session %s", "starting" if start.fresh else "continuing", row.id)
        task = tg.create_task(self._host(row, start), name=f"session-{row.id}")
        self.tasks[row.id] = task
        task.add_done_callback(lambda _t: self.tasks.pop(row.id, None))

    async def _host(self, row: SessionRow, start: Start) -> None:
        asker = SessionAsker(self.store, row.id, self.replies)
        try:  # checkouts and settings are blocking work: off the event loop
            session = await asyncio.to_thread(self._prepare, row, start, asker)
        except CredentialsError as e:
            log.warning("session %s waits for credentials: %s", row.id, e)
            self._fail_unprepared(row.id, str(e), pending={"kind": "credentials", "text": str(e)})
            return
        except Exception as e:
            log.exception("session %s could not start", row.id)
            self._fail_unprepared(row.id, str(e))
            return
        if session is None:
            return
        asker.bind(session.lease.epoch, session.hooks)
        try:
            await self._run(session, row, start)  # the store is ours: not closed here
        except Exception:  # one session's trouble never takes the TaskGroup (the host) down
            log.exception("session %s ended badly", row.id)

    def _prepare(
        self, row: SessionRow, start: Start, asker: SessionAsker
    ) -> PreparedSession | None:
        if start.fresh:
            epoch = claim_queued(self.store, row.id, self.host_id)
            if epoch is None:
                return None
            settings = load_settings(Path(row.cwd)).settings
            base, repo = row.meta.extra("base"), row.meta.extra("repo")  # found at dispatch
            wt = open_worktree(
                Path(row.cwd),
                f"bg-{row.id}",
                settings.worktree,
                base=base,
                repo=Path(repo) if repo else None,
            )
            if settings.worktree.pool > 0:  # topped up by this daemon, off the session's path
                request_pool_refill(self.store, wt.repo_root)
            meta = row.meta.model_copy(update={"worktree": str(wt.path), "branch": wt.branch})
            set_state(self.store, row.id, epoch, "working", cwd=str(wt.path), meta=meta)
            with self.store.write() as conn:  # prepare_session takes it again, as its own host
                release_lease(conn, row.id, self.host_id, epoch)
        session = prepare_session(
            SessionOptions(
                cwd=Path(row.cwd),
                resume=row.id,
                kind="background",
                permission_mode=row.permission_mode,
                environ=session_environ(row.meta),
            ),
            approver=asker.approve,
            ask_user=asker.ask_user,
            store=self.store,
        )
        if start.adopted or start.fresh:  # stopped by `covey stop` before we took it over
            with self.store.read() as conn:
                now = get_session(conn, row.id)
            unwanted = start.adopted and (now is None or now.state not in RESUMABLE_STATES)
            if unwanted or now is None or now.state == "stopped":
                session.lease.release()
                return None
        session.worktree = self._lock_worktree(session)
        return session

    def _lock_worktree(self, session: PreparedSession) -> Worktree | None:
        """`git worktree lock` the session's worktree while it runs here (covey refuses to
        remove or prune a locked one)."""
        with self.store.read() as conn:
            row = get_session(conn, session.session_id)
        if row is None or not row.meta.worktree or not Path(row.meta.worktree).is_dir():
            return None
        path = Path(row.meta.worktree)
        repo = row.meta.extra("repo")  # recorded at dispatch (older rows: ask git)
        root = Path(repo) if repo else find_repo(path)
        wt = Worktree(path.name, path, row.meta.branch or "", "", root, created=False)
        lock_worktree(wt, f"covey session {session.session_id}")
        return wt

    def _fail_unprepared(
        self, session_id: str, reason: str, pending: dict[str, Any] | None = None
    ) -> None:
        with self.store.read() as conn:
            row = get_session(conn, session_id)
        if row is None or row.host_id not in (None, self.host_id):
            return
        with contextlib.suppress(RunError):
            if pending is None:
                set_state(self.store, session_id, row.epoch, "failed", reason[:300])
            else:
                meta = with_meta(row.meta, pending=pending)
                set_state(self.store, session_id, row.epoch, "needs_input", reason[:300], meta=meta)

    def _first_prompt(self, session: PreparedSession, row: SessionRow, start: Start) -> str:
        if start.prompt:
            return start.prompt
        with session.store.read() as conn:
            started = bool(read_entries(conn, session.session_id))
        return CONTINUE_PROMPT if started else str(row.meta.extra("prompt") or "")

    async def _run(self, session: PreparedSession, row: SessionRow, start: Start) -> None:
        sid = session.session_id
        epoch = session.lease.epoch
        prompt = self._first_prompt(session, row, start)
        try:
            async with session.lease.heartbeat():
                with session.store.read() as conn:
                    meta = (get_session(conn, sid) or row).meta
                grants = [*(meta.extra("grants") or []), *start.grants]
                meta = with_meta(meta, pending=None, grants=grants or None)
                set_state(session.store, sid, epoch, "working", meta=meta)
                prompt = await session.started(prompt, resumed=not start.fresh)
                result = await session.agent.run(prompt)
                report = await asyncio.to_thread(self._commit, session, result.result)
        except asyncio.CancelledError:
            with contextlib.suppress(RunError):
                if sid in self.stopped_by_user:
                    set_state(session.store, sid, epoch, "stopped", "stopped by user")
                elif not _waits_on_question(session.store, sid):  # that one stays needs_input
                    set_state(session.store, sid, epoch, "interrupted", "supervisor stopped")
            raise
        except RunError as e:
            if e.reason != "lease_lost":
                set_state(session.store, sid, epoch, "failed", f"{e.reason}: {e}"[:300])
            return
        except Exception as e:
            log.exception("session %s failed", sid)
            set_state(session.store, sid, epoch, "failed", f"{type(e).__name__}: {e}"[:300])
            return
        finally:
            with contextlib.suppress(Exception):
                if session.worktree is not None:
                    await asyncio.to_thread(unlock_worktree, session.worktree)
            with contextlib.suppress(Exception):
                session.lease.release()
        set_state(session.store, sid, epoch, "completed", "end_turn", summary=report)
        await session.hooks.notify("agent_completed", f"session {sid} completed: {report}")
        log.info("session %s completed: %s", sid, report)

    def _commit(self, session: PreparedSession, final_text: str) -> str:
        """Commit the worktree's changes to the session branch; the one-line report."""
        with session.store.read() as conn:
            row = get_session(conn, session.session_id)
        did = (final_text.strip().splitlines() or ["done"])[0][:120]
        if row is None or row.meta.worktree is None:
            return did
        path = Path(row.meta.worktree)
        changed = [line for line in git("status", "--porcelain", cwd=path).splitlines() if line]
        if changed:
            commit_all(path, f"covey {session.session_id}: {did}")
        return f"{did} · branch {row.meta.branch} · {len(changed)} file(s) changed"


def _waits_on_question(store: Store, session_id: str) -> bool:
    with store.read() as conn:
        row = get_session(conn, session_id)
    return row is not None and row.state == "needs_input"


def session_environ(meta: SessionMeta) -> dict[str, str]:
    """Where a hosted session's credentials come from: the supervisor's environment (it
    inherited the one of the command that started it), `$COVEY_HOME/credentials.json` over it,
    and the endpoint the session was dispatched with. Settings `env` still wins (runner)."""
    environ = {**os.environ, **load_credentials()}
    var = BASE_URL_VARS.get(meta.provider or "")
    if var and meta.base_url:
        environ[var] = meta.base_url
    return environ
