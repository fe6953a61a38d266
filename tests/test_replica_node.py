"""The node's side of a replicated session: a node killed (kill -9) while a tool runs leaves
the call applied and its result not, so the session resumed from the user's store reports it
interrupted and never runs it again; a `covey stop` written in the user's store reaches the
node and its outcome comes back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from covey.executors.replica import SnapshotRecord
from covey.sessions.resume import INTERRUPTED
from covey.store import Store
from covey.store.commands import enqueue_command, get_command
from covey.store.events import read_events
from covey.store.sessions import acquire_lease
from covey.store.transcript import read_entries
from replicatools import (
    new_session,
    pumping,
    run_on_node,
    seed,
    stop_when_asked,
    view,
    write_script,
)

SID = "replica1"
TOOLS = Path(__file__).with_name("replicatools.py")


def _sleeper(marker: str) -> dict[str, Any]:
    command = f"echo ran >> {marker}; sleep 30"
    return {"tool_calls": [{"name": "Bash", "input": {"command": command}}]}


def _wait_for(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _tool_results(store: Store) -> list[dict[str, Any]]:
    with store.read() as conn:
        entries = read_entries(conn, SID)
    return [
        block
        for e in entries
        if e.kind == "message" and e.data["role"] == "user"
        for block in e.data["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]


def test_a_node_killed_mid_tool_resumes_with_the_call_interrupted_not_rerun(
    git_repo: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "runs.txt"
    turns = [_sleeper(str(marker)), {"text": "resumed"}]
    model = write_script(tmp_path / "script.json", turns)
    received: list[SnapshotRecord] = []
    with Store.open(tmp_path / "user.db") as user:
        epoch = new_session(user, git_repo, model, SID)
        first = tmp_path / "node1.db"
        with Store.open(first) as node:
            host_id = seed(user, node, SID, epoch)
        # a slow supervisor: the tool must wait for the call to be applied before it runs
        proc = subprocess.Popen(
            [sys.executable, str(TOOLS), str(first), SID, str(epoch), host_id, "go"],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            pump = pumping(user, first, SID, epoch, received.append, every_s=0.5, last_round=False)
            with pump as errors:
                _wait_for("the tool to start", marker.exists)
            os.killpg(proc.pid, signal.SIGKILL)  # the node is lost, its store with it
            proc.wait()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        assert errors == [] and received == []
        calls = [k for _, k, _ in view(user, SID)["transcript"]]
        assert calls == ["message", "message"]  # the prompt and the call, applied before it ran

        with user.write() as conn:  # the session moves to another node: a new epoch
            second_epoch = acquire_lease(conn, SID, "supervisor-2", 30.0, 0.0, force=True)
        assert second_epoch == epoch + 1
        second = tmp_path / "node2.db"
        with Store.open(second) as node:
            host_id = seed(user, node, SID, second_epoch)
            with pumping(user, second, SID, second_epoch, received.append) as errors:
                asyncio.run(run_on_node(node, SID, second_epoch, host_id, "continue"))
        assert errors == []
        (result,) = _tool_results(user)
        assert result["is_error"] and result["content"] == INTERRUPTED
        assert view(user, SID)["state"][:2] == ("completed", "end_turn")
        assert marker.read_text() == "ran\n"  # ran once, on the lost node only


def test_a_stop_written_in_the_users_store_stops_the_session_on_the_node(
    git_repo: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "runs.txt"
    model = write_script(tmp_path / "script.json", [_sleeper(str(marker)), {"text": "never"}])
    node_path = tmp_path / "node.db"
    with Store.open(tmp_path / "user.db") as user, Store.open(node_path) as node:
        epoch = new_session(user, git_repo, model, SID)
        host_id = seed(user, node, SID, epoch)

        def tool_started() -> bool:
            with user.read() as conn:
                return any(e.type == "tool_started" for e in read_events(conn, session_id=SID))

        async def stop_mid_tool() -> None:
            while not tool_started():
                await asyncio.sleep(0.05)
            with user.write() as conn:
                stop_ids.append(enqueue_command(conn, SID, "stop"))

        def on_started(host: Any, task: asyncio.Task[Any]) -> None:
            helpers.append(asyncio.ensure_future(stop_when_asked(node, SID, host, task)))
            helpers.append(asyncio.ensure_future(stop_mid_tool()))

        async def main() -> None:
            await run_on_node(node, SID, epoch, host_id, "go", on_started=on_started)
            await asyncio.gather(*helpers)

        stop_ids: list[int] = []
        helpers: list[asyncio.Future[Any]] = []
        with pumping(user, node_path, SID, epoch, lambda _s: None) as errors:
            asyncio.run(asyncio.wait_for(main(), 60))
        assert errors == []
        seen = view(user, SID)
        with user.read() as conn:
            command = get_command(conn, stop_ids[0])
        assert seen["state"][:2] == ("stopped", "stopped by user")
        assert command is not None and command.status == "done"
        assert command.result == {"stopped": True}
        assert _tool_results(user) == []  # the cancelled batch's result never left the node


def test_a_session_pauses_while_the_supervisor_is_away_and_drops_nothing(
    git_repo: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran.txt"
    bash = {"name": "Bash", "input": {"command": f"echo ran >> {marker}"}}
    model = write_script(tmp_path / "script.json", [{"tool_calls": [bash]}, {"text": "done"}])
    node_path = tmp_path / "node.db"
    with Store.open(tmp_path / "user.db") as user, Store.open(node_path) as node:
        epoch = new_session(user, git_repo, model, SID)
        host_id = seed(user, node, SID, epoch)

        async def main() -> None:
            running = asyncio.ensure_future(run_on_node(node, SID, epoch, host_id, "go"))
            await asyncio.sleep(1.5)  # no supervisor: the tool batch waits, nothing is lost
            assert not running.done() and not marker.exists()
            assert view(user, SID)["transcript"] == []
            with pumping(user, node_path, SID, epoch, lambda _s: None) as errors:
                await asyncio.wait_for(running, 60)
            assert errors == []

        asyncio.run(main())
        assert view(user, SID)["transcript"] == view(node, SID)["transcript"]
        assert len(view(user, SID)["transcript"]) == 5
        assert view(user, SID)["state"][:2] == ("completed", "end_turn")
    assert marker.read_text() == "ran\n"
