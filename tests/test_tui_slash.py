"""Slash commands in the session screen, with Pilot and the scripted model: each command on a
foreground session (plain `covey`), the ones an attached background session refuses, the
parser, and the headless forms (`covey -p "/compact"`, `covey compact ID`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from clitools import covey
from covey.errors import UserError
from covey.sessions.interactive import ForegroundHost
from covey.sessions.slash import CompactRequest, Invocation, headless, matching, parse
from covey.store import Store
from covey.store.commands import pending_commands
from covey.store.sessions import get_session
from covey.store.transcript import read_entries
from covey.tui.session_app import SessionApp
from test_tui_session import message, transcript, type_and_enter, write_script
from tui_seed import seed_session, store, wait_for

__all__ = ["store"]  # the fixture, used by name

ANSWERS = [{"text": f"answer {i}"} for i in range(1, 7)]


async def prompt_and_wait(
    pilot: Pilot[Any], app: SessionApp, host: ForegroundHost, text: str
) -> None:
    await type_and_enter(pilot, app, text)
    await wait_for(pilot, lambda: host.session_id is not None and not host.running, text)


async def command(pilot: Pilot[Any], app: SessionApp, text: str, shows: str) -> None:
    """Type a command and wait until the screen shows `shows` (transcript or message)."""
    await type_and_enter(pilot, app, text)
    await wait_for(
        pilot, lambda: shows in "\n".join(transcript(app)) or shows in message(app), shows
    )


def test_the_parser_keeps_commands_from_ever_being_sent() -> None:
    assert parse("fix it") == "fix it"
    assert parse("//etc/hosts is odd") == "/etc/hosts is odd"
    compact = parse("/compact  the parser bug ")
    assert isinstance(compact, Invocation)
    assert (compact.command.name, compact.args) == ("compact", "the parser bug")
    cost = parse("/cost")
    assert isinstance(cost, Invocation) and cost.command.name == "usage"
    with pytest.raises(UserError, match=r"unknown command /compcat: did you mean /compact"):
        parse("/compcat")
    assert [c.name for c in matching("/c")] == ["clear", "compact", "usage"]
    assert matching("/compact x") == [] and matching("//") == []
    assert headless("/compact keep the API notes") == CompactRequest("keep the API notes")
    assert headless("//usage") == "/usage"
    with pytest.raises(UserError, match=r"/usage works in the session screen.*screen-only: /help"):
        headless("/usage")


def test_help_usage_model_agents_permissions_and_mode(store: Store, git_repo: Path) -> None:
    first = write_script(git_repo.parent, ANSWERS)
    other_dir = git_repo.parent / "other"
    other_dir.mkdir()
    other = write_script(other_dir, [{"text": "from the other model"}] * 3)
    host = ForegroundHost(store, git_repo, model=first)

    async def run() -> None:
        app = SessionApp(store, host=host)
        async with app.run_test(size=(140, 50)) as pilot:
            await command(pilot, app, "/usage", "no session yet: nothing spent")
            await prompt_and_wait(pilot, app, host, "hello")
            await wait_for(pilot, lambda: "● answer 1" in transcript(app), "the answer")
            await command(pilot, app, "/help", "/compact [instructions]")
            assert any(line.startswith("keys:") for line in transcript(app))
            await command(pilot, app, "/usage", "1 requests")
            text = "\n".join(transcript(app))
            assert "cache read" in text and "(subagents and teammates included)" in text
            assert "of 200,000" in text  # the context window of the model run here
            await command(pilot, app, "/cost", "> /usage")
            await command(pilot, app, "/model", f"model: {first}")
            await command(pilot, app, f"/model {other}", "from the next turn")
            title = app.screen.query_one("#session-title", Static)
            await wait_for(pilot, lambda: other in str(title.render()), "the model in the title")
            await prompt_and_wait(pilot, app, host, "again")
            await wait_for(pilot, lambda: "● from the other model" in transcript(app), "switch")
            await command(pilot, app, "/model scripted:", "scripted")
            assert host.model == other  # a bad model changes nothing
            await command(pilot, app, "/agents", "general-purpose  [built-in] loaded")
            await command(pilot, app, "/permissions", "permission mode: default")
            await command(pilot, app, "/mode nonsense", "/mode MODE: MODE is one of")
            await command(pilot, app, "/mode acceptEdits", "permission mode: acceptEdits")
            await command(pilot, app, "/permissions", "permission mode: acceptEdits  (")

    asyncio.run(run())


def test_unknown_commands_and_double_slash(store: Store, git_repo: Path) -> None:
    host = ForegroundHost(store, git_repo, model=write_script(git_repo.parent, ANSWERS))

    async def run() -> None:
        app = SessionApp(store, host=host)
        async with app.run_test(size=(120, 30)) as pilot:
            await command(pilot, app, "/compcat", "did you mean /compact")
            await pilot.pause(0.2)
            assert host.session_id is None and not host.running  # nothing was sent
            await prompt_and_wait(pilot, app, host, "//etc/hosts looks odd")
            await wait_for(pilot, lambda: "● answer 1" in transcript(app), "the answer")
            assert "> /etc/hosts looks odd" in transcript(app)[0]

    asyncio.run(run())


def test_typing_a_slash_lists_and_completes_the_commands(store: Store, git_repo: Path) -> None:
    host = ForegroundHost(store, git_repo, model=write_script(git_repo.parent, ANSWERS))

    async def run() -> None:
        app = SessionApp(store, host=host)
        async with app.run_test(size=(120, 30)) as pilot:
            hints = app.screen.query_one("#slash-hints", Static)
            await pilot.press("slash")
            await wait_for(pilot, lambda: bool(hints.display), "the command list")
            assert "/exit" in str(hints.render()) and "/resume [ID|NAME]" in str(hints.render())
            await pilot.press("c", "o", "m")
            await pilot.pause(0.1)
            assert "/compact [instructions]" in str(hints.render())
            assert "/clear" not in str(hints.render())
            await pilot.press("right")  # accepts the inline completion
            await wait_for(
                pilot,
                lambda: app.screen.query_one("#prompt", Input).value == "/compact",
                "the completed command",
            )
            await pilot.press("space", "x")
            await pilot.pause(0.1)
            assert not hints.display

    asyncio.run(run())


def test_clear_starts_a_fresh_session_and_resume_brings_the_old_one_back(
    store: Store, git_repo: Path
) -> None:
    host = ForegroundHost(store, git_repo, model=write_script(git_repo.parent, ANSWERS))

    async def run() -> tuple[str, str]:
        app = SessionApp(store, host=host)
        async with app.run_test(size=(140, 40)) as pilot:
            await command(pilot, app, "/clear", "already a fresh session")
            await prompt_and_wait(pilot, app, host, "first task")
            await wait_for(pilot, lambda: "● answer 1" in transcript(app), "the answer")
            old = host.session_id
            assert old is not None
            await command(pilot, app, "/clear", f"left {old} (/resume {old})")
            assert host.session_id is None and transcript(app) == []
            await prompt_and_wait(pilot, app, host, "second task")
            new = host.session_id
            assert new is not None and new != old
            await command(pilot, app, "/resume", "recent sessions here")
            assert any(line.strip().startswith(old) for line in transcript(app))
            await command(pilot, app, "/resume nosuch", "no session 'nosuch'")
            busy, _ = seed_session(store, git_repo, name="busy", state="working")
            await command(pilot, app, "/resume busy", f"{busy} is running elsewhere: attach")
            assert host.session_id == new
            await command(pilot, app, f"/resume {old}", f"resumed session {old}")
            assert host.session_id == old
            assert "> first task" in transcript(app)[0]
            await prompt_and_wait(pilot, app, host, "continue the first")
            await wait_for(pilot, lambda: "● answer 2" in transcript(app), "turn two of it")
            assert host.session_id == old
            return old, new

    old, new = asyncio.run(run())
    with store.read() as conn:
        rows = [get_session(conn, sid) for sid in (old, new)]
    assert [r.state if r else None for r in rows] == ["completed", "completed"]


def test_compact_now_with_focus_instructions(store: Store, git_repo: Path) -> None:
    host = ForegroundHost(store, git_repo, model=write_script(git_repo.parent, ANSWERS))

    async def run() -> str:
        app = SessionApp(store, host=host)
        async with app.run_test(size=(140, 40)) as pilot:
            await command(pilot, app, "/compact", "nothing to compact: send a prompt first")
            await prompt_and_wait(pilot, app, host, "one")
            await command(pilot, app, "/compact", "nothing compacted (too few turns")
            for text in ("two", "three"):
                await prompt_and_wait(pilot, app, host, text)
            await command(pilot, app, "/compact keep the API notes", "compacted: 6 messages")
            await wait_for(pilot, lambda: "── compacted (manual) ──" in transcript(app), "mark")
            await prompt_and_wait(pilot, app, host, "four")
            await wait_for(pilot, lambda: "● answer 4" in transcript(app), "after compaction")
            return host.session_id or ""

    sid = asyncio.run(run())
    with store.read() as conn:
        entries = read_entries(conn, sid)
    [boundary] = [e for e in entries if e.kind == "compact_boundary"]
    assert boundary.data["trigger"] == "manual"
    assert "answer 1" in boundary.data["summary"]


def test_exit_and_quit_leave_and_bg_hands_over(store: Store, git_repo: Path) -> None:
    async def leave(line: str, host: ForegroundHost) -> str | None:
        app = SessionApp(store, host=host)
        async with app.run_test(size=(120, 30)) as pilot:
            await prompt_and_wait(pilot, app, host, "hello")
            await type_and_enter(pilot, app, line)
            await wait_for(pilot, lambda: not app.is_running, f"{line} to leave")
        return app.return_value

    model = write_script(git_repo.parent, ANSWERS)
    for line in ("/exit", "/quit"):
        host = ForegroundHost(store, git_repo, model=model)
        assert asyncio.run(leave(line, host)) is None
    host = ForegroundHost(store, git_repo, model=model)
    handed_over = asyncio.run(leave("/bg", host))
    assert handed_over is not None and handed_over == host.session_id
    with store.read() as conn:
        row = get_session(conn, handed_over)
        commands = pending_commands(conn, session_id=handed_over)
    assert row is not None and (row.kind, row.state) == ("background", "completed")
    assert commands == []  # it was between turns: nothing to continue


def test_an_attached_session_refuses_what_needs_a_local_host(store: Store, tmp_path: Path) -> None:
    sid, _ = seed_session(store, tmp_path, name="bg", state="working")

    async def run() -> None:
        app = SessionApp(store, sid)
        async with app.run_test(size=(120, 30)) as pilot:
            for line in ("/clear", "/compact", "/model haiku", "/resume", "/mode plan", "/bg"):
                name = line.split()[0]
                await command(pilot, app, line, f"{name} needs a session hosted in this screen")
            await command(pilot, app, "/model", "model: scripted:demo")
            await command(pilot, app, "/usage", f"session {sid} · 0 requests")
            await command(pilot, app, "/help", "/usage")
            await type_and_enter(pilot, app, "/exit")
            await wait_for(pilot, lambda: not app.is_running, "the screen to close")
        assert app.return_value is None

    asyncio.run(run())
    with store.read() as conn:
        row = get_session(conn, sid)
        commands = pending_commands(conn, session_id=sid)
    assert row is not None and row.state == "working" and commands == []


def test_headless_compact_and_the_compact_subcommand(git_repo: Path) -> None:
    model = write_script(git_repo.parent, ANSWERS)
    first = covey("-p", "--model", model, "--output-format", "json", "one", cwd=git_repo)
    assert first.code == 0, first.err
    sid = first.json()["session_id"]
    few = covey("compact", sid, cwd=git_repo)
    assert few.code == 0 and "nothing compacted" in few.out
    for text in ("two", "three"):
        assert covey("-p", "--resume", sid, text, cwd=git_repo).code == 0
    done = covey("-p", "--resume", sid, "/compact keep the API notes", cwd=git_repo)
    assert done.code == 0, done.err
    assert f"session {sid} compacted: 6 messages" in done.out
    again = covey("-p", "--resume", sid, "four", cwd=git_repo)
    assert again.code == 0 and "answer 4" in again.out
    for _ in range(2):
        assert covey("-p", "--resume", sid, "more", cwd=git_repo).code == 0
    by_name = covey("compact", sid, "the", "tests", cwd=git_repo)
    assert by_name.code == 0 and f"session {sid} compacted" in by_name.out
    with Store.open() as opened, opened.read() as conn:
        kinds = [
            e.data.get("trigger") for e in read_entries(conn, sid) if e.kind == "compact_boundary"
        ]
    assert kinds == ["manual", "manual"]


def test_headless_refuses_screen_only_commands(git_repo: Path) -> None:
    usage = covey("-p", "/usage", cwd=git_repo)
    assert usage.code == 2 and "/usage works in the session screen" in usage.err
    assert "screen-only: /help, /clear, /usage" in usage.err
    no_session = covey("-p", "/compact", cwd=git_repo)
    assert no_session.code == 2 and "covey compact ID" in no_session.err
    unknown = covey("-p", "/compcat", cwd=git_repo)
    assert unknown.code == 2 and "did you mean /compact" in unknown.err
    missing = covey("compact", "nosuch", cwd=git_repo)
    assert missing.code == 2 and "nosuch" in missing.err
