"""The supervisor daemon: one asyncio `TaskGroup`, one task per hosted background session.

Every `POLL_S` it reads the store, once, for (a) queued background sessions, which it claims
(a lease under its own host id) and starts, and (b) pending commands: `stop` cancels a hosted
session's task (state `stopped`); `reply` answers a session waiting on a question or a
permission (see `asking`), or continues a session nobody hosts with the reply as its next
prompt (a reply to a session mid-turn waits until the turn ends); `respawn` continues a
session nobody hosts. Preparation (settings, checkout) runs in a worker thread.

On start, and every `ORPHAN_SCAN_S` while it runs, it adopts the background sessions whose
host died while they were live (a host that was a supervisor is known dead once this one holds
the supervisor lock, whatever its pid looks like; any other by its pid or its lease): it
takes their lease over (a new epoch, so the old host, should it wake, can write nothing) and
continues the conversation from the transcript with a short "continue" prompt (a tool call
that was running is answered as interrupted, never re-run) — unless `background.autoResume`
is off, or the session waits on a stored question (its reply will continue it). SIGTERM ends
it: its sessions are marked `interrupted` (a waiting one stays `needs_input`) and the pid file
is removed; so does having had nothing to host for `background.idleExitMinutes` (see
`lifecycle`). Credentials: see `session_environ`; a session whose key is missing waits in
`needs_input` naming the variable, and a reply or `covey respawn` retries it. A session a
budget stopped waits in `needs_input` too: a reply naming an amount raises that budget for it
(`covey.budget.spend_limits`), a respawn checks again with the settings as they are now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path
from typing import Any, Literal

from covey.agent import RunResult
from covey.budget.spend_limits import BUDGET_CONTINUE_PROMPT, budget_raise, raise_budget
from covey.config import load_settings, user_settings
from covey.errors import BudgetExceeded, CredentialsError
from covey.executors.replica_ask import waits_for_reply
from covey.git.pool import refill_pool
from covey.sessions.background import (
    RESUMABLE_STATES,
    claim_queued,
    mark_interrupted,
    orphaned_sessions,
    requeue_orphaned_commands,
    stored_options,
    take_orphan,
)
from covey.sessions.host import CancelCause, SessionHost
from covey.sessions.lease import SUPERVISOR_ROLE, holder_alive, new_host_id
from covey.sessions.pending import Pending
from covey.sessions.plan import plan_session
from covey.sessions.state import set_state
from covey.sessions.subagents import RUNNING
from covey.store import Store
from covey.store.commands import CommandRow, claim_command, finish_command, pending_commands
from covey.store.sessions import SessionRow, get_session, list_sessions
from covey.supervisor.asking import Replies, SessionAsker, add_grants, resume_prompt
from covey.supervisor.start import (
    CONTINUE_PROMPT,
    Start,
    commit_session,
    fail_unprepared,
    first_prompt,
    openers,
    session_environ,
)

__all__ = ["CONTINUE_PROMPT", "Start", "Supervisor", "session_environ"]

FinishStatus = Literal["done", "failed"]

log = logging.getLogger("covey.supervisor")

POLL_S = 0.1
ORPHAN_SCAN_S = 1.0
"""How often a running supervisor looks for live sessions whose host is gone."""


class Supervisor:
    def __init__(self, store: Store, *, idle_exit_s: float = 0.0) -> None:
        self.store = store
        self.host_id = new_host_id(SUPERVISOR_ROLE)
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.hosts: dict[str, SessionHost] = {}
        """The hosted sessions that are open (a task may still be opening its session)."""
        self.stopped_by_user: set[str] = set()
        self.replies = Replies()
        self.stopping = asyncio.Event()
        self.idle_exit_s = idle_exit_s
        """Return from `serve` after this long with nothing to host (0: never)."""
        self.went_idle = False
        self._refills = 0
        self._idle_since: float | None = None
        self.ray: Any = None
        """The Ray executor (`background.executor: ray`), else None: sessions run here."""
        self.openers = openers()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        try:
            background = user_settings().background
        except Exception:  # a broken settings file (the lifecycle logs it): sessions run here
            background = None
        if background is not None and background.executor == "ray":  # Ray only then
            from covey.executors.ray_executor import RayExecutor

            self.ray = RayExecutor(self.store, self.host_id, background)
        async with asyncio.TaskGroup() as tg:
            if requeued := requeue_orphaned_commands(self.store):
                log.info("requeued %d command(s) a dead host had claimed", requeued)
            for row in orphaned_sessions(self.store, self.host_id):
                self._adopt(tg, row)
            next_scan = time.monotonic() + ORPHAN_SCAN_S
            while not self.stopping.is_set():
                try:
                    self._poll(tg)
                    if time.monotonic() >= next_scan:
                        next_scan = time.monotonic() + ORPHAN_SCAN_S
                        self._adopt_orphans(tg)
                except Exception:
                    log.exception("poll failed")
                if self._idle_long_enough():
                    self.went_idle = True
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_S):
                        await self.stopping.wait()
            log.info("stopping: interrupting %d session(s)", len(self.tasks))
            for sid, task in self.tasks.items():
                self._cancel(sid, task, "shutdown")
        self.openers.shutdown()  # every opening was awaited by its task

    def _adopt_orphans(self, tg: asyncio.TaskGroup) -> None:
        """Live sessions whose host went away while this supervisor runs (a foreground
        host that died after handing one over, a lease that expired): adopt them too."""
        for row in orphaned_sessions(self.store, self.host_id, ("working", "needs_input")):
            if row.id not in self.tasks:
                self._adopt(tg, row)

    def _adopt(self, tg: asyncio.TaskGroup, row: SessionRow) -> None:
        """A session left live by a dead host: one waiting on a stored question waits on (one
        a node asked is caught up with), the others resume now (`interrupted` with
        `background.autoResume` off) until someone replies or respawns them."""
        if row.state == "needs_input" and row.meta.pending is not None:
            if self.ray is not None and row.meta.node and waits_for_reply(row):
                self._start(tg, row, Start(fresh=False, adopted=True))
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
            if sid in RUNNING and self._claim(command):  # a subagent of a hosted session
                RUNNING[sid]()  # it ends `stopped`, its parent's Agent call says so
                self._finish(command, "done", {"stopped": True})
            elif sid in self.tasks and self._claim(command):
                self.stopped_by_user.add(sid)
                self._cancel(sid, self.tasks[sid], "stop")
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

    def _cancel(self, sid: str, task: asyncio.Task[None], cause: CancelCause) -> None:
        """Cancel a hosted session's task, saying why (its host records the state)."""
        host = self.hosts.get(sid)
        if host is not None and host.cancel_cause is None:
            host.cancel_cause = cause
        task.cancel()

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
        pending = row.meta.pending
        start = Start(fresh=False)
        if pending is not None and pending.kind == "budget":  # a reply may raise it
            text = str(command.data.get("text", "")) if command.type == "reply" else ""
            raised = budget_raise(pending, text)
            start = Start(fresh=False, prompt=BUDGET_CONTINUE_PROMPT, budget_raise=raised)
        elif command.type == "reply":
            text = str(command.data.get("text", ""))
            if pending is not None:
                prompt, grants = resume_prompt(pending, text)
                start = Start(fresh=False, prompt=prompt or None, grants=tuple(grants))
            else:
                start = Start(fresh=False, prompt=text)
        self._finish(command, "done", {"continued": True})
        self._start(tg, row, start)

    def _start(self, tg: asyncio.TaskGroup, row: SessionRow, start: Start) -> None:
        log.info("%s session %s", "starting" if start.fresh else "continuing", row.id)
        coro = self._host(row, start) if self.ray is None else self._on_cluster(row, start)
        task = tg.create_task(coro, name=f"session-{row.id}")
        self.tasks[row.id] = task
        task.add_done_callback(lambda _t: self.tasks.pop(row.id, None))

    async def _on_cluster(self, row: SessionRow, start: Start) -> None:
        """On a node of the Ray cluster; a respawn or reply while the cluster is gone runs
        here (`covey.executors.ray_executor`)."""
        stopped = lambda: row.id in self.stopped_by_user  # noqa: E731
        here = not (start.fresh or start.adopted)
        ran = await self.ray.host(
            row,
            start.fresh,
            start.prompt,
            stopped,
            may_run_here=here,
            grants=start.grants,  # what a reply gave: stored before the node has it
            budget_raise=start.budget_raise,
        )
        if not ran:
            await self._host(row, start)

    async def _host(self, row: SessionRow, start: Start) -> None:
        asker = SessionAsker(self.store, self.replies)
        # checkouts and settings are blocking work: off the event loop (on `openers`), and
        # not abandoned half-way when the session is stopped meanwhile
        loop = asyncio.get_running_loop()
        opening = loop.run_in_executor(self.openers, self._open, row, start, asker)
        try:
            host = await asyncio.shield(opening)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                if (late := await opening) is not None:
                    self._abandon(late)
            raise
        except CredentialsError as e:
            log.warning("session %s waits for credentials: %s", row.id, e)
            pending = Pending(kind="credentials", text=str(e))
            fail_unprepared(self.store, self.host_id, row.id, str(e), pending=pending)
            return
        except Exception as e:
            log.exception("session %s could not start", row.id)
            fail_unprepared(self.store, self.host_id, row.id, str(e))
            return
        if host is None:
            return
        self.hosts[row.id] = host
        try:
            await self._run(host, row, start)
        except Exception:  # one session's trouble never takes the TaskGroup (the host) down
            log.exception("session %s ended badly", row.id)
        finally:
            self.hosts.pop(row.id, None)

    def _open(self, row: SessionRow, start: Start, asker: SessionAsker) -> SessionHost | None:
        """Plan and open a hosted session (a queued one is claimed first); None when it is
        not ours to run after all."""
        claimed = None
        if start.fresh or start.adopted:
            take = claim_queued if start.fresh else take_orphan
            claimed = take(self.store, row.id, self.host_id)
            if claimed is None:
                return None
        plan = plan_session(stored_options(row, session_environ(row.meta)), previous=row)
        host = SessionHost.open(
            self.store, plan, asker=asker, host_id=self.host_id, claimed_epoch=claimed
        )
        if start.adopted or start.fresh:  # stopped by `covey stop` before we took it over
            with self.store.read() as conn:
                now = get_session(conn, row.id)
            unwanted = start.adopted and (now is None or now.state not in RESUMABLE_STATES)
            if unwanted or now is None or now.state == "stopped":
                host.close()
                return None
        return host

    def _abandon(self, host: SessionHost) -> None:
        """A session cancelled while it was being opened: a stop is recorded, a shutdown
        leaves it for the next supervisor."""
        with contextlib.suppress(Exception):
            if host.session_id in self.stopped_by_user:
                set_state(
                    self.store, host.session_id, host.lease.epoch, "stopped", "stopped by user"
                )
        host.close()

    async def _run(self, host: SessionHost, row: SessionRow, start: Start) -> None:
        sid = host.session_id
        prompt = first_prompt(self.store, host.session_id, row, start)
        if start.grants:
            await asyncio.to_thread(add_grants, self.store, sid, host.lease.epoch, start.grants)
        if start.budget_raise is not None:
            which, usd = start.budget_raise
            await asyncio.to_thread(raise_budget, self.store, sid, host.lease.epoch, which, usd)

        async def commit(result: RunResult) -> str:
            return await asyncio.to_thread(commit_session, host, result.result)

        try:
            await host.run_turn(prompt, start_hooks=True, finish=commit)
        except BudgetExceeded as e:  # recorded by the host: needs_input, asking for a raise
            log.info("session %s waits for a budget raise: %s", sid, e.summary)
            return
        except Exception:  # recorded by the host (failed, with its reason)
            log.exception("session %s failed", sid)
            return
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(host.close)
        log.info("session %s completed", sid)
