"""The team tables: members, the task list's rules and claims, the mailbox's exactly-once marks."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from covey.store import SessionRow, Store, acquire_lease, append_entry, insert_session, teams
from covey.store.teams import LEAD, TeamRefused


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.open(tmp_path / "covey.db") as s:
        yield s


def _team(store: Store, *names: str) -> str:
    with store.write() as conn:
        team = teams.ensure_team(conn, "lead0001")
        for name in names:
            teams.add_member(conn, team.id, name, f"sid-{name}")
    return team.id


def test_one_team_per_lead_with_the_lead_as_member(store: Store) -> None:
    with store.write() as conn:
        first = teams.ensure_team(conn, "lead0001")
        assert teams.ensure_team(conn, "lead0001") == first
        teams.add_member(conn, first.id, "alice", "sid-a", owns=["src/**"], isolation="worktree")
        with pytest.raises(TeamRefused, match="already named 'alice'"):
            teams.add_member(conn, first.id, "alice", "sid-b")
        with pytest.raises(TeamRefused, match="team-lead"):
            teams.add_member(conn, first.id, LEAD, "sid-c")
    with store.read() as conn:
        assert [m.name for m in teams.list_members(conn, first.id)] == [LEAD, "alice"]
        alice = teams.member_of_session(conn, "sid-a")
        assert alice is not None and alice.owns == ("src/**",) and alice.isolation == "worktree"
        lead = teams.member_of_session(conn, "lead0001")
        assert lead is not None and lead.name == LEAD
        assert first.name == "session-lead0001"


def test_task_ids_count_per_team_and_a_refused_creation_leaves_nothing(store: Store) -> None:
    tid = _team(store)
    with store.write() as conn:
        other = teams.ensure_team(conn, "lead0002").id
        assert [teams.create_task(conn, tid, f"s{i}", "d").id for i in range(3)] == ["1", "2", "3"]
        assert teams.create_task(conn, other, "x", "d").id == "1"
        assert teams.discard_task(conn, tid, "3")
        assert teams.create_task(conn, tid, "again", "d").id == "3"  # the refused id, reused
        assert teams.discard_task(conn, tid, "1")
        assert teams.create_task(conn, tid, "later", "d").id == "4"  # not the latest: a gap
    with store.read() as conn:
        assert [t.id for t in teams.list_tasks(conn, tid)] == ["2", "3", "4"]
        task = teams.get_task(conn, tid, "2")
        assert task is not None and task.status == "pending" and task.owner is None


def test_claim_rules_owner_blockers_and_the_leads_say(store: Store) -> None:
    tid = _team(store, "alice", "bob")
    with store.write() as conn:
        for i in range(3):
            teams.create_task(conn, tid, f"task {i + 1}", "d")
        teams.update_task(conn, tid, "2", by=LEAD, add_blocked_by=["1"])
    with store.write() as conn:
        with pytest.raises(TeamRefused, match=r"blocked by open task.s. 1"):
            teams.update_task(conn, tid, "2", by="alice", owner="alice")
        done = teams.update_task(conn, tid, "1", by="alice", owner="alice")
        assert done.updated_fields == ("owner",) and done.task.owner == "alice"
        with pytest.raises(TeamRefused, match="owned by alice"):
            teams.update_task(conn, tid, "1", by="bob", owner="bob")
        with pytest.raises(TeamRefused, match="owned by alice"):
            teams.update_task(conn, tid, "1", by="bob", status="completed")
        # in_progress on an unowned task claims it
        started = teams.update_task(conn, tid, "3", by="bob", status="in_progress")
        assert started.task.owner == "bob" and started.status_change == ("pending", "in_progress")
        with pytest.raises(TeamRefused, match="claim it before completing"):
            teams.update_task(conn, tid, "2", by="bob", status="completed")
        finished = teams.update_task(conn, tid, "1", by="alice", status="completed")
        assert finished.status_change == ("pending", "completed")
        assert teams.get_task(conn, tid, "2").blocked_by == ()  # type: ignore[union-attr]
        assert teams.update_task(conn, tid, "2", by="bob", owner="bob").task.owner == "bob"
        # the lead may reassign
        assert teams.update_task(conn, tid, "2", by=LEAD, owner="alice").task.owner == "alice"
        with pytest.raises(TeamRefused, match="no team member named 'zed'"):
            teams.update_task(conn, tid, "3", by=LEAD, owner="zed")


def test_a_dependency_cycle_is_refused_and_nothing_changes(store: Store) -> None:
    tid = _team(store)
    with store.write() as conn:
        for i in range(3):
            teams.create_task(conn, tid, f"t{i}", "d")
        teams.update_task(conn, tid, "2", by=LEAD, add_blocked_by=["1"])
        teams.update_task(conn, tid, "3", by=LEAD, add_blocked_by=["2"])
    with pytest.raises(TeamRefused, match="cycle"), store.write() as conn:
        teams.update_task(conn, tid, "1", by=LEAD, subject="new", add_blocked_by=["3"])
    with pytest.raises(TeamRefused, match="cycle"), store.write() as conn:
        teams.update_task(conn, tid, "1", by=LEAD, add_blocked_by=["1"])
    with store.read() as conn:
        one = teams.get_task(conn, tid, "1")
        assert one is not None and one.subject == "t0" and one.blocked_by == ()
        assert one.blocks == ("2",)
        assert teams.get_task(conn, tid, "3").blocked_by == ("2",)  # type: ignore[union-attr]


def test_metadata_merges_and_null_deletes_and_deleted_tasks_vanish(store: Store) -> None:
    tid = _team(store)
    with store.write() as conn:
        teams.create_task(conn, tid, "s", "d", metadata={"a": 1, "b": 2})
        change = teams.update_task(conn, tid, "1", by=LEAD, metadata={"a": None, "c": 3})
        assert change.task.metadata == {"b": 2, "c": 3}
        teams.update_task(conn, tid, "1", by=LEAD, status="deleted")
        assert teams.get_task(conn, tid, "1") is None
        with pytest.raises(TeamRefused, match="no task 1"):
            teams.update_task(conn, tid, "1", by=LEAD, subject="x")


_CLAIMER = """
import pathlib, sys
from covey.store import Store
from covey.store import teams
path, team, name, gate = sys.argv[1:]
store = Store.open(pathlib.Path(path))
while not pathlib.Path(gate).exists():
    pass
