"""The supervisor daemon: one asyncio `TaskGroup`, one task per hosted background session.

Every `POLL_S` it reads the store for (a) queued background sessions, which it claims (a lease
under its own host id) and starts, and (b) `stop` commands for the sessions it hosts, which
cancel that session's task (state `stopped`). On start it first resumes the background
sessions whose host died while they were live: it takes their lease over (a new epoch, so the
old host, should it wake, can write nothing) and continues the conversation from the
transcript with a short "continue" prompt; a tool call that was running is answered as
interrupted, never re-run. SIGTERM ends it: its sessions are marked `interrupted` (resumed by
the next supervisor) and the pid file is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from pathlib import Path

from covey.config import load_settings
from covey.errors import RunError
from covey.git.repo import commit_all, git
from covey.git.worktrees import open_worktree
from covey.sessions.background import RESUMABLE_STATES, claim_queued, orphaned_sessions
from covey.sessions.lease import new_host_id
from covey.sessions.runner import PreparedSession, SessionOptions, prepare_session
from covey.sessions.state import set_state
from covey.store import Store
from covey.store.commands import claim_commands, finish_command, pending_commands
from covey.store.sessions import SessionRow, get_session, list_sessions, release_lease
from covey.store.transcript import read_entries
from covey.supervisor import lock_path, pid_path

__all__ = ["CONTINUE_PROMPT", "Supervisor", "main"]

log = logging.getLogger("covey.supervisor")

POLL_S = 0.1
CONTINUE_PROMPT = (
    "The background host restarted while you were working. Continue the task where you "
    "left off; check the state of anything that was interrupted before relying on it."
)


class Supervisor:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.host_id = new_host_id()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.stopped_by_user: set[str] = set()
        self.stopping = asyncio.Event()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        async with asyncio.TaskGroup() as tg:
            for row in orphaned_sessions(self.store):
                self._start(tg, row, resume=True)
            while not self.stopping.is_set():
                try:
                    self._poll(tg)
                except Exception:
                    log.exception("poll failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_S):
                        await self.stopping.wait()
            log.info("stopping: interrupting %d session(s)", len(self.tasks))
            for task in self.tasks.values():
                task.cancel()

    def _poll(self, tg: asyncio.TaskGroup) -> None:
        with self.store.read() as conn:
            queued = list_sessions(conn, kinds=["background"], states=["queued"])
        for row in reversed(queued):  # oldest first
            if row.id not in self.tasks:
                self._start(tg, row, resume=False)
        with self.store.read() as conn:  # one read per poll; a write only when there is work
            pending = {c.session_id for c in pending_commands(conn, types=["stop"])}
        for session_id in [s for s in self.tasks if s in pending]:
            with self.store.write() as conn:
                commands = claim_commands(
                    conn, claimer=self.host_id, session_id=session_id, types=["stop"]
                )
            for command in commands:
                self.stopped_by_user.add(session_id)
                self.tasks[session_id].cancel()
                with self.store.write() as conn:
                    finish_command(conn, command.id, "done", {"stopped": True})

    def _start(self, tg: asyncio.TaskGroup, row: SessionRow, *, resume: bool) -> None:
        log.info("%s session %s", "resuming" if resume else "starting", row.id)
        task = tg.create_task(self._host(row, resume=resume), name=f"session-{row.id}")
        self.tasks[row.id] = task
        task.add_done_callback(lambda _t: self.tasks.pop(row.id, None))

    async def _host(self, row: SessionRow, *, resume: bool) -> None:
        try:
            session = self._prepare(row, resume=resume)
        except Exception as e:
            log.exception("session %s could not start", row.id)
            self._fail_unprepared(row.id, str(e))
            return
        if session is None:
            return
        try:
            await self._run(session, row, resume=resume)  # the store is ours: not closed here
        except Exception:  # one session's trouble never takes the TaskGroup (the host) down
            log.exception("session %s ended badly", row.id)

    def _prepare(self, row: SessionRow, *, resume: bool) -> PreparedSession | None:
        if not resume:
            epoch = claim_queued(self.store, row.id, self.host_id)
            if epoch is None:
                return None
            settings = load_settings(Path(row.cwd)).settings
            wt = open_worktree(Path(row.cwd), f"bg-{row.id}", settings.worktree)
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
            ),
            store=self.store,
        )
        if resume:  # stopped by `covey stop` before we took it over: leave it stopped
            with self.store.read() as conn:
                now = get_session(conn, row.id)
            if now is None or now.state not in RESUMABLE_STATES:
                session.lease.release()
                return None
        return session

    def _fail_unprepared(self, session_id: str, reason: str) -> None:
        with self.store.read() as conn:
            row = get_session(conn, session_id)
        if row is not None and row.host_id in (None, self.host_id):
            with contextlib.suppress(RunError):
                set_state(self.store, session_id, row.epoch, "failed", reason[:300])

    async def _run(self, session: PreparedSession, row: SessionRow, *, resume: bool) -> None:
        sid = session.session_id
        epoch = session.lease.epoch
        with session.store.read() as conn:
            started = bool(read_entries(conn, sid))
        prompt = CONTINUE_PROMPT if started else str(getattr(row.meta, "prompt", "") or "")
        try:
            async with session.lease.heartbeat():
                set_state(session.store, sid, epoch, "working")
                result = await session.agent.run(prompt)
                report = await asyncio.to_thread(self._commit, session, result.result)
        except asyncio.CancelledError:
            with contextlib.suppress(RunError):
                if sid in self.stopped_by_user:
                    set_state(session.store, sid, epoch, "stopped", "stopped by user")
                else:
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
                session.lease.release()
        set_state(session.store, sid, epoch, "completed", "end_turn", summary=report)
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


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    lock = lock_path()
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return  # another supervisor runs: nothing to do
    pid_file = pid_path()
    pid_file.write_text(f"{os.getpid()}\n")  # replaces a stale one
    log.info("supervisor %d started", os.getpid())
    store = Store.open()
    try:
        asyncio.run(Supervisor(store).serve())
    finally:
        store.close()
        with contextlib.suppress(OSError, ValueError):
            if int(pid_file.read_text().strip()) == os.getpid():
                pid_file.unlink()
        log.info("supervisor %d exited", os.getpid())
        os.close(fd)
