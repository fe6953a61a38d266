"""Seeding the store for the TUI tests: sessions in any state, with real store functions;
the `store` fixture and `wait_for` the TUI tests share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from covey.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock, dump_message
from covey.sessions.lease import new_host_id
from covey.sessions.state import set_state
from covey.store import Store
from covey.store.sessions import (
    SessionKind,
    SessionMeta,
    SessionRow,
    SessionState,
    acquire_lease,
    insert_session,
    new_session_id,
    release_lease,
    update_session,
)
from covey.store.transcript import append_entry

WAIT_S = 30.0


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.open() as opened:
        yield opened


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` (letting the app run) until it holds; fail after a generous deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


T0 = 1_800_000_000.0
"""A fixed creation time for snapshot tests."""


def seed_session(
    store: Store,
    cwd: Path,
    *,
    name: str | None,
    state: SessionState,
    id: str | None = None,
    kind: SessionKind = "background",
    summary: str | None = None,
    reason: str | None = None,
    pending: dict[str, Any] | None = None,
    worktree: str | None = None,
    branch: str | None = None,
    created: float | None = None,
    updated: float | None = None,
    held: bool = True,
) -> tuple[str, int]:
    """A session in `state`, held by a lease of this process (unless `held` is False: then
    no host holds it, as after a crash); (its id, epoch)."""
    meta = SessionMeta.model_validate(
        {"worktree": worktree, "branch": branch, "pending": pending, "provider": "scripted"}
    )
    host = new_host_id()
    with store.write() as conn:
        sid = id or new_session_id(conn)
        row = SessionRow.new(
            id=sid, kind=kind, cwd=str(cwd), model="scripted:demo", name=name, meta=meta,
            now=created,
        )  # fmt: skip
        insert_session(conn, row)
        epoch = acquire_lease(conn, sid, host, 3600.0, time.time()) or 0
    if state != "queued":
        set_state(store, sid, epoch, state, reason, summary=summary)
    if updated is not None or created is not None:
        with store.write() as conn:
            update_session(conn, sid, epoch, updated_at=updated or created or time.time())
    if not held:
        with store.write() as conn:
            release_lease(conn, sid, host, epoch)
    return sid, epoch


def seed_transcript(store: Store, sid: str, epoch: int) -> None:
    """A prompt, a response with a tool call, its (long) result and a final answer."""
    messages = [
        Message.user("fix the failing test"),
        Message(
            role="assistant",
            content=[
                TextBlock(text="Let me run the tests."),
                ToolUseBlock(id="t1", name="Bash", input={"command": "pytest -q"}),
            ],
        ),
        Message(
            role="user",
            content=[ToolResultBlock(tool_use_id="t1", content="F.\n1 failed\n1 passed\nend")],
        ),
        Message(role="assistant", content=[TextBlock(text="Fixed the off-by-one.\nAll green.")]),
    ]
    with store.write() as conn:
        for i, message in enumerate(messages):
            append_entry(conn, sid, epoch, "message", dump_message(message), now=T0 + i)
