"""Teams in the agent view: a lead's row shows its teammates beneath it (name, state, the task
each works on), and peeking at the lead shows the task board. The pure part without a
terminal, the widgets with Pilot over a real store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from covey.errors import UserError
from covey.messages import Message, TextBlock, dump_message
from covey.sessions.listing import agent_rows
from covey.sessions.state import set_state
from covey.store import Store
from covey.store import teams as team_store
from covey.store.commands import pending_commands
from covey.store.sessions import get_session
from covey.store.transcript import append_entry
from covey.teams.text import mail_text
from covey.teams.user_mail import USER, tell_teammate
from covey.teams.view import task_board, teammates_of
from covey.tui.agent_view import AgentViewApp
from covey.tui.peek import board_lines
from covey.tui.rows import GroupHeader, RowLine, TeammateLine, group_lines, teammate_text
from teamview_seed import seed_team
from tui_seed import seed_session, store, wait_for

__all__ = ["store"]  # the fixture, used by name


def test_teammates_come_beneath_their_lead_with_state_and_task(
    store: Store, tmp_path: Path
) -> None:
    team = seed_team(store, tmp_path)
    other, _ = seed_session(store, tmp_path, name="solo", state="working")
    rows = agent_rows(store)
    with store.read() as conn:
        mates = teammates_of(conn, [r.id for r in rows])
    assert set(mates) == {team.lead}  # a session without a team has no entry
    alice, bob = mates[team.lead]
    assert (alice.name, alice.state, bob.name, bob.state) == ("alice", "working", "bob", "idle")
    assert teammate_text(alice) == "working · #1 Write the parser"
    assert teammate_text(bob) == "idle"
    lines = group_lines(rows, teammates=mates)
    shape = [
        type(line).__name__ + ":" + (
            line.row.label if isinstance(line, RowLine)
            else line.teammate.name + ("/last" if line.last else "")
            if isinstance(line, TeammateLine) else line.text
        )
        for line in lines if not isinstance(line, GroupHeader) or line.count
    ]  # fmt: skip
    assert shape.index("RowLine:team-lead-run") + 1 == shape.index("TeammateLine:alice")
    assert shape.index("TeammateLine:alice") + 1 == shape.index("TeammateLine:bob/last")
    assert "RowLine:solo" in shape and other not in mates


def test_the_board_lists_id_status_owner_subject_and_open_blockers(
    store: Store, tmp_path: Path
) -> None:
    team = seed_team(store, tmp_path)
    solo, _ = seed_session(store, tmp_path, name="solo", state="working")
    with store.read() as conn:
        board = task_board(conn, team.lead)
        assert task_board(conn, solo) is None
    assert board is not None
    lines = board_lines(board, team.lead)
    assert lines[0] == "tasks (3):"
    assert lines[1].split() == ["#1", "in_progress", "alice", "Write", "the", "parser"]
    assert lines[2].split() == [
        "#2",
        "pending",
        "-",
        "Test",
        "the",
        "parser",
        "blocked",
        "by",
        "#1",
    ]
    assert lines[3].split()[:3] == ["#3", "pending", "-"]


def test_a_team_without_tasks_or_teammates_shows_no_board(store: Store, tmp_path: Path) -> None:
    lead, _ = seed_session(store, tmp_path, name="lonely", state="working")
    with store.write() as conn:
        team_store.ensure_team(conn, lead)  # every lead's session has one when teams are on
    with store.read() as conn:
        assert task_board(conn, lead) is None


def _text(app: AgentViewApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def _screen_lines(app: AgentViewApp) -> list[str]:
    agent_list = app.agents.agent_list
    return [
        "".join(s.text for s in agent_list.render_line(y))
        for y in range(min(len(agent_list.lines), agent_list.size.height))
    ]


def test_the_view_draws_teammates_and_the_peek_shows_the_board(
    store: Store, tmp_path: Path
) -> None:
    solo, _ = seed_session(store, tmp_path, name="solo", state="working", created=1.0, updated=1.0)
    team = seed_team(store, tmp_path)

    async def run() -> None:
        app = AgentViewApp(store, tmp_path, overlap_scan=False)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: len(app.agents.agent_list.lines) > 5, "the rows")
            drawn = _screen_lines(app)
            lead_at = next(i for i, t in enumerate(drawn) if "team-lead-run" in t)
            assert "├ ✻ alice" in drawn[lead_at + 1]
            assert "working · #1 Write the parser" in drawn[lead_at + 1]
            assert "└ ◌ bob" in drawn[lead_at + 2] and "idle" in drawn[lead_at + 2]
            # the cursor rests on the lead's teammates too, in their order
            listing = app.agents.agent_list
            assert listing.selected is not None and listing.selected.id == team.lead
            for expected in (team.teammates["alice"], team.teammates["bob"], solo):
                await pilot.press("down")
                assert listing.selected is not None and listing.selected.id == expected
            for _ in range(3):
                await pilot.press("up")
            assert listing.selected is not None and listing.selected.id == team.lead
            await pilot.press("space")
            await wait_for(pilot, lambda: "tasks (3)" in _text(app, "#peek-body"), "the board")
            body = _text(app, "#peek-body")
            assert "#1   in_progress alice" in body and "blocked by #1" in body
            # a teammate's state change shows at once, under its lead
            set_state(store, team.teammates["bob"], team.epochs["bob"], "working")
            await wait_for(
                pilot,
                lambda: any("└ ✻ bob" in t for t in _screen_lines(app)),
                "bob working",
            )

    asyncio.run(run())


def test_peeking_at_a_session_without_a_team_shows_no_board(store: Store, tmp_path: Path) -> None:
    seed_session(store, tmp_path, name="solo", state="working")

    async def run() -> None:
        app = AgentViewApp(store, tmp_path, overlap_scan=False)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: app.agents.agent_list.selected is not None, "a row")
            await pilot.press("space")
            await wait_for(pilot, lambda: app.agents.peek_panel.display, "the peek")
            assert "tasks" not in _text(app, "#peek-body")

    asyncio.run(run())


async def _select(app: AgentViewApp, pilot: Pilot[None], session_id: str) -> None:
    """Move the cursor (↓ only, as a user would) onto `session_id`'s row."""
    listing = app.agents.agent_list
    await wait_for(pilot, lambda: session_id in listing._line_of, "the row")
    for _ in range(len(listing.lines)):
        if listing.selected is not None and listing.selected.id == session_id:
            return
        await pilot.press("down")
    raise AssertionError(f"{session_id} cannot be selected")


