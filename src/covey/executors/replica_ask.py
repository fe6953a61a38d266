"""A replicated session asks its person: the question goes home, the answer comes back.

On the node (`NodeAsker`, the `asker` of the node's `SessionHost`): AskUserQuestion, or a
permission rule that says "ask" (the session's own call or one of its subagents'), stores the
question in the node store's row (`meta.pending`, `needs_input`) as the supervisor's asker
does locally (`covey.supervisor.asking`); the replica triggers journal that row, so the
user's store shows the same `waiting` row and question (`covey agents`, the agent view). Then
it waits for a `reply` command in the node store. A reply is put there by the supervisor
(`forwardable_commands`, in `ray_pump`); the node claims it and, in ONE transaction, finishes
it and sets the row back to `working` (both journaled home), then waits until the supervisor
has applied that before the answer is used: a permitted call runs only once the user's store
knows the question was answered. Grants work as locally (`meta.grants`, in the row, so they
travel with it): a reply of "always" allows the same call for the rest of the session, on
this node and on any it resumes on; a call allowed after the host went away runs once.

On the user's side (`forwardable_commands`): the root's `reply` is sent to the node only when
it answers the stored question, as the local `Replies.accepts` decides: the row waits on a
question or a permission, the reply was sent at or after the row started waiting (the row's
`updated_at`, written by the node: clocks of the cluster's machines are assumed in step to
well under a person's reaction time), and no other reply answered it already. Any other
reply stays for the supervisor (the next prompt once the turn ends), as locally.

Failures (the executor's, `ray_executor`): a node lost while its session waits leaves the
session waiting at home, with the question (`leave_waiting`): a reply forwarded to that node
and not applied is put back to pending (`requeue_answers`), and the reply continues the
session on another node as it continues a local one whose supervisor died
(`supervisor.asking.resume_prompt`: the model is told what it asked and what the answer was;
an allowed call is granted once). A supervisor killed while a node session waits: the next
one catches up with the node at the same epoch (the daemon adopts waiting sessions that have
a node) and forwards the reply; a reply it had forwarded and not seen answered is pending
again (`requeue_orphaned_commands`) and forwarded again (the node ignores an id it has).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from covey.budget.spend_limits import raise_budget
from covey.errors import LeaseLost
from covey.executors.replica import tree_commands
from covey.sessions.pending import Pending, set_waiting, with_meta
from covey.sessions.state import write_state
from covey.store import Store
from covey.store.commands import CommandRow, claim_commands, finish_command, get_command
from covey.store.replica import get_cursor, last_journal_id
from covey.store.session_meta import Grant, SessionMeta
from covey.store.sessions import SessionRow, get_session, update_session
from covey.supervisor.asking import Replies, SessionAsker, add_grants

__all__ = [
    "ASKING_KINDS",
    "NodeAsker",
    "forwardable_commands",
    "leave_waiting",
    "requeue_answers",
    "store_reply",
    "waits_for_reply",
]

ASKING_KINDS = ("question", "permission")
"""Pending kinds a node session waits on while it runs (a budget or credentials stop ends
its run: the reply continues it, as locally)."""
POLL_S = 0.05


class NodeAsker(SessionAsker):
    """The asker of a session hosted on a node: the question in the node store's row, the
    answer a `reply` command forwarded into the node store."""

    def __init__(self, node_store: Store, *, poll_s: float = POLL_S) -> None:
        super().__init__(node_store, Replies())
        self.poll_s = poll_s

    async def _ask(self, pending: Pending) -> str:
        await asyncio.to_thread(set_waiting, self.store, self.session_id, self.epoch, pending)
        if self.hooks is not None:
            message = f"session {self.session_id}: {pending.text}"
            await self.hooks.notify("agent_needs_input", message)
        while (text := await asyncio.to_thread(self._take_reply)) is None:
            await asyncio.sleep(self.poll_s)
        await self._applied()
        return pending.choose(text)

    def _take_reply(self) -> str | None:
        """The first forwarded reply, if one came: it is finished, and the row is `working`
        again with its question cleared, in one transaction (journaled home together)."""
        with self.store.write() as conn:
            got = claim_commands(
                conn, claimer="node", session_id=self.session_id, types=["reply"], limit=1
            )
            if not got:
                return None
            finish_command(conn, got[0].id, "done", {"delivered": True})
            row = get_session(conn, self.session_id)
            meta = with_meta(row.meta if row else SessionMeta(), pending=None)
            sid, epoch = self.session_id, self.epoch
            if not write_state(conn, sid, epoch, "working", None, meta=meta):
                raise LeaseLost(f"session {sid} is now held by another host (epoch > {epoch})")
        return str(got[0].data.get("text", ""))

    async def _applied(self) -> None:
        """Wait until the supervisor applied everything journaled so far (the answer)."""
        with self.store.read() as conn:
            target = last_journal_id(conn, self.session_id)
        while True:
            with self.store.read() as conn:
                got = get_cursor(conn, self.session_id)
            if got is None or got[1] >= target:
                return
            await asyncio.sleep(self.poll_s)


def waits_for_reply(row: SessionRow | None) -> bool:
    """The row waits on a question or a permission its running host asked."""
    pending = row.meta.pending if row is not None else None
    return row is not None and row.state == "needs_input" and _asking(pending)


def _asking(pending: Pending | None) -> bool:
    return pending is not None and pending.kind in ASKING_KINDS


def forwardable_commands(store: Store, session_id: str, after: int) -> list[CommandRow]:
    """What the supervisor sends to the node of `session_id`: the pending commands of its
    children (`replica.tree_commands`) and the root's reply that answers its stored
    question, if one was sent and is still pending (its id may be below `after`: it was sent
    before the question came home, and a child's command forwarded meanwhile); oldest first."""
    found = tree_commands(store, session_id, after, children_only=True)
    if (answer := _answer(store, session_id)) is not None:
        found.append(answer)
    return sorted(found, key=lambda c: c.id)


def _answer(store: Store, session_id: str) -> CommandRow | None:
    """The root's reply that answers the question its row waits on (see the module's doc)."""
    with store.read() as conn:
        row = get_session(conn, session_id)
        if row is None or not waits_for_reply(row):
            return None
        first = conn.execute(
            "SELECT id FROM commands WHERE session_id = ? AND type = 'reply' AND ts >= ?"
            " ORDER BY id LIMIT 1",
            (session_id, row.updated_at),
        ).fetchone()
        command = get_command(conn, int(first[0])) if first is not None else None
    # none yet, or the first was sent on already (one answer per question)
    return command if command is not None and command.status == "pending" else None


def requeue_answers(store: Store, session_id: str) -> int:
    """Replies of `session_id` sent to a node and not seen answered (claimed, unfinished):
    pending again, for whoever hosts the session next; how many."""
    with store.write() as conn:
        cursor = conn.execute(
            "UPDATE commands SET status = 'pending', claimed_by = NULL"
            " WHERE session_id = ? AND type = 'reply' AND status = 'claimed'",
            (session_id,),
        )
        return cursor.rowcount


def leave_waiting(store: Store, session_id: str, take: Callable[[], int | None]) -> bool:
    """A session that waits on a question and whose node is gone (or the cluster) stays
    waiting at home: taken over (`take`: the lease at a new epoch, which fences the node
    out), on no node (`meta.node` cleared), its forwarded reply pending again. False
    (nothing done) when it does not wait on a question."""
    with store.read() as conn:
        if not waits_for_reply(get_session(conn, session_id)):
            return False
    if (epoch := take()) is None:
        return False
    with store.write() as conn:
        row = get_session(conn, session_id)
        if row is None or row.epoch != epoch or not waits_for_reply(row):
            return False
        update_session(conn, session_id, epoch, meta=with_meta(row.meta, node=None))
    requeue_answers(store, session_id)
    return True


def store_reply(
    store: Store,
    session_id: str,
    epoch: int,
    grants: Sequence[Grant] = (),
    budget_raise: tuple[str, float] | None = None,
) -> None:
    """What a reply that continues a session changes before its next run (as the local
    supervisor does): calls allowed once, a budget raised; stored with the row at `epoch`,
    so the node store seeded from it has them."""
    if grants:
        add_grants(store, session_id, epoch, grants)
    if budget_raise is not None:
        which, usd = budget_raise
        raise_budget(store, session_id, epoch, which, usd)
