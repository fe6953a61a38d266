"""How a background session asks its person something, and gets the answer.

AskUserQuestion and a permission rule that says "ask" both end here. The question is stored in
the session row (`meta.pending`) in the same transaction that sets `needs_input`, the
Notification hook fires `agent_needs_input`, and the session's task waits until a `reply`
command for it arrives (`covey reply`, the agent view). If the supervisor dies meanwhile, the
stored question survives: the next supervisor continues the session when the reply comes,
telling the model what it asked and what the answer was (`resume_prompt`); an allowed tool
call is remembered as a one-time grant (`meta.grants`) so the model's repeated call runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from covey.messages import ToolUseBlock
from covey.sessions.hooks_bridge import CommandHooks
from covey.sessions.pending import (
    Pending,
    call_text,
    is_always,
    is_yes,
    set_waiting,
    with_meta,
)
from covey.store import Store
from covey.store.session_meta import Grant, SessionMeta
from covey.store.sessions import get_session, update_session
from covey.tools.permissions import Decision

__all__ = ["Replies", "SessionAsker", "add_grants", "resume_prompt"]


class Replies:
    """The sessions whose tasks wait for a reply, and how a reply reaches them. A reply
    answers a question only if it was sent after the question was asked: one sent while the
    session was busy is its next prompt instead, once the turn ends."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[float, asyncio.Future[str]]] = {}

    def expect(self, session_id: str) -> None:
        """From now on, a reply to `session_id` answers its question (call before storing
        the question, so no reply sent after it is seen can be missed)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[session_id] = (time.time(), future)

    def accepts(self, session_id: str, sent_at: float) -> bool:
        waiting = self._waiting.get(session_id)
        return waiting is not None and sent_at >= waiting[0] and not waiting[1].done()

    def deliver(self, session_id: str, text: str) -> bool:
        waiting = self._waiting.get(session_id)
        if waiting is None or waiting[1].done():
            return False
        waiting[1].set_result(text)
        return True

    async def wait(self, session_id: str) -> str:
        """The reply `expect` made room for."""
        try:
            return await self._waiting[session_id][1]
        finally:
            self._waiting.pop(session_id, None)


class SessionAsker:
    """The `ask_user` and `approver` of one hosted session. `bind` it to the session's lease
    epoch and hooks once the session is prepared (they are asked only while it runs)."""

    def __init__(self, store: Store, replies: Replies) -> None:
        self.store = store
        self.replies = replies
        self.session_id = ""
        self.epoch = -1
        self.hooks: CommandHooks | None = None

    def bind(self, session_id: str, epoch: int, hooks: CommandHooks) -> None:
        self.session_id = session_id
        self.epoch = epoch
        self.hooks = hooks

    async def ask_user(self, question: str, options: list[str]) -> str:
        return await self._ask(Pending(kind="question", text=question, options=options))

    async def approve(self, call: ToolUseBlock, decision: Decision) -> bool:
        if await asyncio.to_thread(self._take_grant, call):
            return True
        pending = Pending.permission(call.name, call.input, decision.reason)
        answer = await self._ask(pending)
        if is_always(answer):  # this call, and the same call again later, unasked
            grant = Grant(tool=call.name, input=call.input, always=True)
            await asyncio.to_thread(add_grants, self.store, self.session_id, self.epoch, [grant])
            return True
        return is_yes(answer)

    async def _ask(self, pending: Pending) -> str:
        self.replies.expect(self.session_id)
        await asyncio.to_thread(set_waiting, self.store, self.session_id, self.epoch, pending)
        if self.hooks is not None:
            message = f"session {self.session_id}: {pending.text}"
            await self.hooks.notify("agent_needs_input", message)
        answer = pending.choose(await self.replies.wait(self.session_id))
        await asyncio.to_thread(set_waiting, self.store, self.session_id, self.epoch, None)
        return answer

    def _meta(self) -> SessionMeta:
        with self.store.read() as conn:
            row = get_session(conn, self.session_id)
        return row.meta if row is not None else SessionMeta()

    def _take_grant(self, call: ToolUseBlock) -> bool:
        """Use up a grant the person gave for exactly this call (after a restart), or find
        one they gave for always."""
        meta = self._meta()
        grants = list(meta.grants)
        if Grant(tool=call.name, input=call.input, always=True) in grants:
            return True
        wanted = Grant(tool=call.name, input=call.input)
        if wanted not in grants:
            return False
        grants.remove(wanted)
        with self.store.write() as conn:
            update_session(conn, self.session_id, self.epoch, meta=with_meta(meta, grants=grants))
        return True


def add_grants(store: Store, session_id: str, epoch: int, grants: Sequence[Grant]) -> None:
    """Store calls the person allowed while no host ran the session (see `Grant`)."""
    with store.write() as conn:
        row = get_session(conn, session_id)
        if row is not None:
            meta = with_meta(row.meta, grants=[*row.meta.grants, *grants])
            update_session(conn, session_id, epoch, meta=meta)


def resume_prompt(pending: Pending, reply: str) -> tuple[str, list[Grant]]:
    """The prompt that continues a session whose stored question was answered after its
    host went away, and the grants to store (an allowed call, to run when asked again)."""
    reply = pending.choose(reply)
    if pending.kind == "permission":
        call = call_text(str(pending.tool), dict(pending.tool_input or {}))
        if is_yes(reply) or is_always(reply):
            always = is_always(reply)
            grant = Grant(
                tool=str(pending.tool), input=dict(pending.tool_input or {}), always=always
            )
            return (
                f"The user allowed {call}. The session restarted before it ran, so it did not "
                "run: make that call again now, then continue the task.",
                [grant],
            )
        return f"The user did not allow {call}; they said: {reply}\nContinue without it.", []
    if pending.kind == "credentials":
        return "", []
    return (
        f"Earlier you asked the user: {pending.text}\nThe user answered: {reply}\n"
        "(The session restarted in between.) Continue the task.",
        [],
    )
