"""The agent view with Pilot, over a real store: every key, dispatch, and live updates."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
import yaml
from textual.widgets import Input, Static

from covey.sessions.state import set_state
from covey.store import Store
from covey.store.commands import pending_commands
from covey.store.sessions import get_session, list_sessions
from covey.store.transcript import read_entries
from covey.tui.agent_view import AgentViewApp
from covey.tui.help import HelpScreen
from covey.tui.rows import GroupHeader, MoreLine
from covey.tui.session_screen import SessionScreen
from tui_seed import T0, seed_session, seed_transcript, store, wait_for

__all__ = ["store"]  # the fixture, used by name

QUESTION = {"kind": "question", "text": "Which database?", "options": ["sqlite", "postgres"]}


def text_of(app: AgentViewApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def labels(app: AgentViewApp) -> list[str]:
    return [
        line.text if isinstance(line, GroupHeader | MoreLine) else line.row.label
        for line in app.agents.agent_list.lines
    ]


def test_groups_rows_in_order_with_counts_and_title(store: Store, tmp_path: Path) -> None:
    seed_session(store, tmp_path, name="finished", state="completed", reason="end_turn")
    seed_session(store, tmp_path, name="busy", state="working", summary="running tests")
    seed_session(store, tmp_path, name="asks", state="needs_input", pending=QUESTION)
    seed_session(store, tmp_path, name="resting", state="idle")
    seed_session(store, tmp_path, name="asks-too", state="needs_input", pending=QUESTION)
    seed_session(store, tmp_path, name="print-run", state="completed", kind="print")

    async def run() -> None:
        app = AgentViewApp(store, tmp_path)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: len(app.agents.rows) == 5, "five rows")
            assert labels(app) == [
                "Needs input (2)", "asks-too", "asks",
                "Working (1)", "busy",
                "Idle (1)", "resting",
                "Completed (1)", "finished",
            ]  # fmt: skip
            assert app.terminal_title == "2 awaiting input · covey agents"
            assert "2 awaiting input" in text_of(app, "#view-header")

    asyncio.run(run())


def test_all_kinds_shows_foreground_sessions_too(store: Store, tmp_path: Path) -> None:
    seed_session(store, tmp_path, name="print-run", state="completed", kind="print")

    async def run() -> None:
        app = AgentViewApp(store, tmp_path, all_kinds=True)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: "print-run" in labels(app), "the print session")

    asyncio.run(run())


def test_arrows_move_between_rows_skipping_headers(store: Store, tmp_path: Path) -> None:
    seed_session(store, tmp_path, name="asks", state="needs_input", pending=QUESTION)
    seed_session(store, tmp_path, name="busy", state="working")
    seed_session(store, tmp_path, name="done", state="completed")

    async def run() -> None:
        app = AgentViewApp(store, tmp_path)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: len(app.agents.rows) == 3, "three rows")
            listing = app.agents.agent_list
            assert listing.selected is not None and listing.selected.label == "asks"
            await pilot.press("down")
            assert listing.selected.label == "busy"
            await pilot.press("down", "down")  # the last row stays selected
            assert listing.selected.label == "done"
            await pilot.press("up")
            assert listing.selected.label == "busy"

    asyncio.run(run())


def test_enter_on_the_fold_line_shows_the_older_finished_rows(store: Store, tmp_path: Path) -> None:
    for i in range(7):  # done-6 is the newest
        seed_session(store, tmp_path, name=f"done-{i}", state="completed", updated=T0 + i)

    async def run() -> None:
        app = AgentViewApp(store, tmp_path)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: len(app.agents.rows) == 7, "seven rows")
            listing = app.agents.agent_list
            names = ["done-6", "done-5", "done-4", "done-3", "done-2"]
            assert labels(app)[-7:] == ["Completed (7)", *names, "… 2 more"]
            await pilot.press(*["down"] * 5)
            assert listing.on_more and listing.selected is None
            painted = listing.render_line(len(listing.lines) - 1).text
            assert "… 2 more (Enter shows them)" in painted
            await pilot.press("enter")
            assert labels(app)[-8:] == ["Completed (7)", *names, "done-1", "done-0"]
            assert listing.selected is not None and listing.selected.label == "done-1"

    asyncio.run(run())


def test_state_change_by_another_connection_shows(store: Store, tmp_path: Path) -> None:
    sid, epoch = seed_session(store, tmp_path, name="busy", state="working")

    async def run() -> None:
        app = AgentViewApp(store, tmp_path)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: len(app.agents.rows) == 1, "the row")
            assert app.terminal_title == "0 awaiting input · covey agents"
            # A worker thread has a connection of its own: the view learns of the commit
            # only through data_version.
            await asyncio.to_thread(
                set_state, store, sid, epoch, "needs_input", "question", meta=_pending_meta()
            )
            await wait_for(pilot, lambda: labels(app)[:2] == ["Needs input (1)", "busy"], "moved")
            assert app.terminal_title == "1 awaiting input · covey agents"

    asyncio.run(run())


def _pending_meta() -> object:
    from covey.store.sessions import SessionMeta

    return SessionMeta.model_validate({"pending": QUESTION})


def test_space_peeks_at_the_question_and_reply_is_queued(store: Store, tmp_path: Path) -> None:
    sid, _ = seed_session(store, tmp_path, name="asks", state="needs_input", pending=QUESTION)

    async def run() -> None:
        app = AgentViewApp(store, tmp_path)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: len(app.agents.rows) == 1, "the row")
            await pilot.press("space")
            assert app.agents.peek_panel.display
            body = text_of(app, "#peek-body")
            assert "input needed: Which database?" in body
            assert "1. sqlite" in body and "2. postgres" in body
            assert app.focused is app.screen.query_one("#reply")
            await pilot.press("2", "enter")  # a number picks that option
            await wait_for(pilot, lambda: "reply queued" in text_of(app, "#view-message"), "ack")
            await pilot.press("escape")
            assert not app.agents.peek_panel.display
            assert app.focused is app.screen.query_one("#dispatch")

    asyncio.run(run())
    with store.read() as conn:
        commands = pending_commands(conn, session_id=sid)
    assert [(c.type, c.data) for c in commands] == [("reply", {"text": "postgres"})]


def test_space_peeks_at_the_latest_output(store: Store, tmp_path: Path) -> None:
    sid, epoch = seed_session(store, tmp_path, name="done", state="completed")
    seed_transcript(store, sid, epoch)

    async def run() -> None:
        app = AgentViewApp(store, tmp_path)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: len(app.agents.rows) == 1, "the row")
            await pilot.press("space")
            body = text_of(app, "#peek-body")
            assert "● All green." in body
            assert "→ Bash" in body

    asyncio.run(run())


def test_enter_attaches_and_left_detaches(store: Store, tmp_path: Path) -> None:
    sid, epoch = seed_session(store, tmp_path, name="done", state="completed")
    seed_transcript(store, sid, epoch)

    async def run() -> None:
        app = AgentViewApp(store, tmp_path)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: len(app.agents.rows) == 1, "the row")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen), "attached")
            screen = app.screen
            assert isinstance(screen, SessionScreen) and screen.session_id == sid
            log = screen.query_one("#transcript")
            await wait_for(pilot, lambda: "● All green." in log.lines, "the transcript")  # type: ignore[attr-defined]
            await pilot.press("left")
            await wait_for(pilot, lambda: app.screen is app.agents, "back in the list")
        with store.read() as conn:
            row = get_session(conn, sid)
        assert row is not None and row.state == "completed"  # detaching never stops it

    asyncio.run(run())


def test_ctrl_x_twice_stops_and_hides_the_session(store: Store, tmp_path: Path) -> None:
    sid, epoch = seed_session(store, tmp_path, name="doomed", state="working", held=False)
    seed_transcript(store, sid, epoch)

    async def run() -> None:
        app = AgentViewApp(store, tmp_path)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: len(app.agents.rows) == 1, "the row")
            await pilot.press("ctrl+x")
            assert "press Ctrl+X again to stop and delete" in text_of(app, "#view-message")
            await pilot.press("ctrl+x")
            await wait_for(pilot, lambda: not app.agents.rows, "the row gone")
            await wait_for(
                pilot, lambda: "stopped and deleted" in text_of(app, "#view-message"), "ack"
            )

    asyncio.run(run())
    with store.read() as conn:
        row = get_session(conn, sid)
        entries = read_entries(conn, sid)
        listed = list_sessions(conn)
    assert row is not None and row.deleted_at is not None and row.state == "stopped"
    assert len(entries) == 4  # the transcript stays
    assert listed == []


def test_one_ctrl_x_then_waiting_does_nothing(store: Store, tmp_path: Path) -> None:
    sid, _ = seed_session(store, tmp_path, name="kept", state="working", held=False)

    async def run() -> None:
        app = AgentViewApp(store, tmp_path)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: len(app.agents.rows) == 1, "the row")
            await pilot.press("ctrl+x")
            assert app.agents.delete_armed
            await wait_for(pilot, lambda: not app.agents.delete_armed, "the window to close")
            assert text_of(app, "#view-message") == ""
            await pilot.press("ctrl+x")  # a fresh first press: it asks again
            assert "press Ctrl+X again" in text_of(app, "#view-message")
            assert [r.id for r in app.agents.rows] == [sid]

    asyncio.run(run())
    with store.read() as conn:
        row = get_session(conn, sid)
    assert row is not None and row.deleted_at is None and row.state == "working"


def test_question_mark_shows_help_and_escape_closes_it(store: Store, tmp_path: Path) -> None:
    async def run() -> None:
        app = AgentViewApp(store, tmp_path)
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            shown = str(app.screen.query_one("#help-text", Static).render())
            assert "Ctrl+X, Ctrl+X" in shown
            assert "/compact  /usage  /cost" in shown  # the session screen's commands too
            await pilot.press("escape")
            assert app.screen is app.agents

    asyncio.run(run())


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
def test_q_and_ctrl_c_quit(store: Store, tmp_path: Path, key: str) -> None:
    async def run() -> None:
        app = AgentViewApp(store, tmp_path)
        async with app.run_test() as pilot:
            await pilot.press(key)
            await wait_for(pilot, lambda: not app.is_running, "the app to exit")

    asyncio.run(run())


def test_q_is_typed_when_the_input_has_text(store: Store, tmp_path: Path) -> None:
    async def run() -> None:
        app = AgentViewApp(store, tmp_path)
        async with app.run_test() as pilot:
            await pilot.press("a", "q", "space")
            assert app.screen.query_one("#dispatch", Input).value == "aq "
            assert app.is_running

    asyncio.run(run())


def scripted_model(tmp_path: Path) -> str:
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"turns": [{"text": "done"}]}))
    return f"scripted:{script}"


def test_dispatch_creates_a_queued_background_session(store: Store, git_repo: Path) -> None:
    model = scripted_model(git_repo.parent)

    async def run() -> None:
        app = AgentViewApp(store, git_repo, model=model)
        async with app.run_test() as pilot:
            app.screen.query_one("#dispatch", Input).value = "add a changelog entry"
            await pilot.press("enter")
            await wait_for(pilot, lambda: len(app.agents.rows) == 1, "the new row")
            assert "dispatched" in text_of(app, "#view-message")
            assert app.screen.query_one("#dispatch", Input).value == ""

    asyncio.run(run())
    with store.read() as conn:
        rows = list_sessions(conn)
    assert len(rows) == 1
    row = rows[0]
    assert (row.kind, row.state, row.model) == ("background", "queued", model)
    assert row.meta.prompt == "add a changelog entry"


def test_a_too_short_prompt_is_refused(store: Store, git_repo: Path) -> None:
    async def run() -> None:
        app = AgentViewApp(store, git_repo, model=scripted_model(git_repo.parent))
        async with app.run_test() as pilot:
            app.screen.query_one("#dispatch", Input).value = "hi"
            await pilot.press("enter")
            assert "Too short" in text_of(app, "#view-message")
            assert app.screen.query_one("#dispatch", Input).value == "hi"
            assert app.is_running

    asyncio.run(run())
    with store.read() as conn:
        assert list_sessions(conn) == []


def test_rows_whose_worktrees_change_the_same_file_get_the_overlap_mark(
    store: Store, git_repo: Path
) -> None:
    (git_repo / ".git" / "info" / "exclude").write_text(".covey/worktrees/\n")
    worktrees = {}
    for name in ("bg-one", "bg-two", "bg-solo"):
        path = git_repo / ".covey" / "worktrees" / name
        subprocess.run(
            ["git", "worktree", "add", "-q", "-b", f"worktree-{name}", str(path), "HEAD"],
            cwd=git_repo,
            check=True,
        )
        worktrees[name] = path
    (worktrees["bg-one"] / "README.md").write_text("one\n")
    (worktrees["bg-two"] / "README.md").write_text("two\n")
    (worktrees["bg-solo"] / "solo.txt").write_text("alone\n")
    for name, path in worktrees.items():
        seed_session(store, git_repo, name=name, state="working", worktree=str(path))

    async def run() -> None:
        app = AgentViewApp(store, git_repo)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(
                pilot, lambda: sum(1 for r in app.agents.rows if r.overlaps) == 2, "the marks"
            )
            marked = {r.label: r.overlaps for r in app.agents.rows}
            assert marked == {"bg-one": ("README.md",), "bg-two": ("README.md",), "bg-solo": ()}

    asyncio.run(run())


def test_peeking_at_an_interrupted_session_asks_for_it_to_continue(
    store: Store, tmp_path: Path
) -> None:
    sid, _ = seed_session(store, tmp_path, name="cut-off", state="working", held=False)
    woken: list[bool] = []

    async def run() -> None:
        app = AgentViewApp(store, tmp_path, ensure_host=lambda: woken.append(True))
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: len(app.agents.rows) == 1, "the row")
            assert app.agents.rows[0].state == "interrupted"
            await pilot.press("space")
            await wait_for(pilot, lambda: bool(woken), "the supervisor asked to run")
            await pilot.press("escape", "space")  # a second peek queues nothing more

    asyncio.run(run())
    with store.read() as conn:
        respawns = pending_commands(conn, session_id=sid, types=["respawn"])
    assert len(respawns) == 1
