"""A replicated session's tree: the subagent a node session starts, and the team it leads,
reach the user's store through the root's journal (rows, transcripts, usage, the team's
tasks and mailbox), exactly once, fenced by the root's epoch; a resumed export carries them
to the next node. Two real SQLite stores, the scripted model, the real `SessionHost`."""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from covey.executors.replica import (
    StaleEpoch,
    apply,
    collect,
    export_session,
    forward_commands,
    pump,
    seed_node_store,
)
from covey.store import Store
from covey.store.commands import claim_commands, enqueue_command, finish_command, get_command
from covey.store.events import read_events
from covey.store.sessions import (
    SessionRow,
    acquire_lease,
    get_session,
    insert_session,
    list_sessions,
)
from covey.store.teams import LEAD, mailbox, team_of_lead
from covey.store.transcript import append_entry, read_entries
from covey.store.usage import session_usage
from covey.teams.view import team_view
from replicatools import new_session, open_host, pumping, run_on_node, seed

SID = "replica1"


def _usage(i: int, o: int) -> dict[str, int]:
    return {"input": i, "output": o, "cache_read": 0, "cache_write": 0}


def _call(tool: str, **tool_input: Any) -> dict[str, Any]:
    return {"name": tool, "input": tool_input}


SUBAGENT = {
    "turns": [
        {
            "usage": _usage(1000, 50),
            "tool_calls": [
                _call(
                    "Agent",
                    description="look around",
                    prompt="List the files.",
                    subagent_type="general-purpose",
                )
            ],
        },
        {"usage": _usage(1300, 20), "text": "The helper looked."},
    ],
    "agents": {
        "general-purpose": {
            "turns": [
                {"usage": _usage(400, 30), "tool_calls": [_call("Bash", command="ls")]},
                {"usage": _usage(500, 10), "text": "Nothing but .git."},
            ]
        }
    },
}

TEAM = {
    "turns": [
        {
            "usage": _usage(900, 40),
            "tool_calls": [
                _call("TaskCreate", subject="Count files", description="ls | wc -l"),
                _call("Agent", name="alice", description="teammate alice", prompt="Count."),
            ],
        },
        {"usage": _usage(950, 10), "text": "waiting for alice"},
        {"usage": _usage(990, 10), "text": "LEAD-FINAL"},
        {"text": "spare"},
        {"text": "spare"},
    ],
    "agents": {
        "alice": {
            "turns": [
                {
                    "usage": _usage(300, 20),
                    "tool_calls": [
                        _call("TaskUpdate", taskId="1", status="in_progress"),
                        _call("TaskUpdate", taskId="1", status="completed"),
                        _call("SendMessage", to=LEAD, message="ALICE counted 0 files"),
                    ],
                },
                {"usage": _usage(320, 5), "text": "ALICE done"},
                {"text": "spare"},
            ]
        }
    },
}


def _write(path: Path, script: dict[str, Any]) -> str:
    path.write_text(json.dumps(script))
    return f"scripted:{path}"


def _tree(store: Store) -> dict[str, Any]:
    """What a person sees of the session's tree: rows, transcripts, usage, events."""
    with store.read() as conn:
        rows = list_sessions(conn, include_deleted=True)
        children = sorted((r for r in rows if r.id != SID), key=lambda r: r.created_at)
        out: dict[str, Any] = {"usage": session_usage(conn, SID)}
        for r in children:
            out[r.id] = {
                "row": (r.kind, r.name, r.agent, r.state, r.reason, r.parent_id, r.cwd),
                "transcript": [(e.seq, e.kind, e.data) for e in read_entries(conn, r.id)],
                "usage": session_usage(conn, r.id),
                "events": [(e.type, e.data) for e in read_events(conn, session_id=r.id)],
            }
        out["root"] = [(e.seq, e.kind, e.data) for e in read_entries(conn, SID)]
    return out