won = []
for task in range(1, 41):
    try:
        with store.write() as conn:
            teams.update_task(conn, team, str(task), by=name, owner=name)
        won.append(task)
    except teams.TeamRefused:
        pass
print(" ".join(map(str, won)))
store.close()
"""


def test_many_processes_claiming_the_same_tasks_one_winner_each(
    store: Store, tmp_path: Path
) -> None:
    names = [f"c{i}" for i in range(6)]
    tid = _team(store, *names)
    with store.write() as conn:
        for i in range(40):
            teams.create_task(conn, tid, f"t{i}", "d")
    gate = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, str(store.path), tid, name, str(gate)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    gate.touch()
    won = {
        name: p.communicate(timeout=120)[0].split() for name, p in zip(names, procs, strict=True)
    }
    assert all(p.returncode == 0 for p in procs)
    claims = [int(t) for ts in won.values() for t in ts]
    assert sorted(claims) == list(range(1, 41))  # every task claimed, none twice
    with store.read() as conn:
        owners = {t.id: t.owner for t in teams.list_tasks(conn, tid)}
    assert all(str(t) in map(str, won[o]) for t, o in owners.items() if o)  # type: ignore[index]


def test_threads_racing_for_one_task_exactly_one_wins(store: Store) -> None:
    names = [f"c{i}" for i in range(8)]
    tid = _team(store, *names)
    with store.write() as conn:
        teams.create_task(conn, tid, "only", "d")
    barrier, results = threading.Barrier(len(names)), {}

    def claim(name: str) -> None:
        barrier.wait()
        try:
            with store.write() as conn:
                teams.update_task(conn, tid, "1", by=name, status="in_progress")
            results[name] = "won"
        except TeamRefused as e:
            results[name] = str(e)

    threads = [threading.Thread(target=claim, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, r in results.items() if r == "won"]
    assert len(winners) == 1
    assert all(f"owned by {winners[0]}" in r for n, r in results.items() if n != winners[0])


def test_mailbox_order_broadcast_unknown_recipient_and_exactly_once(store: Store) -> None:
    tid = _team(store, "alice", "bob")
    with store.write() as conn:
        insert_session(
            conn, SessionRow(id="sid-bob", kind="teammate", cwd="/r", model="m", state="idle")
        )
        epoch = acquire_lease(conn, "sid-bob", "host", 60, now=0)
        teams.send_message(conn, tid, "alice", "bob", "one", summary="first")
        teams.send_message(conn, tid, LEAD, "bob", "two")
        everyone = teams.send_message(conn, tid, "alice", "*", "three")
        assert [m.recipient for m in everyone] == [LEAD, "bob"]
        with pytest.raises(TeamRefused, match=r"no team member named 'carol'.*team-lead, bob, \*"):
            teams.send_message(conn, tid, "alice", "carol", "x")
    with store.write() as conn:
        mail = teams.undelivered(conn, tid, "bob")
        assert [(m.sender, m.body, m.summary) for m in mail] == [
            ("alice", "one", "first"),
            (LEAD, "two", None),
            ("alice", "three", None),
        ]
        seq = append_entry(conn, "sid-bob", epoch, "message", {"text": "carried"})
        assert teams.mark_delivered(conn, [m.id for m in mail], seq=seq) == 3
        assert teams.mark_delivered(conn, [m.id for m in mail], seq=seq) == 0
    with store.read() as conn:
        assert teams.undelivered(conn, tid, "bob") == []
        assert teams.undelivered_count(conn, tid) == 1  # the broadcast copy to the lead
        assert {m.delivered_seq for m in teams.mailbox(conn, tid) if m.recipient == "bob"} == {seq}


def test_delivery_rolled_back_with_its_transcript_entry(store: Store) -> None:
    tid = _team(store, "bob")
    with store.write() as conn:
        teams.send_message(conn, tid, LEAD, "bob", "hello")
    with pytest.raises(RuntimeError), store.write() as conn:
        mail = teams.undelivered(conn, tid, "bob")
        teams.mark_delivered(conn, [m.id for m in mail], seq=1)
        raise RuntimeError("crash before the entry committed")
    with store.read() as conn:
        assert [m.body for m in teams.undelivered(conn, tid, "bob")] == ["hello"]
