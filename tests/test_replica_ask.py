"""A session on a node asks (a permission prompt, AskUserQuestion, a subagent's prompt): the
question shows in the user's store, `covey reply` there reaches the node and the session goes
on; the answer survives a supervisor that dies, and a node lost while the session waits
leaves it waiting at home. Without Ray: the node is a real `NodeSessions` in this process,
the supervisor the real `ray_pump.pump_session`, called through `InProcess` (what Ray's
remote calls do, minus the network)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from covey.executors.ray_node import NodeJob, NodeSessions
from covey.executors.ray_pump import pump_session
from covey.executors.replica import claim_forwarded, export_session
from covey.executors.replica_ask import (
    forwardable_commands,
    leave_waiting,
    store_reply,
)
from covey.git.bundles import pack_workspace
from covey.sessions.control import reply
from covey.store import Store
from covey.store.commands import CommandRow, enqueue_command, get_command, requeue_claimed
from covey.store.session_meta import Pending, SessionMeta
from covey.store.sessions import (
    SessionRow,
    acquire_lease,
    get_session,
    insert_session,
    release_lease,
)
from covey.store.transcript import read_entries
from covey.supervisor.asking import resume_prompt

SID = "askbg1"
SUPERVISOR = "user-machine:1:abcdef:supervisor"
BRANCH = f"worktree-bg-{SID}"


class InProcess:
    """A host actor's methods called here: `actor.collect.remote(sid, c)` is the call."""

    def __init__(self, node: NodeSessions) -> None:
        self.node = node

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.node, name)
        return type("Remote", (), {"remote": staticmethod(method)})


