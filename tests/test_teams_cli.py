"""Agent teams end to end: `covey -p` in a real git repository, the fake provider with a route
per teammate (its name in the `x-covey-agent` header), the real store."""

from __future__ import annotations

import json
from pathlib import Path

from clitools import covey
from covey.store import Store
from covey.store import teams as team_store
from covey.store.sessions import get_session
from teamtools import call, fake, requests_of, run, spawn, texts, tool_names, tool_results

TEAM_TOOLS = {"TaskCreate", "TaskUpdate", "TaskGet", "TaskList", "SendMessage"}

BASIC = {
    "turns": [
        {
            "tool_calls": [
                call("TaskCreate", subject="Write notes", description="notes.md with one line"),
                spawn("alice", "Take task 1 and do it."),
            ]
        },
        {"text": "Spawned alice; waiting."},
        {"text": "Team done: alice wrote the notes."},
        {"text": "spare turn"},
    ],
    "agents": {
        "alice": {
            "turns": [
                {
                    "delay_s": 1.0,  # the lead's next turn comes first: its request count is fixed
                    "tool_calls": [
                        call("TaskUpdate", taskId="1", owner="alice"),
                        call("Write", file_path="notes.md", content="hello\n"),
                        call("TaskUpdate", taskId="1", status="completed"),
                    ],
                },
                {"text": "ALICE-REPORT: notes.md written."},
            ]
        }
    },
}


def test_a_teammate_works_reports_idle_and_the_run_ends_with_the_team(git_repo: Path) -> None:
    with fake(BASIC) as (srv, env):
        result = run(git_repo, env)
    assert result.code == 0, result.err
    assert result.json()["result"] == "Team done: alice wrote the notes."
    lead, alice = requests_of(srv, None), requests_of(srv, "alice")
    assert [r["turn"] for r in lead] == [0, 1, 2]
    assert [r["turn"] for r in alice] == [0, 1]
    assert tool_names(lead[0]) >= TEAM_TOOLS | {"Agent"}
    assert tool_names(alice[0]) >= TEAM_TOOLS
    created, spawned = tool_results(lead[1])
    assert json.loads(created[0]) == {"task": {"id": "1", "subject": "Write notes"}}
    started = json.loads(spawned[0])
    assert started["name"] == "alice" and started["status"] == "teammate_spawned"
    # the teammate's context: the preamble and the prompt, not the lead's history
    assert 'You are teammate "alice"' in alice[0]["body"]["system"][0]["text"]
    assert "Write notes" not in texts(alice[0])
    claimed, _, completed = tool_results(alice[1])
    assert json.loads(claimed[0])["updatedFields"] == ["owner"]
    assert json.loads(completed[0])["statusChange"] == {"from": "pending", "to": "completed"}
    idle = texts(lead[2])
    assert '<teammate-idle from=\\"alice\\">' in idle and "ALICE-REPORT" in idle
    assert "completed tasks: #1 Write notes" in idle
    assert (git_repo / "notes.md").read_text() == "hello\n"
    with Store.open() as store, store.read() as conn:
        row = get_session(conn, started["agentId"])
        assert row is not None and row.kind == "teammate" and row.state == "completed"
        assert row.parent_id == result.json()["session_id"]
        team = team_store.team_of_lead(conn, row.parent_id)
        assert team is not None and team.ended_at is not None
        assert team_store.undelivered_count(conn, team.id) == 0
    # `covey team`: of the lead, or of the team a teammate belongs to
    shown = covey("team", result.json()["session_id"], "--json", cwd=git_repo, env=env)
    assert shown.code == 0, shown.err
    view = shown.json()
    assert [(m["name"], m["state"]) for m in view["members"]] == [
        ("team-lead", "completed"),
        ("alice", "completed"),
    ]
    assert view["members"][1]["id"] == started["agentId"] and view["members"][1]["cost_usd"] > 0
    assert view["tasks"] == [
        {"id": "1", "subject": "Write notes", "status": "completed", "owner": "alice",
         "blockedBy": [], "blocks": []}
    ]  # fmt: skip
    text = covey("team", started["agentId"], cwd=git_repo, env=env)
    assert text.code == 0 and "#1" in text.out and "alice" in text.out
    missing = covey("team", "nosuchsession", cwd=git_repo, env=env)
    assert missing.code == 2 and "no such session" in missing.err
    listed = covey("sessions", "--all", "--json", cwd=git_repo, env=env)
    (row,) = [r for r in json.loads(listed.out) if r["id"] == started["agentId"]]
    assert row["kind"] == "teammate" and row["parent_id"] == result.json()["session_id"]