def test_a_selected_teammate_is_peeked_at_and_a_reply_is_mail_to_it(
    store: Store, tmp_path: Path
) -> None:
    team = seed_team(store, tmp_path)
    alice = team.teammates["alice"]
    said = Message(role="assistant", content=[TextBlock(text="Parsing the header now.")])
    with store.write() as conn:
        append_entry(conn, alice, team.epochs["alice"], "message", dump_message(said))

    async def run() -> None:
        app = AgentViewApp(store, tmp_path, overlap_scan=False)
        async with app.run_test(size=(120, 30)) as pilot:
            await _select(app, pilot, alice)
            drawn = _screen_lines(app)
            assert app.agents.agent_list.selected is not None
            assert app.agents.agent_list.selected.kind == "teammate"
            await pilot.press("enter")  # Enter on a teammate peeks (its lead's host runs it)
            await wait_for(pilot, lambda: app.agents.peek_panel.display, "the peek")
            assert app.screen is app.agents  # no session screen over a teammate
            assert "alice · working" in _text(app, "#peek-title")
            assert "Parsing the header now." in _text(app, "#peek-body")
            assert "tasks" not in _text(app, "#peek-body")  # the board is the lead's
            assert any("├ ✻ alice" in t for t in drawn)
            await pilot.press(*"use the new grammar")
            await pilot.press("enter")
            await wait_for(pilot, lambda: "message sent" in _text(app, "#view-message"), "sent")
        with store.read() as conn:
            member = team_store.member_of_session(conn, alice)
            assert member is not None
            (mail,) = team_store.undelivered(conn, member.team_id, "alice")
        assert (mail.sender, mail.body) == (USER, "use the new grammar")
        assert mail_text([mail]).startswith('<teammate-message from="the user">')

    asyncio.run(run())


def test_ctrl_x_twice_on_a_teammate_stops_it_and_keeps_its_row(
    store: Store, tmp_path: Path
) -> None:
    team = seed_team(store, tmp_path)
    bob = team.teammates["bob"]

    async def run() -> None:
        app = AgentViewApp(store, tmp_path, overlap_scan=False)
        async with app.run_test(size=(120, 30)) as pilot:
            await _select(app, pilot, bob)
            await pilot.press("ctrl+x")
            assert "again to stop bob" in _text(app, "#view-message")
            assert "delete" not in _text(app, "#view-message")
            await pilot.press("ctrl+x")
            await wait_for(pilot, lambda: "stop requested · bob" in _text(app, "#view-message"),
                           "the stop")  # fmt: skip

    asyncio.run(run())
    with store.read() as conn:
        # bob's host (this process holds its lease) gets a stop command, as `covey stop`
        assert [c.type for c in pending_commands(conn, session_id=bob)] == ["stop"]
        row = get_session(conn, bob)
    assert row is not None and row.deleted_at is None
    assert bob in [m.session_id for m in _members(store, team.lead)]


def _members(store: Store, lead: str) -> list[team_store.MemberRow]:
    with store.read() as conn:
        team = team_store.team_of_lead(conn, lead)
        assert team is not None
        return team_store.list_members(conn, team.id)


def test_an_ended_teammate_gets_no_mail(store: Store, tmp_path: Path) -> None:
    team = seed_team(store, tmp_path)
    set_state(store, team.teammates["bob"], team.epochs["bob"], "stopped", "stopped by user")
    with pytest.raises(UserError, match=r"teammate bob has ended \(stopped\)"):
        tell_teammate(store, team.teammates["bob"], "hello?")
    with pytest.raises(UserError, match="is not a teammate"):
        tell_teammate(store, team.lead, "hello?")
    with store.read() as conn:
        member = team_store.member_of_session(conn, team.teammates["bob"])
        assert member is not None
        assert team_store.undelivered(conn, member.team_id, "bob") == []
