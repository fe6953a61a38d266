"""The node's side of a replicated session: its tool batches wait for the supervisor.

    gate = ToolGate(node_store, session_id, snapshot)   # snapshot: () -> Snapshot | None
    gate_tools(host, gate)                              # after SessionHost.open, before run_turn

Around every tool batch of the host's agent:
1. **before**: the session's transcript entries are held from now on (`covey.store.replica.
   hold`), then the batch waits until the supervisor has acknowledged everything the session
   journaled so far, the assistant message that asks for these calls included. So a node
   lost while the tools run leaves that message in the user's store: the resume answers the
   calls as interrupted and never runs them again. It is also the node's bound: with the
   supervisor away, the session waits here, having dropped nothing.
2. the tools run; each result is written to the node store as always, journaled held;
3. **after**: `snapshot()` (blocking, run in a worker thread; the executor's callback, e.g.
   `covey.git.bundles.snapshot_for_shipping`) commits the worktree, and one transaction
   journals its record and then the held entries after it (`release`). A batch of read-only
   calls only (`Tool.read_only_for`: Read, Glob, Grep...) has no effects to ship: no
   snapshot is taken (no git process), its entries are released at once. The supervisor calls
   `on_snapshot` before it applies them: a result counts only once the snapshot holding its
   effects has reached the user's repository.
A batch that raises (cancelled by a stop, a failed snapshot) drops its held entries: they
never leave the node, and the step reads as interrupted wherever the session resumes.

A fenced node (its batches refused with `StaleEpoch`: the session was taken over) is never
acknowledged again, so it starts no further tool batch; and after `SnapshotFailed` the
executor must end the session on that node and resume it from the user's store under a new
epoch (the failed step reads as interrupted there).

A teammate of a team the session leads on the node gets a gate of its own
(`ToolGate.for_member`, set by `gate_tools` through the team's `on_host`): its entries are
held and released on their own, in the root's journal; it shares the tree's snapshot
callback and its lock (a snapshot and its release are journaled together, so snapshots
arrive in the order taken, each on the one before). The callback may ship several worktrees
(the session's and its children's own: `Shipment`).

`ToolGate` only writes the node store and polls it (every `poll_s`) for the acknowledgement
`covey.executors.replica.acknowledge` writes; it works the same when the supervisor's pump
runs in another thread, process or machine.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

from covey.agent.tool_runner import ToolRunner
from covey.executors.replica_records import Snapshot
from covey.messages import ToolResultBlock, ToolUseBlock
from covey.sessions.host import SessionHost
from covey.store import Store
from covey.store.replica import drop_held, get_cursor, hold, last_journal_id, release
from covey.teams.runtime import live_runtime

__all__ = ["GatedToolRunner", "ToolGate", "gate_tools"]

POLL_S = 0.02


Shipment = Snapshot | Sequence[Snapshot] | None
"""What a snapshot callback returns: nothing changed, one snapshot (of the session's
worktree), or several (each worktree of the tree that changed: a snapshot with a `branch`
attribute is of a child's own worktree, shipped to that branch)."""


class ToolGate:
    """The gate of one session of a replicated tree: the root (`root` None) or a teammate
    (`session_id`) of the tree rooted at `root`, whose records go to the root's journal.
    The gates of a tree share one `lock` and one snapshot callback: a snapshot and the
    release of its batch are journaled together, so snapshots reach the supervisor in the
    order they were taken (each on the one before)."""

    def __init__(
        self,
        node_store: Store,
        session_id: str,
        snapshot: Callable[[], Shipment],
        *,
        root: str | None = None,
        lock: threading.Lock | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self.node_store = node_store
        self.session_id = session_id
        self.root = root or session_id
        self.snapshot = snapshot
        self.lock = lock or threading.Lock()
        self.poll_s = poll_s

    def for_member(self, session_id: str) -> ToolGate:
        """The gate of another session of this tree (a teammate): the same journal,
        snapshot callback and lock."""
        return ToolGate(
            self.node_store,
            session_id,
            self.snapshot,
            root=self.root,
            lock=self.lock,
            poll_s=self.poll_s,
        )

    async def before_tools(self) -> None:
        """Hold the batch's entries; wait until all before them is applied."""
        with self.node_store.write() as conn:
            hold(conn, self.session_id)
            target = last_journal_id(conn, self.root)
        while self.acknowledged() < target:
            await asyncio.sleep(self.poll_s)

    async def after_tools(self, *, changed: bool = True) -> None:
        """Ship the worktree (unless the batch could not change it: `changed` False), then
        let the batch's entries go after it."""
        if changed:
            await asyncio.to_thread(self._ship)
        else:
            self._release(None)

    def _ship(self) -> None:
        with self.lock:
            self._release(self.snapshot())

    def _release(self, shipped: Shipment) -> None:
        records = []
        for snap in _snapshots(shipped):
            data: dict[str, Any] = {"sid": self.session_id, "sha": snap.sha, "parent": snap.parent}
            if branch := getattr(snap, "branch", ""):
                data["branch"] = branch
            records.append((data, snap.bundle))
        with self.node_store.write() as conn:
            release(conn, self.root, records, member=self.session_id)

    def abandon(self) -> None:
        """The batch did not finish: its entries never leave the node."""
        with self.node_store.write() as conn:
            drop_held(conn, self.root, member=self.session_id)

    def acknowledged(self) -> int:
        with self.node_store.read() as conn:
            got = get_cursor(conn, self.root)
        return got[1] if got is not None else 0


class GatedToolRunner(ToolRunner):
    """The agent's own `ToolRunner` (same tools, context, hooks, approver and recorded
    denials), with every batch inside a `ToolGate`."""

    def __init__(self, runner: ToolRunner, gate: ToolGate) -> None:
        self.__dict__.update(runner.__dict__)
        self.gate = gate

    async def execute(self, calls: list[ToolUseBlock]) -> list[ToolResultBlock]:
        try:
            await self.gate.before_tools()
            results = await super().execute(calls)
            await self.gate.after_tools(changed=any(self._may_change(c) for c in calls))
        except BaseException:
            self.gate.abandon()
            raise
        return results

    def _may_change(self, call: ToolUseBlock) -> bool:
        """Whether the call may change the worktree (any tool not read-only for its input:
        Write, Edit, Bash, an Agent whose subagent may write, an unknown name)."""
        tool = self.tools.get(call.name)
        return tool is None or not tool.read_only_for(call.input)


def gate_tools(host: SessionHost, gate: ToolGate) -> None:
    """Put `gate` around the tool batches of `host`'s main agent; and, when `host` leads a
    team here, a gate of the same tree around each teammate's (`gate.for_member`)."""
    host.agent.runner = GatedToolRunner(host.agent.runner, gate)
    team = live_runtime(host.session_id)
    if team is not None:
        team.on_host = lambda teammate: gate_tools(teammate, gate.for_member(teammate.session_id))


def _snapshots(shipped: Shipment) -> list[Snapshot]:
    if shipped is None:
        return []
    if isinstance(shipped, (list, tuple)):
        return list(shipped)
    return [shipped]  # type: ignore[list-item]