def test_teams_off_no_team_tools_and_a_named_agent_is_a_subagent(git_repo: Path) -> None:
    script = {
        "turns": [{"tool_calls": [spawn("alice", "say hi")]}, {"text": "done"}],
        "agents": {"general-purpose": {"turns": [{"text": "SUBAGENT-HI"}]}},
    }
    with fake(script, teams=False) as (srv, env):
        result = run(git_repo, env)
    assert result.code == 0, result.err
    lead = requests_of(srv, None)
    assert not tool_names(lead[0]) & TEAM_TOOLS
    ((text, is_error),) = tool_results(lead[1])
    assert not is_error and text.startswith("SUBAGENT-HI")
    assert requests_of(srv, "alice") == []


MID_TURN = {
    "turns": [
        {"tool_calls": [spawn("alice", "Run the slow check.")]},
        {
            "tool_calls": [
                call("SendMessage", to="carol", message="lost?"),
                call("SendMessage", to="alice", message="MID-TURN-NOTE use port 8080"),
            ]
        },
        {"text": "Told alice."},
        {"text": "Done."},
        {"text": "spare turn"},
    ],
    "agents": {
        "alice": {
            "turns": [
                {"tool_calls": [call("Bash", command="sleep 2", description="slow check")]},
                {"text": "ALICE got the note."},
                {"text": "spare"},
            ]
        }
    },
}


def test_a_message_reaches_a_working_teammate_mid_turn_exactly_once(git_repo: Path) -> None:
    with fake(MID_TURN) as (srv, env):
        result = run(git_repo, env, "--allowedTools", "Bash")
    assert result.code == 0, result.err
    lead, alice = requests_of(srv, None), requests_of(srv, "alice")
    (unknown, is_error), (sent, _) = tool_results(lead[2])
    assert is_error and "no team member named 'carol'" in unknown
    assert "valid recipients: alice, *" in unknown
    assert json.loads(sent)["recipients"] == ["alice"]
    # turn 1 of alice follows her Bash result: the note came mid-turn, after the tool batch
    assert [r["turn"] for r in alice] == [0, 1]
    last = alice[1]["body"]["messages"][-1]["content"]
    kinds = [b["type"] for b in last]
    assert kinds[0] == "tool_result" and "MID-TURN-NOTE" in json.dumps(last[1:])
    assert '<teammate-message from=\\"team-lead\\" summary=' in json.dumps(last)
    assert texts(alice[1]).count("<teammate-message") == 1
    assert "ALICE got the note." in texts(lead[3])
    with Store.open() as store, store.read() as conn:
        team = team_store.team_of_lead(conn, result.json()["session_id"])
        assert team is not None
        (mail,) = [m for m in team_store.mailbox(conn, team.id) if m.recipient == "alice"]
        assert mail.delivered_seq is not None


def _claimer(name: str) -> dict[str, object]:
    return {
        "turns": [
            {"tool_calls": [call("TaskUpdate", taskId="1", owner=name)]},
            {"tool_calls": [spawn("carol", "nested?")]},
            {"text": f"{name} finished"},
        ]
    }


RACE = {
    "turns": [
        {
            "tool_calls": [
                call("TaskCreate", subject="The one job", description="only one may own it"),
                spawn("alice", "Claim task 1."),
                spawn("bob", "Claim task 1."),
            ]
        },
        *[{"text": "waiting"} for _ in range(4)],
    ],
    "agents": {"alice": _claimer("alice"), "bob": _claimer("bob")},
}


def test_two_teammates_claiming_one_task_one_wins_and_none_can_spawn(git_repo: Path) -> None:
    with fake(RACE) as (srv, env):
        result = run(git_repo, env)
    assert result.code == 0, result.err
    outcomes = {}
    for name in ("alice", "bob"):
        reqs = requests_of(srv, name)
        ((claim, claim_error),) = tool_results(reqs[1])
        outcomes[name] = (claim, claim_error)
        ((nested, nested_error),) = tool_results(reqs[2])
        assert nested_error and "teammates cannot start teammates" in nested
    winners = [n for n, (_, err) in outcomes.items() if not err]
    assert len(winners) == 1
    (loser,) = {"alice", "bob"} - set(winners)
    assert f"task 1 is owned by {winners[0]}" in outcomes[loser][0]
    with Store.open() as store, store.read() as conn:
        team = team_store.team_of_lead(conn, result.json()["session_id"])
        assert team is not None
        (task,) = team_store.list_tasks(conn, team.id)
        assert task.owner == winners[0]
