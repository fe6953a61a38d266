"""The session's persistence observer: every agent event that must survive a crash is written
to the store as it happens, fenced by the host's lease epoch.

One model response = one short write transaction: the transcript entry, its usage row, a UI
event, and the session's one-line summary. Each single tool result is written as soon as it
exists, so a crash mid-batch loses no finished result.

The transcript is append-only and mirrors the conversation. When a session resumes after a
crash left tool calls unanswered, the resumed conversation answers them (`covey.sessions.
resume`); the first message this persister writes is preceded by that answer, so the stored
conversation stays well-formed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from covey.agent import (
    AgentEvent,
    Compacted,
    MessageAdded,
    RequestBilled,
    ToolFinished,
    ToolStarted,
)
from covey.errors import LeaseLost
from covey.messages import Message, dump_message
from covey.models.pricing import PriceSetting, cost_usd
from covey.sessions.resume import interrupted_answer
from covey.store import Store
from covey.store.events import append_event
from covey.store.sessions import update_session
from covey.store.transcript import append_entry, read_entries
from covey.store.usage import record_usage

__all__ = ["Persister", "step_summary"]


def step_summary(message: Message) -> str | None:
    """The latest meaningful step, in one line, for lists and the agent view."""
    for call in message.tool_uses:
        arg = call.input.get("description") or call.input.get("command")
        arg = arg or call.input.get("file_path") or call.input.get("pattern") or ""
        return f"{call.name}({str(arg)[:80]})"
    text = message.text.strip()
    return text.splitlines()[0][:120] if text else None


class Persister:
    def __init__(
        self,
        store: Store,
        session_id: str,
        epoch: int,
        agent_path: str = "main",
        *,
        pricing: Mapping[str, PriceSetting] | None = None,
    ):
        self.store = store
        self.pricing = pricing
        """Settings `pricing`, over the built-in table."""
        self.session_id = session_id
        self.epoch = epoch
        self.agent_path = agent_path
        self._settled = False
        """Whether the transcript's trailing tool calls are known to be answered."""

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, MessageAdded):
            self._message(event)
        elif isinstance(event, ToolFinished):
            self._entry("tool_result", {"result": event.result.model_dump(mode="json")})
        elif isinstance(event, Compacted):
            data = {
                "messages": [dump_message(m) for m in event.messages],
                "summary": event.summary,
                "trigger": event.trigger,
                "pre_tokens": event.pre_tokens,
                "method": event.method,
            }
            ui_event = ("compacted", {"trigger": event.trigger, "method": event.method})
            self._entry("compact_boundary", data, event=ui_event)
        elif isinstance(event, RequestBilled):
            cost = cost_usd(event.model, event.usage, self.pricing)
            with self.store.write() as conn:
                record_usage(conn, self.session_id, self.agent_path, event.model, event.usage, cost)
        elif isinstance(event, ToolStarted):
            with self.store.write() as conn:
                append_event(conn, self.session_id, "tool_started", {"tool": event.call.name})

    def _message(self, event: MessageAdded) -> None:
        message = event.message
        with self.store.write() as conn:
            if not self._settled:
                self._record_interrupted_answer(conn)
            seq = append_entry(conn, self.session_id, self.epoch, "message", dump_message(message))
            if seq is None:
                raise self._lost()
            if event.receipt is not None:  # e.g. team mail: marked delivered with its entry
                event.receipt(conn, seq)
            if event.usage is not None and event.model:
                cost = cost_usd(event.model, event.usage, self.pricing)
                record_usage(conn, self.session_id, self.agent_path, event.model, event.usage, cost)
            if message.role == "assistant":
                summary = step_summary(message)
                tools = [c.name for c in message.tool_uses]
                append_event(
                    conn, self.session_id, "assistant", {"summary": summary, "tools": tools}
                )
                if summary:
                    update_session(conn, self.session_id, self.epoch, summary=summary)

    def _record_interrupted_answer(self, conn: sqlite3.Connection) -> None:
        """Once: append the answer a resume gave to calls the transcript left unanswered."""
        answer = interrupted_answer(read_entries(conn, self.session_id))
        if answer is not None:
            data = dump_message(answer)
            if append_entry(conn, self.session_id, self.epoch, "message", data) is None:
                raise self._lost()
        self._settled = True

    def _entry(
        self, kind: str, data: dict[str, Any], event: tuple[str, dict[str, Any]] | None = None
    ) -> None:
        with self.store.write() as conn:
            if append_entry(conn, self.session_id, self.epoch, kind, data) is None:
                raise self._lost()
            if event is not None:
                append_event(conn, self.session_id, *event)

    def _lost(self) -> LeaseLost:
        return LeaseLost(f"session {self.session_id} was taken over by another host")