def in_loop(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """An async test run by `asyncio.run` (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), 90))

    return run


async def call(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


@dataclass
class Setup:
    user: Store
    repo: Path
    worktree: Path
    model: str
    tmp: Path


@pytest.fixture
def setup(git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("COVEY_HOME", str(tmp_path / "home"))  # NodeSessions sets its own
    subprocess.run(["git", "branch", BRANCH], cwd=git_repo, check=True)
    wt = tmp_path / "wt"
    subprocess.run(["git", "worktree", "add", "-q", str(wt), BRANCH], cwd=git_repo, check=True)
    with Store.open(tmp_path / "user.db") as user:
        yield Setup(user, git_repo, wt, "", tmp_path)


def script(s: Setup, turns: list[dict[str, Any]], **agents: Any) -> None:
    path = s.tmp / "script.yaml"
    body: dict[str, Any] = {"turns": turns}
    if agents:
        body["agents"] = {name: {"turns": t} for name, t in agents.items()}
    path.write_text(yaml.safe_dump(body))
    s.model = f"scripted:{path}"


def new_row(s: Setup, mode: str = "default") -> int:
    base = subprocess.run(
        ["git", "rev-parse", BRANCH], cwd=s.repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    meta = SessionMeta(repo=str(s.repo), worktree=str(s.worktree), branch=BRANCH, base=base)
    new = SessionRow.new(
        id=SID, kind="background", cwd=str(s.worktree), model=s.model, permission_mode=mode,
        state="working", meta=meta,
    )  # fmt: skip
    with s.user.write() as conn:
        insert_session(conn, new)
    return take(s)


def take(s: Setup) -> int:
    """A new epoch held by the supervisor (as `RayExecutor._take`)."""
    with s.user.write() as conn:
        release_lease(conn, SID, SUPERVISOR, row(s).epoch)
        epoch = acquire_lease(conn, SID, SUPERVISOR, 30.0, time.time(), force=True)
    assert epoch is not None
    return epoch


async def start(s: Setup, node_dir: Path, epoch: int, prompt: str) -> tuple[NodeSessions, Any]:
    """The session started on a node and its pump running; (the node, the pump's task)."""
    node = NodeSessions(node_dir)
    base = row(s).meta.base or ""
    job = NodeJob(export_session(s.user, SID), epoch, prompt, BRANCH)
    await node.start(job, await asyncio.to_thread(pack_workspace, s.repo, base))
    where = (s.repo, BRANCH, s.worktree)
    pump = pump_session(s.user, SID, epoch, InProcess(node), where, call, SUPERVISOR)
    return node, asyncio.ensure_future(pump)


def row(s: Setup) -> SessionRow:
    with s.user.read() as conn:
        got = get_session(conn, SID)
    assert got is not None
    return got


async def until(what: str, check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def waiting(s: Setup) -> Pending:
    await until("the question at home", lambda: row(s).state == "needs_input")
    pending = row(s).meta.pending
    assert pending is not None
    return pending


def command(s: Setup, command_id: int) -> CommandRow:
    with s.user.read() as conn:
        got = get_command(conn, command_id)
    assert got is not None
    return got


def results(s: Setup) -> list[str]:
    with s.user.read() as conn:
        entries = read_entries(conn, SID)
    return [
        str(block.get("content"))
        for e in entries
        if e.kind == "message" and e.data["role"] == "user"
        for block in e.data["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]


def bash(marker: Path) -> dict[str, Any]:
    return {"tool_calls": [{"name": "Bash", "input": {"command": f"echo ran >> {marker}"}}]}


@in_loop
async def test_a_permission_prompt_on_the_node_waits_at_home_and_yes_runs_the_call(
    setup: Setup,
) -> None:
    s, marker = setup, setup.tmp / "ran"
    script(s, [bash(marker), {"text": "Ran it."}])
    _, pump = await start(s, s.tmp / "node", new_row(s), "run it")
    pending = await waiting(s)
    assert pending.kind == "permission" and f"Bash(echo ran >> {marker}" in pending.text
    assert row(s).reason and row(s).reason.startswith("permission: Allow Bash")
    assert not marker.exists()
    _, cid = reply(s.user, SID, "1")  # a number picks an option: "yes"
    await asyncio.wait_for(pump, 30)
    assert row(s).state == "completed", row(s)
    assert row(s).meta.pending is None
    assert marker.read_text() == "ran\n"
    assert command(s, cid).status == "done" and command(s, cid).result == {"delivered": True}


@in_loop
async def test_always_runs_the_call_and_the_same_call_later_unasked_on_the_node(
    setup: Setup,
) -> None:
    s, marker = setup, setup.tmp / "ran"
    other = setup.tmp / "other"
    script(s, [bash(marker), bash(marker), bash(other), {"text": "Ran them."}])
    _, pump = await start(s, s.tmp / "node", new_row(s), "run it")
    first = await waiting(s)
    reply(s.user, SID, "always")
    await until("the next question", lambda: row(s).meta.pending not in (None, first))
    # the same call ran twice, asked once; a different call asks again
    assert marker.read_text() == "ran\nran\n"
    assert f"Bash(echo ran >> {other}" in (row(s).meta.pending or first).text
    (grant,) = row(s).meta.grants  # it came home with the session
    assert grant.always and grant.input == {"command": f"echo ran >> {marker}"}
    reply(s.user, SID, "yes")
    await asyncio.wait_for(pump, 30)
    assert row(s).state == "completed" and other.read_text() == "ran\n"


@in_loop
async def test_a_no_denies_the_call_and_the_session_goes_on(setup: Setup) -> None:
    s, marker = setup, setup.tmp / "ran"
    script(s, [bash(marker), {"text": "Understood."}])
    _, pump = await start(s, s.tmp / "node", new_row(s), "run it")
    await waiting(s)
    reply(s.user, SID, "no, do not")
    await asyncio.wait_for(pump, 30)
    assert row(s).state == "completed" and not marker.exists()
    assert any("denied" in r for r in results(s))


@in_loop
async def test_a_question_on_the_node_gets_the_reply_as_its_answer(setup: Setup) -> None:
    s = setup
    ask = {"name": "AskUserQuestion", "input": {"question": "Which colour?"}}
    ask["input"]["options"] = ["red", "blue"]
    script(s, [{"tool_calls": [ask]}, {"text": "Painted."}])
    _, pump = await start(s, s.tmp / "node", new_row(s), "paint it")
    pending = await waiting(s)
    assert (pending.kind, pending.text, pending.options) == (
        "question",
        "Which colour?",
        ["red", "blue"],
    )
    reply(s.user, SID, "2")
    await asyncio.wait_for(pump, 30)
    assert row(s).state == "completed"
    assert "The user answered: blue" in results(s)


@in_loop
async def test_a_subagent_s_permission_prompt_is_its_root_s_question(setup: Setup) -> None:
    s, marker = setup, setup.tmp / "ran"
    spawn = {"name": "Agent", "input": {"description": "run", "prompt": "run the command"}}
    script(
        s,
        [{"tool_calls": [spawn]}, {"text": "The helper ran it."}],
        **{"general-purpose": [bash(marker), {"text": "ran"}]},
    )
    _, pump = await start(s, s.tmp / "node", new_row(s), "delegate")
    pending = await waiting(s)
    assert pending.kind == "permission" and "Bash(echo ran" in pending.text
    reply(s.user, SID, "yes")
    await asyncio.wait_for(pump, 30)
    assert row(s).state == "completed" and marker.read_text() == "ran\n"


@in_loop
async def test_a_reply_sent_while_it_works_is_its_next_prompt_not_the_answer(
    setup: Setup,
) -> None:
    s = setup
    script(s, [])
    epoch = new_row(s)
    with s.user.write() as conn:
        early = enqueue_command(conn, SID, "reply", {"text": "also do X"})
    assert forwardable_commands(s.user, SID, 0) == []  # working: not an answer
    question = Pending(kind="question", text="Ship it?")
    from covey.sessions.pending import set_waiting

    set_waiting(s.user, SID, epoch, question)
    assert forwardable_commands(s.user, SID, 0) == []  # sent before the question
    with s.user.write() as conn:
        answer = enqueue_command(conn, SID, "reply", {"text": "yes"})
        later = enqueue_command(conn, SID, "reply", {"text": "and then"})
    assert [c.id for c in forwardable_commands(s.user, SID, 0)] == [answer]
    with s.user.write() as conn:  # forwarded (claimed): the next one is not a second answer
        conn.execute("UPDATE commands SET status = 'claimed' WHERE id = ?", (answer,))
    assert forwardable_commands(s.user, SID, 0) == []
    assert {command(s, c).status for c in (early, later)} == {"pending"}


def node_command(node: NodeSessions, command_id: int) -> CommandRow | None:
    with node.store.read() as conn:
        return get_command(conn, command_id)


async def forward_as(s: Setup, node: NodeSessions, claimer: str) -> list[CommandRow]:
    """What a supervisor's pump does with a reply that answers the question (`_forward`)."""
    sent = forwardable_commands(s.user, SID, 0)
    node.forward(sent)
    claim_forwarded(s.user, sent, claimer)
    return sent


async def stop_pump(pump: Any) -> None:
    pump.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pump


@in_loop
async def test_a_reply_a_dead_supervisor_forwarded_is_forwarded_again_and_used_once(
    setup: Setup,
) -> None:
    """The node took the reply, but the supervisor died before applying what came back:
    the next supervisor requeues it (its claimer is dead), forwards it again (the node has
    that id already), and applies the answer: one run of the call, the reply `done`."""
    s, marker = setup, setup.tmp / "ran"
    script(s, [bash(marker), {"text": "Ran it."}])
    node, pump = await start(s, s.tmp / "node", new_row(s), "run it")
    await waiting(s)
    await stop_pump(pump)  # kill -9 of the supervisor
    _, cid = reply(s.user, SID, "yes")
    assert [c.id for c in await forward_as(s, node, "dead:1:x:supervisor")] == [cid]
    await until(
        "the node took it", lambda: getattr(node_command(node, cid), "status", "") == "done"
    )
    assert not marker.exists()  # the call waits until the answer is home
    with s.user.write() as conn:
        assert requeue_claimed(conn, "dead:1:x:supervisor") == 1
    where = (s.repo, BRANCH, s.worktree)
    epoch = row(s).epoch
    await pump_session(s.user, SID, epoch, InProcess(node), where, call, "next:2:y:supervisor")
    assert row(s).state == "completed", row(s)
    assert marker.read_text() == "ran\n"
    assert command(s, cid).status == "done" and command(s, cid).result == {"delivered": True}


@in_loop
async def test_a_node_lost_while_waiting_leaves_the_question_home_and_the_reply_goes_on(
    setup: Setup,
) -> None:
    """The reply reached the node, the node was lost before its answer came home: the
    session stays waiting at home (the executor's `leave_waiting`), the reply pending
    again; it continues the session elsewhere as a reply to a stored question does (the
    allowed call granted once, so it runs there, unasked, once)."""
    s, marker = setup, setup.tmp / "ran"
    script(s, [bash(marker), bash(marker), {"text": "Ran it elsewhere."}])
    node, pump = await start(s, s.tmp / "node1", new_row(s), "run it")
    pending = await waiting(s)
    await stop_pump(pump)
    _, cid = reply(s.user, SID, "yes")
    await forward_as(s, node, SUPERVISOR)
    await until(
        "the node took it", lambda: getattr(node_command(node, cid), "status", "") == "done"
    )
    await node.drop(SID)  # the node is lost
    assert leave_waiting(s.user, SID, lambda: take(s))
    assert (row(s).state, row(s).meta.pending, row(s).meta.node) == ("needs_input", pending, None)
    assert command(s, cid).status == "pending"
    # what the supervisor does with that reply (`_continue`): continue it with the answer
    prompt, grants = resume_prompt(pending, "yes")
    epoch = take(s)
    store_reply(s.user, SID, epoch, grants)
    _, pump2 = await start(s, s.tmp / "node2", epoch, prompt)
    await asyncio.wait_for(pump2, 30)
    assert row(s).state == "completed", row(s)
    assert marker.read_text() == "ran\n"
    assert row(s).meta.grants == ()  # used up


def test_always_after_a_restart_is_a_standing_grant() -> None:
    """A reply of "always" to a question stored while no host ran the session: the grant
    the next run gets stays (the same call later runs unasked too)."""
    pending = Pending.permission("Bash", {"command": "make"}, "ask")
    prompt, grants = resume_prompt(pending, "always")
    assert "allowed Bash(make)" in prompt
    assert [g.always for g in grants] == [True]
    assert [g.always for g in resume_prompt(pending, "yes")[1]] == [False]
