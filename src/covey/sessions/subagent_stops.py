"""`covey stop SUBAGENT_ID` of a subagent of a foreground session (`covey -p`, the session
screen, the stream-json host, and their teammates): its host stops that subagent alone.

    async with acting_on_subagent_stops(store):   # around a turn of a foreground host
        ...

A subagent has no host of its own: it runs inside its parent's Agent call, in the process
hosting its tree. `covey stop` writes a `stop` command for it (never a SIGINT: that would
interrupt the whole turn, like Ctrl+C). While a turn runs, every `STOP_POLL_S` in which a
subagent runs in this process (`sessions.subagents.RUNNING`), the host claims the pending
stops of those subagents and calls `RUNNING[sid]()`: the subagent ends `stopped` ("stopped
by user"), its parent's Agent call returns an error saying so, and the parent goes on. The
command is finished `{"stopped": true}`. A background tree's subagents are stopped by the
supervisor (`supervisor.daemon`) or a Ray node (`executors.replica_stops`) the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from covey.sessions.subagents import RUNNING
from covey.store import Store
from covey.store.commands import claim_command, finish_command, pending_commands

__all__ = ["STOP_POLL_S", "acting_on_subagent_stops", "stop_running_subagents"]

STOP_POLL_S = 0.25
"""How often a foreground host looks for `covey stop SUBAGENT_ID` (as a teammate's does)."""


@contextlib.asynccontextmanager
async def acting_on_subagent_stops(
    store: Store, *, poll_s: float = STOP_POLL_S
) -> AsyncIterator[None]:
    """Stop this process's subagents that `covey stop` names while the block runs."""
    watcher = asyncio.create_task(_watch(store, poll_s))
    try:
        yield
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def _watch(store: Store, poll_s: float) -> None:
    while True:
        await asyncio.sleep(poll_s)
        if RUNNING:  # no subagent here: no read
            stop_running_subagents(store)


def stop_running_subagents(store: Store) -> int:
    """Stop the subagents running in this process that a pending `stop` names; how many.
    Call it on the subagents' event loop."""
    with store.read() as conn:
        pending = pending_commands(conn, types=["stop"])
    stopped = 0
    for command in pending:
        stop = RUNNING.get(command.session_id or "")
        if stop is None:
            continue  # another host's session, or a subagent not yet (or no longer) running
        with store.write() as conn:
            if not claim_command(conn, command.id, claimer=f"subagent-stop:{os.getpid()}"):
                continue
            stop()
            finish_command(conn, command.id, "done", {"stopped": True})
        stopped += 1
    return stopped
