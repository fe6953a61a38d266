"""SVG snapshots of the agent view and the session screen over fixed rows and a fixed clock.
Update them with `pytest tests/test_tui_snapshots.py --snapshot-update` and look at the SVGs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from covey.messages import Usage
from covey.store import Store
from covey.store.usage import record_usage
from covey.tui.agent_view import AgentViewApp
from covey.tui.session_app import SessionApp
from tui_seed import T0, seed_session, seed_transcript, store

__all__ = ["store"]  # the fixture, used by name

SnapCompare = Callable[..., bool]
CWD = Path("/work/demo")


def seed_view(store: Store) -> None:
    """One or two sessions per group, with fixed ids, times, costs and branches."""
    question = {"kind": "question", "text": "Keep the old API as a shim?", "options": ["yes", "no"]}
    permission = {"kind": "permission", "text": "Allow Bash: npm publish?"}
    rows: list[dict[str, Any]] = [
        {"id": "aaaa0001", "name": "api-shim", "state": "needs_input", "pending": question},
        {"id": "aaaa0002", "name": "release", "state": "needs_input", "pending": permission},
        {"id": "aaaa0003", "name": "fix-flaky-test", "state": "working",
         "summary": "Re-running tests/test_sync.py with the retry removed",
         "worktree": "/work/demo/.covey/worktrees/bg-aaaa0003", "branch": "worktree-bg-aaaa0003"},
        {"id": "aaaa0004", "name": None, "state": "queued"},
        {"id": "aaaa0005", "name": "docs-pass", "state": "idle", "summary": "Waiting for review"},
        {"id": "aaaa0006", "name": "perf", "state": "completed", "summary": "Cut startup by 40%",
         "branch": "worktree-bg-aaaa0006"},
        {"id": "aaaa0007", "name": "migrate-db", "state": "failed", "reason": "max_turns"},
        {"id": "aaaa0008", "name": "spike", "state": "stopped", "reason": "stopped by user"},
    ]  # fmt: skip
    for i, fields in enumerate(rows):
        created = T0 - 3600 * i
        seed_session(store, CWD, created=created, updated=created + 90 * (i + 1), **fields)
    with store.write() as conn:
        record_usage(conn, "aaaa0003", "", "scripted:demo", Usage(input=10, output=5), 1.2345)
        record_usage(conn, "aaaa0006", "", "scripted:demo", Usage(input=10, output=5), 0.42)


def view_app(store: Store) -> AgentViewApp:
    app = AgentViewApp(store, CWD, clock=lambda: T0 + 600, overlap_scan=False)
    # The overlap scan reads real worktrees (see test_tui_overlaps); pin what it found.
    app.agents.overlaps = {"/work/demo/.covey/worktrees/bg-aaaa0003": ("src/sync.py",)}
    return app


async def settle(pilot: Pilot[Any]) -> None:
    await pilot.pause(0.2)


def test_agent_view_layout(store: Store, snap_compare: SnapCompare) -> None:
    seed_view(store)
    app = view_app(store)
    assert snap_compare(app, terminal_size=(120, 24), run_before=settle)
    marked = [r.id for r in app.agents.rows if r.overlaps]
    assert marked == ["aaaa0003"]


def test_agent_view_peek_panel(store: Store, snap_compare: SnapCompare) -> None:
    seed_view(store)
    assert snap_compare(view_app(store), press=["space"], terminal_size=(120, 24))


def test_session_screen(store: Store, snap_compare: SnapCompare) -> None:
    sid, epoch = seed_session(
        store, CWD, id="bbbb0001", name="fix-tests", state="completed", created=T0
    )
    seed_transcript(store, sid, epoch)
    assert snap_compare(SessionApp(store, sid), terminal_size=(100, 20), run_before=settle)
