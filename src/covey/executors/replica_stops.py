"""`covey stop SUBAGENT_ID` of a subagent running on a node: the node acts on the forwarded
`stop` command.

    task = asyncio.create_task(stop_subagents(node_store, root))   # while the tree runs here

The supervisor forwards the pending commands of a replicated session's tree to the node
(`replica.forward_commands`, `ray_pump`); a teammate's host acts on its own (`teams.stop`),
but a subagent has no host of its own: it runs inside its parent's Agent call. Every
`STOP_POLL_S` this loop claims the `stop` commands of the tree's subagents and stops the
ones running in this process (`sessions.subagents.RUNNING`): the subagent ends `stopped`
("stopped by user") and its parent's Agent call returns an error saying so, the parent
goes on. The command is finished `{"stopped": true}` (or `{"stopped": false, "running":
false}` for a subagent that had ended), which goes back to the user's store through the
root's journal. A stop for a subagent still queued for a slot waits until it runs.
"""

from __future__ import annotations

import asyncio

from covey.sessions.state import TERMINAL_STATES
from covey.sessions.subagents import RUNNING
from covey.store import Store
from covey.store.commands import claim_command, finish_command

__all__ = ["STOP_POLL_S", "stop_subagents", "stop_subagents_once"]

STOP_POLL_S = 0.25
"""How often a node looks for `covey stop SUBAGENT_ID` (as a teammate's host does)."""
IDLE_EVERY = 20
"""While no subagent runs here, one look in this many polls (200 sessions a node: no reads)."""

_PENDING_STOPS = """
    SELECT c.id, c.session_id, s.state FROM commands c
    JOIN sessions s ON s.id = c.session_id
    JOIN replica_tree t ON t.session_id = c.session_id
    WHERE c.status = 'pending' AND c.type = 'stop' AND s.kind = 'subagent' AND t.root_id = ?
    ORDER BY c.id"""


async def stop_subagents(node_store: Store, root: str, *, poll_s: float = STOP_POLL_S) -> None:
    """Act on the stops of `root`'s subagents until cancelled (while no subagent runs in
    this process, looking only every `IDLE_EVERY` polls: for a stop that met its end)."""
    polls = 0
    while True:
        await asyncio.sleep(poll_s)
        polls += 1
        if RUNNING or polls % IDLE_EVERY == 0:
            stop_subagents_once(node_store, root)  # here: a run is stopped on its own loop


def stop_subagents_once(node_store: Store, root: str) -> int:
    """Stop the subagents of `root`'s tree a pending `stop` names; how many commands were
    finished. Call it in the thread of the subagents' event loop."""
    with node_store.read() as conn:
        pending = conn.execute(_PENDING_STOPS, (root,)).fetchall()
    finished = 0
    for command_id, sid, state in pending:
        stop = RUNNING.get(sid)
        if stop is None and state not in TERMINAL_STATES:
            continue  # queued for a slot: stopped once it runs
        with node_store.write() as conn:
            if not claim_command(conn, command_id, claimer=f"node-stop:{root}"):
                continue
            if stop is not None:
                stop()
            result = {"stopped": True} if stop is not None else {"stopped": False, "running": False}
            finish_command(conn, command_id, "done", result)
        finished += 1
    return finished