def _team(store: Store) -> dict[str, Any]:
    with store.read() as conn:
        team = team_of_lead(conn, SID)
        assert team is not None
        mail = [
            (m.kind, m.sender, m.recipient, m.body, m.delivered_at is not None)
            for m in mailbox(conn, team.id)
        ]
        return {"view": team_view(conn, team), "mail": mail, "ended": team.ended_at is not None}


def _run_pumped(
    tmp_path: Path, user: Store, git_repo: Path, script: dict[str, Any]
) -> tuple[Store, int]:
    epoch = new_session(user, git_repo, _write(tmp_path / "script.json", script), SID)
    node_path = tmp_path / "node.db"
    node = Store.open(node_path)
    host_id = seed(user, node, SID, epoch)
    with pumping(user, node_path, SID, epoch, lambda _s: None) as errors:
        asyncio.run(asyncio.wait_for(run_on_node(node, SID, epoch, host_id, "go"), 60))
    assert errors == []
    return node, epoch


def test_a_subagent_on_the_node_reaches_the_users_store_with_its_usage(
    git_repo: Path, tmp_path: Path
) -> None:
    with Store.open(tmp_path / "user.db") as user:
        node, epoch = _run_pumped(tmp_path, user, git_repo, SUBAGENT)
        with node:
            here, there = _tree(user), _tree(node)
            (child_id,) = [k for k in here if k not in ("usage", "root")]
            child = here[child_id]
            assert child["row"][:5] == (
                "subagent", "look around", "general-purpose", "completed", "end_turn",
            )  # fmt: skip
            assert child["row"][-1] == str(git_repo)
            assert [k for _, k, _ in child["transcript"]] == [
                "message", "message", "tool_result", "message", "message",
            ]  # fmt: skip
            assert child["usage"][0].input == 900
            assert here == there
            usage, _cost = here["usage"]  # the root's ledger counts its subagent's tokens
            assert (usage.input, usage.output) == (1000 + 1300 + 400 + 500, 50 + 20 + 30 + 10)

            # a command for a child (`covey stop` of a teammate) reaches the node; its
            # outcome comes back through the root's journal
            with user.write() as conn:
                command = enqueue_command(conn, child_id, "stop")
            assert forward_commands(user, node, SID, 0) == command
            with node.write() as conn:
                (forwarded,) = claim_commands(conn, claimer="node", session_id=child_id)
                finish_command(conn, forwarded.id, "done", {"stopped": False})
            pump(user, node, SID, epoch, lambda _s: None)
            with user.read() as conn:
                done = get_command(conn, command)
            assert done is not None and done.status == "done"


