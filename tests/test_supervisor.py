"""Background sessions and the supervisor daemon, end to end: real processes, a real store."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import time
from pathlib import Path

from bgtools import (
    DEADLINE_S,
    agents,
    background,
    daemon_status,
    git_out,
    pid_alive,
    supervisor,
    user_texts,
    wait_for_state,
    wait_for_summary,
    write_script,
)
from clitools import covey

__all__ = ["supervisor"]  # the fixture, used by name


def test_bg_work_lands_on_its_branch_not_in_the_main_checkout(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    model = write_script(
        tmp_path / "s.yaml",
        [
            {
                "tool_calls": [
                    {"name": "Write", "input": {"file_path": "hello.txt", "content": "hi\n"}}
                ]
            },
            {"text": "Wrote hello.txt."},
        ],
    )
    sid = background(repo, "write hello", "--model", model, "--name", "greeter")
    row = wait_for_state(repo, sid, ("completed", "failed", "stopped"))
    assert row["state"] == "completed", row
    assert row["name"] == "greeter"
    assert row["branch"] == f"worktree-bg-{sid}"
    assert row["worktree"] and Path(row["worktree"]).is_dir()
    assert row["branch"] in row["summary"] and "1 file(s) changed" in row["summary"]
    assert row["waiting_for"] is None and row["cost_usd"] >= 0
    assert not (repo / "hello.txt").exists()
    assert git_out(repo, "show", f"{row['branch']}:hello.txt") == "hi\n"
    assert git_out(Path(row["worktree"]), "status", "--porcelain") == ""
    listed_all = json.loads(covey("agents", "--json", "--all", cwd=repo).out)
    assert any(r["id"] == sid for r in listed_all)


def test_bad_input_is_refused_before_anything_is_queued(supervisor: Path) -> None:
    repo = supervisor
    both = covey("--bg", "-p", "hi", cwd=repo)
    assert both.code == 2 and "--bg or -p" in both.err
    bad = covey("--bg", "hi", "--model", "nosuchprovider:x", cwd=repo)
    assert bad.code == 2, bad.err
    assert agents(repo) == []


def test_a_second_ensure_does_not_start_a_second_daemon(supervisor: Path) -> None:
    repo = supervisor
    first = covey("daemon", "start", cwd=repo)
    second = covey("daemon", "start", cwd=repo)
    assert first.code == 0 and second.code == 0, first.err + second.err
    assert first.out == second.out
    status = daemon_status(repo)
    assert status["running"] is True and str(status["pid"]) in first.out
    # a stale pid file (dead pid) does not stop a new supervisor from starting
    pid = status["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + DEADLINE_S
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert daemon_status(repo)["running"] is False
    third = covey("daemon", "start", cwd=repo)
    assert third.code == 0, third.err
    assert daemon_status(repo)["pid"] not in (None, pid)


def test_a_session_in_flight_when_the_daemon_dies_is_resumed_without_rerunning_the_call(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    runs = tmp_path / "runs.txt"
    shell_pid = tmp_path / "shell.pid"
    slow = f"echo $$ > {shell_pid}; echo started >> {runs}; sleep 60; echo finished >> {runs}"
    model = write_script(
        tmp_path / "s.yaml",
        [
            {"tool_calls": [{"name": "Bash", "input": {"command": slow}}]},
            {
                "tool_calls": [
                    {"name": "Write", "input": {"file_path": "after.txt", "content": "ok\n"}}
                ]
            },
            {"text": "The command was interrupted; I did not assume it finished."},
        ],
    )
    sid = background(repo, "run it", "--model", model, "--permission-mode", "bypassPermissions")
    deadline = time.monotonic() + DEADLINE_S
    while not (runs.exists() and shell_pid.exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runs.exists(), "the slow Bash call never started"
    old = daemon_status(repo)
    assert sid in old["sessions"]
    os.kill(old["pid"], signal.SIGKILL)
    while pid_alive(old["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, ValueError):  # the orphaned command
        os.killpg(int(shell_pid.read_text().strip()), signal.SIGKILL)
    row = wait_for_state(repo, sid, ("completed", "failed", "stopped"))  # ensures a new one
    assert row["state"] == "completed", row
    assert daemon_status(repo)["pid"] != old["pid"]
    assert runs.read_text() == "started\n", "the interrupted call ran again"
    logs = covey("logs", sid, cwd=repo).out
    assert "✗ Interrupted" in logs
    assert git_out(repo, "show", f"{row['branch']}:after.txt") == "ok\n"


def test_stop_stops_a_slow_session(supervisor: Path, tmp_path: Path) -> None:
    repo = supervisor
    model = write_script(tmp_path / "s.yaml", [{"text": "finally", "delay_s": 120}])
    sid = background(repo, "take your time", "--model", model)
    wait_for_state(repo, sid, ("working",))
    stop = covey("stop", sid, cwd=repo)
    assert stop.code == 0, stop.err
    assert stop.out.strip() == f"stop requested · {sid}"
    row = wait_for_state(repo, sid, ("stopped", "completed", "failed"))
    assert row["state"] == "stopped" and row["reason"] == "stopped by user"
    again = covey("stop", sid, cwd=repo)
    assert again.out.strip() == f"already stopped · {sid}"


def test_daemon_stop_interrupts_its_sessions_and_the_next_daemon_resumes_them(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    marker = tmp_path / "go"
    model = write_script(
        tmp_path / "s.yaml",
        [
            {"tool_calls": [{"name": "Bash", "input": {"command": f"touch {marker}; sleep 60"}}]},
            {"text": "Done after the restart."},
        ],
    )
    sid = background(repo, "slow", "--model", model, "--permission-mode", "bypassPermissions")
    deadline = time.monotonic() + DEADLINE_S
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()
    pid = daemon_status(repo)["pid"]
    stopped = covey("daemon", "stop", cwd=repo)
    assert stopped.code == 0 and f"pid {pid}" in stopped.out, stopped.err
    assert not pid_alive(pid)
    assert not (Path(os.environ["COVEY_HOME"]) / "supervisor.pid").exists()
    db = sqlite3.connect(os.environ["COVEY_HOME"] + "/covey.db")
    state = db.execute("select state, reason from sessions where id = ?", (sid,)).fetchone()
    db.close()
    assert state == ("interrupted", "supervisor stopped")
    row = wait_for_state(repo, sid, ("completed", "failed", "stopped"))  # `agents` restarts it
    assert row["state"] == "completed", row
    assert row["summary"].startswith("Done after the restart.")


def test_stop_without_a_live_host_stops_at_once_and_is_not_resumed(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    model = write_script(tmp_path / "s.yaml", [{"text": "never", "delay_s": 120}])
    sid = background(repo, "slow", "--model", model)
    wait_for_state(repo, sid, ("working",))
    pid = daemon_status(repo)["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + DEADLINE_S
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop = covey("stop", sid, cwd=repo)  # `stop` does not start a supervisor
    assert stop.code == 0, stop.err
    assert stop.out.strip() == f"stopped · {sid}"
    row = next(r for r in agents(repo) if r["id"] == sid)  # a new supervisor runs now
    assert daemon_status(repo)["running"] is True
    assert row["state"] == "stopped" and row["reason"] == "stopped by user"


def test_bg_sessions_run_session_start_hooks_startup_then_resume(
    supervisor: Path, tmp_path: Path
) -> None:
    """The supervisor runs SessionStart as `covey -p` does: `startup` for a new session,
    `resume` when a reply continues it, and what the hook prints reaches the agent."""
    repo = supervisor
    log = tmp_path / "sources.log"
    hook = tmp_path / "start.sh"
    hook.write_text(
        "#!/bin/sh\n"
        f"python3 -c 'import json,sys; print(json.load(sys.stdin)[\"source\"])' >> {log}\n"
        "echo 'House rule: tabs, not spaces.'\n"
    )
    hook.chmod(0o755)
    settings = {"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": str(hook)}]}]}}
    (repo / ".covey").mkdir(exist_ok=True)
    (repo / ".covey" / "settings.json").write_text(json.dumps(settings))
    model = write_script(tmp_path / "s.yaml", [{"text": "Noted."}, {"text": "Still noted."}])
    sid = background(repo, "what are the rules?", "--model", model)
    assert wait_for_state(repo, sid, ("completed", "failed", "stopped"))["state"] == "completed"
    assert log.read_text() == "startup\n"
    assert covey("reply", sid, "and now?", cwd=repo).code == 0
    row = wait_for_summary(repo, sid, "Still noted.")
    assert row["state"] == "completed", row
    assert log.read_text() == "startup\nresume\n"
    prompts = [t for t in user_texts(sid) if "House rule: tabs, not spaces." in t]
    assert [p.split("\n")[0] for p in prompts] == ["what are the rules?", "and now?"]


def test_an_idle_supervisor_leaves_and_the_next_dispatch_starts_one(
    supervisor: Path, tmp_path: Path
) -> None:
    repo = supervisor
    home = Path(os.environ["COVEY_HOME"])
    (home / "settings.json").write_text(json.dumps({"background": {"idleExitMinutes": 0.05}}))
    assert covey("daemon", "start", cwd=repo).code == 0
    # read at once, not through another covey process: on a loaded machine one can take
    # longer to start than the supervisor's idle time
    first = int((home / "supervisor.pid").read_text().split()[0])
    deadline = time.monotonic() + DEADLINE_S
    while pid_alive(first) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(first), "the idle supervisor did not leave"
    assert daemon_status(repo)["running"] is False
    assert not (home / "supervisor.pid").exists()
    assert "nothing to host for 3 s: leaving" in (home / "logs" / "supervisor.log").read_text()
    model = write_script(tmp_path / "s.yaml", [{"text": "Done."}])
    sid = background(repo, "say done", "--model", model)  # starts a new one
    row = wait_for_state(repo, sid, ("completed", "failed", "stopped"))
    assert row["state"] == "completed", row


def test_a_broken_user_settings_file_keeps_the_supervisor_up(
    supervisor: Path, tmp_path: Path
) -> None:
    home = Path(os.environ["COVEY_HOME"])
    (home / "settings.json").write_text('{"background": {"idleExitMinutes": -1}}')
    assert covey("daemon", "start", cwd=supervisor).code == 0
    pid = daemon_status(supervisor)["pid"]
    time.sleep(1.0)  # well past what a tiny idleExitMinutes would allow
    assert pid is not None and pid_alive(pid)
    assert "not leaving when idle" in (home / "logs" / "supervisor.log").read_text()
