"""Background sessions that need their person: questions, permission prompts, replies,
credentials, restarts; and `covey rm` / `respawn`. Real daemon, real store, real git."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

from bgtools import (
    DEADLINE_S,
    agents,
    background,
    daemon_status,
    git_out,
    kill_supervisor,
    supervisor,
    transcript_entries,
    wait_for_state,
    wait_for_summary,
    write_script,
)
from clitools import covey
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer

__all__ = ["supervisor"]  # the fixture, used by name

FINISHED = ("completed", "failed", "stopped")


def ask(question: str, options: list[str] | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"name": "AskUserQuestion", "input": {"question": question}}
    if options:
        call["input"]["options"] = options
    return {"tool_calls": [call]}


def write(path: str, content: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "Write", "input": {"file_path": path, "content": content}}]}


def tool_results(sid: str) -> list[str]:
    texts: list[str] = []
    for entry in transcript_entries(sid):
        if "result" in entry:
            texts.append(str(entry["result"]["content"]))
        for block in entry.get("content", []) if isinstance(entry.get("content"), list) else []:
            if block.get("type") == "text":
                texts.append(block["text"])
            if block.get("type") == "tool_result":
                texts.append(str(block.get("content")))
    return texts


def test_a_question_waits_in_needs_input_and_a_reply_completes_it(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    model = write_script(
        tmp_path / "s.yaml",
        [ask("Which colour?", ["red", "blue"]), write("colour.txt", "blue\n"), {"text": "Done."}],
    )
    sid = background(repo, "paint it", "--model", model, "--name", "painter")
    row = wait_for_state(repo, sid, ("needs_input", *FINISHED))
    assert row["state"] == "needs_input", row
    assert row["waiting_for"] == "input needed"
    assert row["question"] == "Which colour?"
    replied = covey("reply", "painter", "blue please", cwd=repo)
    assert replied.code == 0, replied.err
    assert replied.out.strip() == f"replied · {sid}"
    row = wait_for_state(repo, sid, FINISHED)
    assert row["state"] == "completed", row
    assert row["waiting_for"] is None
    assert any("The user answered: blue please" in t for t in tool_results(sid))
    assert git_out(repo, "show", f"{row['branch']}:colour.txt") == "blue\n"


def test_a_permission_ask_waits_and_yes_runs_the_call(supervisor: Path, tmp_path: Path) -> None:
    repo = supervisor
    marker = tmp_path / "ran.txt"
    model = write_script(
        tmp_path / "s.yaml",
        [
            {"tool_calls": [{"name": "Bash", "input": {"command": f"echo ok > {marker}"}}]},
            {"text": "Ran it."},
        ],
    )
    sid = background(repo, "run", "--model", model, "--permission-mode", "default")
    row = wait_for_state(repo, sid, ("needs_input", *FINISHED))
    assert row["state"] == "needs_input" and row["waiting_for"] == "permission prompt", row
    assert "Bash(echo ok" in row["question"]
    assert not marker.exists()
    assert covey("reply", sid, "1", cwd=repo).code == 0  # a number picks an option: "yes"
    row = wait_for_state(repo, sid, FINISHED)
    assert row["state"] == "completed", row
    assert marker.read_text() == "ok\n"


def test_a_permission_denied_by_reply_is_not_run(supervisor: Path, tmp_path: Path) -> None:
    repo = supervisor
    marker = tmp_path / "ran.txt"
    model = write_script(
        tmp_path / "s.yaml",
        [
            {"tool_calls": [{"name": "Bash", "input": {"command": f"echo ok > {marker}"}}]},
            {"text": "Understood."},
        ],
    )
    sid = background(repo, "run", "--model", model, "--permission-mode", "default")
    wait_for_state(repo, sid, ("needs_input",))
    assert covey("reply", sid, "no, do not", cwd=repo).code == 0
    row = wait_for_state(repo, sid, FINISHED)
    assert row["state"] == "completed", row
    assert not marker.exists()
    assert any("denied" in t for t in tool_results(sid))


def test_the_question_survives_a_supervisor_kill_and_the_reply_continues_it(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    model = write_script(
        tmp_path / "s.yaml",
        [ask("Ship it?"), write("shipped.txt", "yes\n"), {"text": "Shipped."}],
    )
    sid = background(repo, "ship", "--model", model)
    wait_for_state(repo, sid, ("needs_input",))
    pid = kill_supervisor(repo)
    # the next supervisor (started by `agents`) leaves it waiting: the question is stored
    row = next(r for r in agents(repo) if r["id"] == sid)
    assert row["state"] == "needs_input" and row["question"] == "Ship it?", row
    assert daemon_status(repo)["pid"] not in (None, pid)
    assert covey("reply", sid, "go ahead", cwd=repo).code == 0
    row = wait_for_state(repo, sid, FINISHED)
    assert row["state"] == "completed", row
    texts = tool_results(sid)
    assert any("The user answered: go ahead" in t for t in texts), texts
    assert git_out(repo, "show", f"{row['branch']}:shipped.txt") == "yes\n"


def test_daemon_stop_keeps_a_waiting_session_in_needs_input(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    model = write_script(tmp_path / "s.yaml", [ask("Now?"), {"text": "Ok."}])
    sid = background(repo, "wait", "--model", model)
    wait_for_state(repo, sid, ("needs_input",))
    assert covey("daemon", "stop", cwd=repo).code == 0
    db = sqlite3.connect(os.environ["COVEY_HOME"] + "/covey.db")
    state = db.execute("select state from sessions where id = ?", (sid,)).fetchone()
    db.close()
    assert state == ("needs_input",)
    assert covey("reply", sid, "now", cwd=repo).code == 0
    assert wait_for_state(repo, sid, FINISHED)["state"] == "completed"


def test_stop_then_rm_keeps_uncommitted_work_in_a_snapshot_and_the_transcript(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    model = write_script(
        tmp_path / "s.yaml", [write("draft.txt", "half done\n"), ask("Continue?"), {"text": "."}]
    )
    sid = background(repo, "draft", "--model", model)
    row = wait_for_state(repo, sid, ("needs_input", *FINISHED))
    assert row["state"] == "needs_input", row
    worktree = Path(row["worktree"])
    assert (worktree / "draft.txt").read_text() == "half done\n"
    assert f"locked covey session {sid}" in git_out(repo, "worktree", "list", "--porcelain")
    refused = covey("worktree", "remove", f"bg-{sid}", cwd=repo)
    assert refused.code == 2 and "locked by covey session" in refused.err, refused
    assert covey("stop", sid, cwd=repo).code == 0
    assert wait_for_state(repo, sid, FINISHED)["state"] == "stopped"
    removed = covey("rm", sid, cwd=repo)
    assert removed.code == 0, removed.err
    snapshot = f"refs/covey/snapshots/bg-{sid}/1"
    assert snapshot in removed.out
    assert git_out(repo, "show", f"{snapshot}:draft.txt") == "half done\n"
    assert not worktree.exists()
    assert all(r["id"] != sid for r in agents(repo))
    logs = covey("logs", sid, cwd=repo)
    assert logs.code == 0 and "Continue?" in logs.out, logs.err


def test_rm_keeps_a_branch_with_unmerged_commits(supervisor: Path, tmp_path: Path) -> None:
    repo = supervisor
    model = write_script(tmp_path / "s.yaml", [write("new.txt", "x\n"), {"text": "Wrote."}])
    sid = background(repo, "write", "--model", model)
    row = wait_for_state(repo, sid, FINISHED)
    assert row["state"] == "completed", row
    removed = covey("rm", sid, cwd=repo)
    assert removed.code == 0, removed.err
    assert f"branch {row['branch']} kept" in removed.out
    assert git_out(repo, "show", f"{row['branch']}:new.txt") == "x\n"
    assert not Path(row["worktree"]).exists()


def test_reply_and_rm_refuse_bad_input_without_changes(supervisor: Path) -> None:
    repo = supervisor
    missing = covey("reply", "nosuchsession", "hi", cwd=repo)
    assert missing.code == 2 and "no session 'nosuchsession'" in missing.err
    for command in (("rm", "nosuch"), ("respawn", "nosuch"), ("stop", "nosuch")):
        run = covey(*command, cwd=repo)
        assert run.code == 2 and "no session" in run.err, run


def test_a_reply_to_a_completed_session_continues_it(supervisor: Path, tmp_path: Path) -> None:
    repo = supervisor
    model = write_script(
        tmp_path / "s.yaml",
        [{"text": "First part done."}, write("second.txt", "2\n"), {"text": "Second done."}],
    )
    sid = background(repo, "part one", "--model", model)
    row = wait_for_state(repo, sid, FINISHED)
    assert row["summary"].startswith("First part done."), row
    assert covey("reply", sid, "now do part two", cwd=repo).code == 0
    row = wait_for_summary(repo, sid, "Second done.")
    assert row["state"] == "completed" and row["summary"].startswith("Second done."), row
    assert git_out(repo, "show", f"{row['branch']}:second.txt") == "2\n"


def test_a_missing_key_waits_in_needs_input_until_credentials_exist(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    script = Script.model_validate({"turns": [write("k.txt", "k\n"), {"text": "Keyed."}]})
    with FakeServer(script) as server:
        started = covey("daemon", "start", cwd=repo)  # a supervisor without any key
        assert started.code == 0, started.err
        dispatcher = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": server.url}
        run = covey("--bg", "key", "--model", "anthropic:claude-test", cwd=repo, env=dispatcher)
        assert run.code == 0, run.err
        sid = run.out.split(" · ")[1]
        row = wait_for_state(repo, sid, ("needs_input", *FINISHED))
        assert row["state"] == "needs_input" and row["waiting_for"] == "credentials", row
        assert "ANTHROPIC_API_KEY" in row["question"]
        assert server.requests == []
        credentials = Path(os.environ["COVEY_HOME"]) / "credentials.json"
        credentials.write_text(json.dumps({"ANTHROPIC_API_KEY": "test-key"}))
        credentials.chmod(0o644)
        loose = covey("respawn", sid, cwd=repo)
        assert loose.code == 0, loose.err
        row = wait_for_state(repo, sid, ("needs_input", *FINISHED))
        assert "chmod 600" in (row["reason"] or ""), row
        credentials.chmod(0o600)
        assert covey("respawn", sid, cwd=repo).code == 0
        row = wait_for_state(repo, sid, FINISHED)
        assert row["state"] == "completed", row
        assert len(server.requests) == 2  # the endpoint recorded at dispatch was used
        url = server.url
    db = sqlite3.connect(os.environ["COVEY_HOME"] + "/covey.db")
    (meta,) = db.execute("select meta from sessions where id = ?", (sid,)).fetchone()
    db.close()
    assert "test-key" not in meta and json.loads(meta)["base_url"] == url


def test_auto_resume_off_leaves_it_interrupted_until_respawned(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    settings = repo / ".covey" / "settings.json"
    settings.parent.mkdir(exist_ok=True)
    settings.write_text(json.dumps({"background": {"autoResume": False}}))
    model = write_script(tmp_path / "s.yaml", [{"text": "Finished.", "delay_s": 3}])
    sid = background(repo, "slow", "--model", model)
    wait_for_state(repo, sid, ("working",))
    kill_supervisor(repo)
    assert covey("daemon", "start", cwd=repo).code == 0
    row = wait_for_state(repo, sid, ("interrupted", *FINISHED))
    assert row["state"] == "interrupted", row
    time.sleep(4)  # longer than the model's delay: nothing resumed it
    assert next(r for r in agents(repo) if r["id"] == sid)["state"] == "interrupted"
    respawned = covey("respawn", sid, cwd=repo)
    assert respawned.code == 0 and respawned.out.strip() == f"respawning · {sid}", respawned
    assert wait_for_state(repo, sid, FINISHED)["state"] == "completed"


def test_the_notification_hook_hears_needs_input_and_completed(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    heard = tmp_path / "heard.jsonl"
    settings = repo / ".covey" / "settings.json"
    settings.parent.mkdir(exist_ok=True)
    hook = {"type": "command", "command": f"cat >> {heard}; echo >> {heard}"}
    settings.write_text(json.dumps({"hooks": {"Notification": [{"hooks": [hook]}]}}))
    model = write_script(tmp_path / "s.yaml", [ask("Proceed?"), {"text": "Proceeded."}])
    sid = background(repo, "notify", "--model", model)
    wait_for_state(repo, sid, ("needs_input",))
    assert covey("reply", sid, "yes", cwd=repo).code == 0
    assert wait_for_state(repo, sid, FINISHED)["state"] == "completed"
    kinds = [
        json.loads(line)["notification_type"] for line in heard.read_text().split("\n") if line
    ]
    assert kinds == ["agent_needs_input", "agent_completed"]


def test_logs_follow_prints_steps_as_they_come_until_the_session_ends(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    model = write_script(
        tmp_path / "s.yaml",
        [
            {**write("one.txt", "1\n"), "delay_s": 0.5},
            {**write("two.txt", "2\n"), "delay_s": 0.5},
            {"text": "Both written.", "delay_s": 0.5},
        ],
    )
    sid = background(repo, "two files", "--model", model)
    followed = covey("logs", sid, "-f", cwd=repo)
    assert followed.code == 0, followed.err
    lines = followed.out.splitlines()
    assert lines[0].startswith(f"session {sid}")
    assert any("one.txt" in line for line in lines) and any("two.txt" in line for line in lines)
    assert any(line.startswith("● Both written.") for line in lines)
    assert lines[-1] == "── completed: end_turn ──"


def test_a_reply_sent_while_busy_does_not_answer_a_later_question(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    model = write_script(
        tmp_path / "s.yaml",
        [
            {**ask("Which file?"), "delay_s": 5},  # the early note lands first, even under load
            {"text": "Answered the question."},
            {"text": "Handled the early note."},
        ],
    )
    sid = background(repo, "busy", "--model", model)
    wait_for_state(repo, sid, ("working",))
    assert covey("reply", sid, "an early note", cwd=repo).code == 0  # during the slow turn
    row = wait_for_state(repo, sid, ("needs_input", *FINISHED))
    assert row["state"] == "needs_input" and row["question"] == "Which file?", row
    assert covey("reply", sid, "main.py", cwd=repo).code == 0
    row = wait_for_summary(repo, sid, "Handled the early note.")
    assert row["state"] == "completed" and row["summary"].startswith("Handled the early"), row
    texts = tool_results(sid)
    assert any("The user answered: main.py" in t for t in texts), texts
    assert any(t == "an early note" for t in texts), texts


def test_a_reply_claimed_by_a_host_that_died_is_delivered_by_the_next(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    model = write_script(tmp_path / "s.yaml", [ask("Go on?"), {"text": "Went on."}])
    sid = background(repo, "ask", "--model", model)
    wait_for_state(repo, sid, ("needs_input",))
    pid = kill_supervisor(repo)
    # the reply as a dead host would leave it: claimed, never finished
    db = sqlite3.connect(os.environ["COVEY_HOME"] + "/covey.db")
    with db:
        db.execute(
            "insert into commands (session_id, ts, type, data, status, claimed_by)"
            " values (?, ?, 'reply', '{\"text\": \"yes\"}', 'claimed', ?)",
            (sid, time.time(), f"{socket.gethostname()}:{pid}:dead00"),
        )
    db.close()
    row = wait_for_state(repo, sid, FINISHED)  # `agents` starts a supervisor
    assert row["state"] == "completed", row
    assert any("The user answered: yes" in t for t in tool_results(sid))


def pool_ready(repo: Path) -> int:
    run = covey("worktree", "list", "--json", cwd=repo)
    assert run.code == 0, run.err
    return int(run.json()["pool"]["ready"])


def wait_pool_ready(repo: Path, count: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while pool_ready(repo) != count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pool_ready(repo) == count


def test_the_supervisor_refills_the_warm_pool_after_a_worktree_is_taken(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    (repo / ".covey").mkdir(exist_ok=True)
    (repo / ".covey" / "settings.json").write_text(json.dumps({"worktree": {"pool": 1}}))
    model = write_script(tmp_path / "s.yaml", [{"text": "ok"}])
    first = covey("-p", "hi", "-w", "first", "--model", model, cwd=repo)
    assert first.code == 0, first.err
    wait_pool_ready(repo, 1)  # filled in the background, by the supervisor
    pooled = {p.name for p in (repo / ".covey" / "worktrees" / ".pool").iterdir()}
    second = covey("-p", "hi", "-w", "second", "--model", model, cwd=repo)
    assert second.code == 0, second.err
    assert (repo / ".covey" / "worktrees" / "second").is_dir()
    wait_pool_ready(repo, 1)  # topped up again
    now = {p.name for p in (repo / ".covey" / "worktrees" / ".pool").iterdir()}
    assert not pooled & now, "the second worktree was not taken from the pool"


def test_a_stale_stop_does_not_cancel_a_later_run(supervisor: Path, tmp_path: Path) -> None:
    repo = supervisor
    model = write_script(
        tmp_path / "s.yaml", [{"text": "First."}, {"text": "Second.", "delay_s": 1}]
    )
    sid = background(repo, "one", "--model", model)
    assert wait_for_state(repo, sid, FINISHED)["state"] == "completed"
    db = sqlite3.connect(os.environ["COVEY_HOME"] + "/covey.db")
    with db:  # a stop that lost the race with the session's end
        db.execute(
            "insert into commands (session_id, ts, type) values (?, ?, 'stop')", (sid, time.time())
        )
    db.close()
    deadline = time.monotonic() + DEADLINE_S
    status = ""
    while time.monotonic() < deadline:
        db = sqlite3.connect(os.environ["COVEY_HOME"] + "/covey.db")
        (status,) = db.execute("select status from commands where type = 'stop'").fetchone()
        db.close()
        if status == "done":
            break
        time.sleep(0.1)
    assert status == "done"
    assert covey("reply", sid, "go on", cwd=repo).code == 0
    row = wait_for_summary(repo, sid, "Second.")
    assert row["state"] == "completed" and row["summary"].startswith("Second."), row


def test_a_permission_allowed_after_a_restart_is_granted_once(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    marker = tmp_path / "ran.txt"
    call = {"tool_calls": [{"name": "Bash", "input": {"command": f"echo ok >> {marker}"}}]}
    model = write_script(tmp_path / "s.yaml", [call, call, call, {"text": "Ran twice."}])
    sid = background(repo, "run", "--model", model, "--permission-mode", "default")
    wait_for_state(repo, sid, ("needs_input",))
    kill_supervisor(repo)
    assert covey("reply", sid, "yes", cwd=repo).code == 0  # the next supervisor continues it
    # the repeated call runs on the grant (until then the session still shows the old
    # question); the third identical call asks again
    deadline = time.monotonic() + DEADLINE_S
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    row = wait_for_state(repo, sid, ("needs_input", *FINISHED))
    assert row["state"] == "needs_input" and row["waiting_for"] == "permission prompt", row
    assert marker.read_text() == "ok\n"
    assert covey("reply", sid, "y", cwd=repo).code == 0
    assert wait_for_state(repo, sid, FINISHED)["state"] == "completed"
    assert marker.read_text() == "ok\nok\n"
    texts = tool_results(sid)
    assert any("The user allowed Bash(echo ok" in t for t in texts), texts