def test_a_team_led_on_the_node_shows_in_the_users_store(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVEY_EXPERIMENTAL_AGENT_TEAMS", "1")
    with Store.open(tmp_path / "user.db") as user:
        node, _epoch = _run_pumped(tmp_path, user, git_repo, TEAM)
        with node:
            here, there = _team(user), _team(node)
            assert _tree(user) == _tree(node)
        assert here == there
        assert here["ended"]  # the team was shut down at the lead's turn end
        view = here["view"]
        assert [m["name"] for m in view["members"]] == [LEAD, "alice"]
        assert [(t["subject"], t["status"]) for t in view["tasks"]] == [
            ("Count files", "completed")
        ]
        assert ("message", "alice", LEAD, "ALICE counted 0 files", True) in here["mail"]
        assert any(kind == "idle" and sender == "alice" for kind, sender, *_ in here["mail"])

        # the session moves to another node: the export carries the tree and the team
        with user.write() as conn:
            epoch = acquire_lease(conn, SID, "supervisor-2", 30.0, 0.0, force=True)
        assert epoch is not None
        export = export_session(user, SID)
        assert pickle.loads(pickle.dumps(export)) == export
        moved = tmp_path / "elsewhere"
        with Store.open(tmp_path / "node2.db") as node2:
            seed_node_store(node2, export, epoch, host_id="node-2", cwd=moved)
            assert _team(node2) == here
            with node2.read() as conn:
                alice = get_session(conn, view["members"][1]["id"])
            assert alice is not None and alice.cwd == str(moved)
            assert alice.host_id is None  # free for the next node's host to resume
            node_tree, user_tree = _tree(node2), _tree(user)
        assert node_tree["usage"] == user_tree["usage"]
        assert node_tree["root"] == user_tree["root"]


def test_reapplying_a_trees_batch_writes_nothing_twice_and_a_stale_epoch_nothing(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVEY_EXPERIMENTAL_AGENT_TEAMS", "1")
    script = copy.deepcopy(TEAM)  # alice starts a subagent: the tree is two deep
    script["agents"].update(SUBAGENT["agents"])
    alice = script["agents"]["alice"]["turns"][0]["tool_calls"]
    alice.append(
        _call("Agent", description="help alice", prompt="ls", subagent_type="general-purpose")
    )
    with Store.open(tmp_path / "user.db") as user, Store.open(tmp_path / "node.db") as node:
        epoch = new_session(user, git_repo, _write(tmp_path / "script.json", script), SID)
        host_id = seed(user, node, SID, epoch)
        host = open_host(node, SID, epoch, host_id)  # ungated: the journal all at once
        try:
            asyncio.run(asyncio.wait_for(host.run_turn("go"), 60))
        finally:
            host.close()
        everything = collect(node, SID, 0)
        first = collect(node, SID, 0, limit=len(everything.records) // 2)
        assert {r.kind for r in everything.records} >= {"child", "team", "entry", "usage"}

        with user.write() as conn:  # a zombie's batch: refused whole
            acquire_lease(conn, SID, "other", 30.0, 0.0, force=True)
        with pytest.raises(StaleEpoch):
            apply(user, SID, epoch, everything, lambda _s: None)
        with user.read() as conn:
            assert team_of_lead(conn, SID) is None
            assert [r.id for r in list_sessions(conn, include_deleted=True)] == [SID]
        with user.write() as conn:  # back to the node's epoch for the rest of the test
            conn.execute("UPDATE sessions SET epoch = ? WHERE id = ?", (epoch, SID))

        apply(user, SID, epoch, first, lambda _s: None)
        apply(user, SID, epoch, everything, lambda _s: None)
        apply(user, SID, epoch, first, lambda _s: None)  # late duplicates: nothing
        apply(user, SID, epoch, everything, lambda _s: None)
        assert _tree(user) == _tree(node)
        assert _team(user) == _team(node)
        with user.read() as conn:
            rows = {r.kind: r for r in list_sessions(conn, include_deleted=True)}
        assert rows["subagent"].parent_id == rows["teammate"].id  # alice's own subagent
        assert rows["teammate"].parent_id == SID


def test_a_childs_paths_on_the_node_are_moved_under_the_roots_own(tmp_path: Path) -> None:
    node_repo = tmp_path / "node" / "repo"
    with Store.open(tmp_path / "user.db") as user, Store.open(tmp_path / "node.db") as node:
        epoch = new_session(user, tmp_path / "repo", "scripted:none", SID)
        seed_node_store(node, export_session(user, SID), epoch, host_id="n1", cwd=node_repo)
        child = SessionRow.new(
            id="kid1", kind="subagent", cwd=str(node_repo / "pkg"), model="m", parent_id=SID
        )
        with node.write() as conn:  # what a subagent on the node writes
            insert_session(conn, child)
            kid_epoch = acquire_lease(conn, "kid1", "n1", 30.0, 0.0)
            assert kid_epoch is not None
            append_entry(conn, "kid1", kid_epoch, "message", {"role": "user", "content": "hi"})
        apply(user, SID, epoch, collect(node, SID, 0), lambda _s: None)
        with user.read() as conn:
            kid = get_session(conn, "kid1")
            entries = read_entries(conn, "kid1")
    assert kid is not None and kid.cwd == str(tmp_path / "repo" / "pkg")
    assert (kid.parent_id, kid.host_id, kid.epoch) == (SID, "n1", kid_epoch)
    assert [e.data for e in entries] == [{"role": "user", "content": "hi"}]
