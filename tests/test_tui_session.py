"""The session screen with Pilot: a foreground session run end to end by a scripted model
(inline permission prompt, follow-up turn, hand-over on ←), and an attached background one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import yaml
from textual.pilot import Pilot
from textual.widgets import Input, Log, Static

from covey.sessions.interactive import ForegroundHost
from covey.store import Store
from covey.store.commands import pending_commands
from covey.store.sessions import get_session
from covey.tui.session_app import SessionApp
from tui_seed import seed_session, seed_transcript, store, wait_for

__all__ = ["store"]  # the fixture, used by name


def write_script(directory: Path, turns: list[dict[str, Any]]) -> str:
    script = directory / "script.yaml"
    script.write_text(yaml.safe_dump({"turns": turns}))
    return f"scripted:{script}"


def transcript(app: SessionApp) -> list[str]:
    return list(app.screen.query_one(Log).lines)


def ask_text(app: SessionApp) -> str:
    return str(app.screen.query_one("#ask", Static).render())


async def type_and_enter(pilot: Pilot[Any], app: SessionApp, text: str) -> None:
    app.screen.query_one("#prompt", Input).value = text
    await pilot.press("enter")


def test_foreground_session_asks_permission_inline_and_runs_to_the_end(
    store: Store, git_repo: Path
) -> None:
    target = git_repo / "notes.txt"
    starts = git_repo.parent / "starts.log"  # SessionStart runs once, not on every prompt
    hook = f"python3 -c 'import json,sys; print(json.load(sys.stdin)[\"source\"])' >> {starts}"
    settings = {"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": hook}]}]}}
    (git_repo / ".covey").mkdir(exist_ok=True)
    (git_repo / ".covey" / "settings.json").write_text(json.dumps(settings))
    model = write_script(
        git_repo.parent,
        [
            {
                "text": "I'll write the notes.",
                "tool_calls": [
                    {"name": "Write", "input": {"file_path": str(target), "content": "hi\n"}}
                ],
            },
            {"text": "done"},
            {"text": "second answer"},
        ],
    )
    host = ForegroundHost(store, git_repo, model=model)

    async def run() -> None:
        app = SessionApp(store, host=host, initial_prompt="write the notes")
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: host.pending is not None, "the permission prompt")
            assert "Permission: Allow Write" in ask_text(app)
            assert app.screen.query_one("#ask").display
            sid = host.session_id
            assert sid is not None
            with store.read() as conn:
                waiting = get_session(conn, sid)
            assert waiting is not None and waiting.state == "needs_input"
            await type_and_enter(pilot, app, "y")
            await wait_for(pilot, lambda: not host.running, "the turn to end")
            await wait_for(pilot, lambda: "● done" in transcript(app), "the final text")
            assert not app.screen.query_one("#ask").display
            lines = transcript(app)
            assert "> write the notes" in lines[0]
            assert any(line.startswith("  → Write") for line in lines)
            assert target.read_text() == "hi\n"
            # A follow-up prompt continues the same session.
            await type_and_enter(pilot, app, "and again")
            await wait_for(pilot, lambda: "● second answer" in transcript(app), "turn two")
            await wait_for(pilot, lambda: not host.running, "turn two to end")
            assert host.session_id == sid
            assert "completed" in str(app.screen.query_one("#session-title", Static).render())
        with store.read() as conn:
            row = get_session(conn, sid)
        assert row is not None
        assert (row.kind, row.state, row.host_id) == ("interactive", "completed", None)

    asyncio.run(run())
    assert starts.read_text() == "startup\n"


def test_a_denied_permission_is_not_run(store: Store, git_repo: Path) -> None:
    target = git_repo / "nope.txt"
    model = write_script(
        git_repo.parent,
        [
            {
                "tool_calls": [
                    {"name": "Write", "input": {"file_path": str(target), "content": "x"}}
                ]
            },
            {"text": "understood"},
        ],
    )
    host = ForegroundHost(store, git_repo, model=model)

    async def run() -> None:
        app = SessionApp(store, host=host, initial_prompt="write it")
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: host.pending is not None, "the permission prompt")
            await type_and_enter(pilot, app, "n")
            await wait_for(pilot, lambda: "● understood" in transcript(app), "the end")

    asyncio.run(run())
    assert not target.exists()


def test_left_on_empty_input_hands_a_running_session_to_the_background(
    store: Store, git_repo: Path
) -> None:
    model = write_script(
        git_repo.parent,
        [{"tool_calls": [{"name": "Write", "input": {"file_path": "a.txt", "content": "x"}}]}],
    )
    host = ForegroundHost(store, git_repo, model=model)

    async def run() -> str | None:
        app = SessionApp(store, host=host, initial_prompt="write a.txt")
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: host.pending is not None, "the permission prompt")
            await pilot.press("left")
            await wait_for(pilot, lambda: not app.is_running, "the screen to close")
        return app.return_value

    handed_over = asyncio.run(run())
    assert handed_over is not None and handed_over == host.session_id
    with store.read() as conn:
        row = get_session(conn, handed_over)
        commands = pending_commands(conn, session_id=handed_over)
    assert row is not None
    assert (row.kind, row.state, row.host_id) == ("background", "interrupted", None)
    assert [c.type for c in commands] == ["respawn"]  # the supervisor continues it


def message(app: SessionApp) -> str:
    return str(app.screen.query_one("#session-message", Static).render())


def test_ctrl_c_stops_the_turn_then_a_prompt_continues_and_ctrl_c_twice_quits(
    store: Store, git_repo: Path
) -> None:
    model = write_script(
        git_repo.parent,
        [
            {"tool_calls": [{"name": "Write", "input": {"file_path": "a.txt", "content": "x"}}]},
            {"text": "Left a.txt alone."},
        ],
    )
    host = ForegroundHost(store, git_repo, model=model)

    async def run() -> None:
        app = SessionApp(store, host=host, initial_prompt="write a.txt")
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: host.pending is not None, "the permission prompt")
            await pilot.press("ctrl+c")
            await wait_for(pilot, lambda: not host.running, "the turn to stop")
            assert app.is_running and "interrupted · Ctrl+C again to quit" in message(app)
            with store.read() as conn:
                row = get_session(conn, host.session_id or "")
            assert row is not None
            assert (row.state, row.reason, row.host_id) == ("stopped", "interrupted by user", None)
            await pilot.pause(2.1)  # past the window: the next Ctrl+C only warns
            await type_and_enter(pilot, app, "never mind, stop there")
            await wait_for(pilot, lambda: "● Left a.txt alone." in transcript(app), "answer")
            await wait_for(pilot, lambda: not host.running, "the turn to end")
            await pilot.press("ctrl+c")
            assert app.is_running and "press Ctrl+C again to quit" in message(app)
            await pilot.press("ctrl+c")
            await wait_for(pilot, lambda: not app.is_running, "the screen to close")
        assert app.return_value is None

    asyncio.run(run())
    assert not (git_repo / "a.txt").exists()  # the interrupted call was never run
    with store.read() as conn:
        row = get_session(conn, host.session_id or "")
    assert row is not None and (row.state, row.host_id) == ("completed", None)


def test_ctrl_c_twice_detaches_from_a_background_session(store: Store, tmp_path: Path) -> None:
    sid, _ = seed_session(store, tmp_path, name="bg", state="working")

    async def run() -> None:
        app = SessionApp(store, sid)
        async with app.run_test() as pilot:
            await pilot.press("ctrl+c")
            assert app.is_running and "again to detach (the session goes on)" in message(app)
            await pilot.press("ctrl+c")
            await wait_for(pilot, lambda: not app.is_running, "the screen to close")

    asyncio.run(run())
    with store.read() as conn:
        row = get_session(conn, sid)
    assert row is not None and row.state == "working"


def test_left_on_a_new_screen_just_leaves(store: Store, git_repo: Path) -> None:
    host = ForegroundHost(store, git_repo, model="scripted:unused.yaml")

    async def run() -> str | None:
        app = SessionApp(store, host=host)
        async with app.run_test() as pilot:
            await pilot.press("left")
            await wait_for(pilot, lambda: not app.is_running, "the screen to close")
        return app.return_value

    assert asyncio.run(run()) is None


def test_attached_session_shows_new_entries_and_its_question(store: Store, tmp_path: Path) -> None:
    question = {
        "kind": "permission",
        "text": "Allow Bash rm -rf build?",
        "options": ["allow", "deny"],
    }
    sid, epoch = seed_session(store, tmp_path, name="bg", state="working")

    async def run() -> None:
        app = SessionApp(store, sid)
        async with app.run_test(size=(120, 30)) as pilot:
            assert transcript(app) == []
            await asyncio.to_thread(seed_transcript, store, sid, epoch)  # the host writes
            await wait_for(pilot, lambda: "● All green." in transcript(app), "new entries")
            assert "    ← F.  (+3 lines)" in transcript(app)  # a tool result, folded
            from covey.sessions.state import set_state
            from covey.store.sessions import SessionMeta

            meta = SessionMeta.model_validate({"pending": question})
            await asyncio.to_thread(
                set_state, store, sid, epoch, "needs_input", "permission", meta=meta
            )
            await wait_for(pilot, lambda: "Allow Bash rm -rf build?" in ask_text(app), "ask")
            assert "1. allow" in ask_text(app)
            await type_and_enter(pilot, app, "2")
            status = app.screen.query_one("#session-message", Static)
            await wait_for(pilot, lambda: "reply queued" in str(status.render()), "ack")
            await pilot.press("left")
            await wait_for(pilot, lambda: not app.is_running, "detached")
        assert app.return_value is None

    asyncio.run(run())
    with store.read() as conn:
        commands = pending_commands(conn, session_id=sid)
        row = get_session(conn, sid)
    assert [(c.type, c.data) for c in commands] == [("reply", {"text": "deny"})]
    assert row is not None and row.state == "needs_input"  # detaching never stops it


def test_cli_attach_names_an_unknown_session_and_refuses_print_only_flags(
    git_repo: Path,
) -> None:
    from clitools import covey

    missing = covey("attach", "nosuch", cwd=git_repo)
    assert missing.code == 2 and "no session 'nosuch'" in missing.err
    refused = covey("--max-turns", "3", cwd=git_repo)
    assert refused.code == 2 and "--max-turns works with -p" in refused.err


def test_the_screens_refuse_to_start_without_a_terminal(git_repo: Path) -> None:
    from clitools import covey

    plain = covey(cwd=git_repo)
    assert plain.code == 2 and "needs a terminal" in plain.err and "covey -p" in plain.err
    view = covey("agents", cwd=git_repo)
    assert view.code == 2 and "covey agents --json" in view.err
    status = covey("daemon", "status", "--json", cwd=git_repo)
    assert '"running": false' in status.out  # nothing was started
