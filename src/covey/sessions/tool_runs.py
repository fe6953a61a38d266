"""Tool processes of a hosted session, recorded in the store while they run.

A Bash command runs in its own process group, marked with a tag in its environment, and dies
with its host (parent-death signal); what it started may not. Its host records the group
while it runs (`StoreToolRuns`), and a host that takes the session over after a crash kills
what is left before it continues (`end_leftover_runs`): the resume reports that call as
interrupted, and nothing it started can change the workspace afterwards.
"""

from __future__ import annotations

from covey.proc import kill_tagged_group
from covey.store import Store
from covey.store.tool_runs import forget_runs, record_run, runs_of

__all__ = ["StoreToolRuns", "end_leftover_runs"]


class StoreToolRuns:
    """`covey.tools.base.ToolRuns` over the store, for one session (its subagents' runs are
    recorded under it too: they share its host)."""

    def __init__(self, store: Store, session_id: str) -> None:
        self.store = store
        self.session_id = session_id

    def started(self, pgid: int, tag: str) -> None:
        with self.store.write() as conn:
            record_run(conn, self.session_id, pgid, tag)

    def ended(self, pgid: int, tag: str) -> None:
        """Nothing to write: an ended run's group was killed to the last process, so its row
        names nothing `end_leftover_runs` could find; the host forgets its rows when it
        closes (one write per session, not one more per command)."""

    def forget(self) -> None:
        with self.store.write() as conn:
            forget_runs(conn, self.session_id)


def end_leftover_runs(store: Store, session_id: str) -> int:
    """Kill what the runs recorded for `session_id` left behind; how many processes."""
    with store.read() as conn:
        runs = runs_of(conn, session_id)
    if not runs:
        return 0
    killed = sum(kill_tagged_group(pgid, tag) for pgid, tag in runs)
    with store.write() as conn:
        forget_runs(conn, session_id)
    return killed
