"""A teammate's name stays with its session for the team's life (tasks and mail name it):
spawning a live name says to message it; spawning an ended one says which free name to use
and how to hand over its tasks, and that name works."""

from __future__ import annotations

from pathlib import Path

import pytest

from covey.errors import ToolError
from covey.store import Store
from covey.store.sessions import list_sessions
from teamtools import fake, requests_of, run, spawn, tool_results

FIRST = [
    {"tool_calls": [spawn("alice", "Say hello."), spawn("alice", "Say it again.")]},
    {"text": "waiting"},
    {"text": "FIRST-RUN done"},
]
SECOND = [
    {"tool_calls": [spawn("alice", "Say hello once more.")]},
    {"tool_calls": [spawn("alice-2", "Say hello once more.")]},
    {"text": "waiting"},
    {"text": "SECOND-RUN done"},
]
SCRIPT = {
    "turns": [*FIRST, *SECOND, {"text": "spare"}],
    "agents": {
        "alice": {"turns": [{"text": "ALICE-HELLO"}, {"text": "spare"}]},
        "alice-2": {"turns": [{"text": "ALICE-2-HELLO"}, {"text": "spare"}]},
    },
}


def test_a_taken_name_is_refused_with_what_to_do_and_the_suggested_one_works(
    git_repo: Path,
) -> None:
    with fake(SCRIPT) as (srv, env):
        first = run(git_repo, env)
        assert first.code == 0, first.err
        assert first.json()["result"] == "FIRST-RUN done"
        (spawned, again), *_ = [tool_results(r) for r in requests_of(srv, None)[1:2]]
        assert not spawned[1] and again[1]
        assert "teammate alice is already in the team (" in again[0]
        assert "SendMessage" in again[0]
        lead_id = first.json()["session_id"]
        second = run(git_repo, env, "--resume", lead_id, prompt="again")
    assert second.code == 0, second.err
    assert second.json()["result"] == "SECOND-RUN done"
    lead = requests_of(srv, None)
    ((refused, is_error),) = tool_results(lead[4])
    assert is_error
    assert "teammate alice has ended (completed" in refused
    assert "start the new teammate as 'alice-2'" in refused
    assert "TaskUpdate {owner: 'alice-2'}" in refused
    ((started, is_error),) = tool_results(lead[5])
    assert not is_error and '"name": "alice-2"' in started
    assert len(requests_of(srv, "alice")) == 1 and len(requests_of(srv, "alice-2")) == 1
    with Store.open() as store, store.read() as conn:
        rows = {r.name: r for r in list_sessions(conn, kinds=["teammate"])}
    assert set(rows) == {"alice", "alice-2"} and rows["alice"].id != rows["alice-2"].id


def test_the_suggested_name_is_free_and_valid_for_a_long_name() -> None:
    from covey.store.sessions import SessionRow
    from covey.store.teams import MemberRow
    from covey.teams.runtime import _NAME, _refuse_taken

    name = "a" * 40
    member = MemberRow("team", name, "old00001")
    row = SessionRow.new(id="old00001", kind="teammate", cwd=".", model="m", state="stopped")
    taken = {name, f"{'a' * 36}-2"}
    with pytest.raises(ToolError) as refused:
        _refuse_taken(name, member, row, taken)
    suggested = str(refused.value).split("start the new teammate as '")[1].split("'")[0]
    assert suggested == f"{'a' * 36}-3" and _NAME.fullmatch(suggested)
