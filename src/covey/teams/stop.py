"""`covey stop TEAMMATE`: a `stop` command row (the lead's process must not be interrupted),
which the teammate's host looks for while the teammate works or waits idle for mail."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from covey.store import Store
from covey.store.commands import claim_command, finish_command, pending_commands

if TYPE_CHECKING:
    from covey.sessions.host import SessionHost

__all__ = ["STOP_POLL_S", "stop_command", "unless_stopped"]

STOP_POLL_S = 0.25
"""How often a teammate's host looks for `covey stop TEAMMATE`."""
T = TypeVar("T")


async def unless_stopped(
    store: Store, host: SessionHost, work: Coroutine[Any, Any, T]
) -> tuple[bool, T | None]:
    """Run a teammate's turn (or its idle wait) while watching for `covey stop TEAMMATE` (a
    `stop` command: its lead's process must not be interrupted); (True, None) when stopped."""
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=STOP_POLL_S)
            if not task.done() and (command := stop_command(store, host.session_id)):
                host.cancel_cause = "stop"
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                with store.write() as conn:
                    finish_command(conn, command, "done", {"stopped": True})
                return True, None
        return False, task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def stop_command(store: Store, session_id: str) -> int | None:
    with store.write() as conn:
        for command in pending_commands(conn, session_id=session_id, types=["stop"]):
            if claim_command(conn, command.id, claimer=f"team:{session_id}"):
                return command.id
    return None
