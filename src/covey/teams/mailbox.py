"""Each member's `Mailbox` (the agent's seam): mail joins the conversation before the next
model call, marked delivered in the transaction that writes the entry carrying it; a turn's
end is where the lead waits for its team and a teammate reports and waits for mail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from covey.agent.mailbox import Delivery
from covey.errors import LeaseLost
from covey.sessions.state import set_state
from covey.store.teams import (
    LEAD,
    list_tasks,
    mark_delivered,
    send_message,
    undelivered,
    undelivered_count,
)
from covey.teams.seat import TeamSeat
from covey.teams.text import idle_body, mail_text

if TYPE_CHECKING:
    from covey.teams.runtime import TeamRuntime

__all__ = ["LeadMailbox", "TeammateMailbox"]


class _MemberMailbox:
    def __init__(self, seat: TeamSeat, runtime: TeamRuntime) -> None:
        self.seat = seat
        self.runtime = runtime
        self.notes: list[str] = []
        """Feedback for the model that is not mail (a TeammateIdle hook's)."""

    async def collect(self) -> list[Delivery]:
        seat = self.seat
        out = [Delivery(note) for note in self.notes]
        self.notes = []
        with seat.store.read() as conn:
            mail = undelivered(conn, seat.team_id, seat.name)
        if mail:
            ids = [m.id for m in mail]

            def receipt(conn: Any, seq: int) -> None:
                if mark_delivered(conn, ids, seq=seq) != len(ids):  # delivered elsewhere
                    raise LeaseLost(f"mail to {seat.name} was delivered by another host")

            out.append(Delivery(mail_text(mail), receipt))
        return out

    async def aclose(self) -> None:
        return None


class LeadMailbox(_MemberMailbox):
    """The lead's: its turn does not end while a teammate works or mail to the lead waits."""

    async def collect(self) -> list[Delivery]:
        await self.runtime.start()
        return await super().collect()

    async def turn_ended(self, final_text: str) -> bool:
        return await self.runtime.settle()

    async def aclose(self) -> None:
        await self.runtime.aclose()


class TeammateMailbox(_MemberMailbox):
    """A teammate's: its turn's end tells the lead (final text, completed tasks), then it is
    `idle` until mail arrives (True: go on) or the team shuts down (False)."""

    def __init__(
        self, seat: TeamSeat, runtime: TeamRuntime, epoch: int, branch: str | None
    ) -> None:
        super().__init__(seat, runtime)
        self.epoch = epoch
        self.branch = branch

    async def turn_ended(self, final_text: str) -> bool:
        seat, store = self.seat, self.seat.store
        if feedback := await self._unfinished_tasks():
            self.notes.append(feedback)
            return True
        hook = await seat.hook("TeammateIdle")
        if hook.blocked:  # exit 2: keep working, with the hook's words
            self.notes.append(hook.feedback or "A TeammateIdle hook asks you to keep working.")
            return True
        done, seat.completed = seat.completed, []
        body = idle_body(seat.session_id, final_text, done, branch=self.branch)
        with store.write() as conn:
            send_message(conn, seat.team_id, seat.name, LEAD, body, summary="idle", kind="idle")
            set_state(store, seat.session_id, self.epoch, "idle")
        self.runtime.idle(seat.name)
        if not hook.continue_ or seat.shutdown_approved:
            return False
        while not self.runtime.closing:
            with store.read() as conn:
                waiting = undelivered_count(conn, seat.team_id, seat.name)
            if waiting:
                self.runtime.working(seat.name)
                set_state(store, seat.session_id, self.epoch, "working")
                return True
            await seat.bell.wait()
        return False

    async def _unfinished_tasks(self) -> str:
        """TaskCompleted also runs when a teammate ends its turn with tasks in progress; its
        exit 2 keeps the teammate working (the tasks stay as they are)."""
        seat = self.seat
        with seat.store.read() as conn:
            tasks = list_tasks(conn, seat.team_id)
        for task in tasks:
            if task.owner == seat.name and task.status == "in_progress":
                hook = await seat.hook(
                    "TaskCompleted",
                    task_id=task.id,
                    task_subject=task.subject,
                    task_description=task.description,
                )
                if hook.blocked:
                    return hook.feedback or f"Task {task.id} is still in progress."
        return ""
