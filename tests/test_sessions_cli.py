"""Durable sessions end to end: resume, crash recovery, concurrency, compaction, corruption."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from clitools import covey

PY = sys.executable
SLOW = "echo started >> runs.txt; sleep 60; echo finished >> runs.txt"


def write_script(path: Path, turns: list[dict[str, Any]]) -> str:
    path.write_text(yaml.safe_dump({"turns": turns}))
    return f"scripted:{path}"


def test_resume_continues_the_same_conversation(git_repo: Path, tmp_path: Path) -> None:
    model = write_script(
        tmp_path / "s.yaml",
        [
            {"text": "I will remember 42.", "usage": {"input": 10, "output": 5}},
            {"text": "You said 42.", "usage": {"input": 20, "output": 5}},
        ],
    )
    first = covey(
        "-p",
        "remember 42",
        "--model",
        model,
        "--name",
        "memo",
        "--output-format",
        "json",
        cwd=git_repo,
    )
    assert first.code == 0, first.err
    sid = first.json()["session_id"]
    listed = covey("sessions", "--json", cwd=git_repo)
    assert listed.code == 0, listed.err
    row = next(r for r in json.loads(listed.out) if r["id"] == sid)
    assert row["name"] == "memo" and row["state"] == "completed"
    # resume by name, from another directory: the model sees the whole conversation
    second = covey(
        "-p", "--resume", "memo", "what did I say?", "--output-format", "stream-json", cwd=tmp_path
    )
    assert second.code == 0, second.err
    events = second.events()
    assert events[0]["session_id"] == sid
    assert events[-1]["result"] == "You said 42."
    logs = covey("logs", sid, cwd=tmp_path)
    assert logs.code == 0, logs.err
    assert "> remember 42" in logs.out and "● You said 42." in logs.out
    assert "> what did I say?" in logs.out


def test_a_killed_run_resumes_without_rerunning_the_interrupted_call(
    git_repo: Path, tmp_path: Path
) -> None:
    model = write_script(
        tmp_path / "s.yaml",
        [
            {
                "tool_calls": [
                    {
                        "name": "Bash",
                        "input": {"command": SLOW},
                    }
                ]
            },
            {"text": "The command was interrupted; I will not assume it finished."},
        ],
    )
    env = {**os.environ}
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "covey",
            "-p",
            "run it",
            "--model",
            model,
            "--output-format",
            "stream-json",
            "--permission-mode",
            "bypassPermissions",
        ],
        cwd=git_repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    runs = git_repo / "runs.txt"
    deadline = time.monotonic() + 60
    while not runs.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runs.exists(), "the slow Bash call never started"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    sid = json.loads(covey("sessions", "--json", cwd=git_repo).out)[0]
    assert sid["state"] == "interrupted"
    resumed = covey(
        "-p", "--resume", sid["id"], "go on", "--output-format", "stream-json", cwd=git_repo
    )
    assert resumed.code == 0, resumed.err
    assert runs.read_text() == "started\n", "the interrupted call ran again"
    logs = covey("logs", sid["id"], cwd=git_repo).out
    assert "✗ Interrupted" in logs
    assert resumed.events()[-1]["result"].startswith("The command was interrupted")
    _kill_leftovers(SLOW)


def _kill_leftovers(marker: str) -> None:
    """The Bash tool's own process group outlives the killed covey; end it."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(entry.name), signal.SIGKILL)


def test_a_pre_tool_use_hook_exiting_2_blocks_and_the_model_sees_why(
    git_repo: Path, tmp_path: Path
) -> None:
    hook = tmp_path / "guard.sh"
    hook.write_text("#!/bin/sh\necho 'no rm allowed here' >&2\nexit 2\n")
    hook.chmod(0o755)
    (git_repo / ".covey").mkdir()
    (git_repo / ".covey" / "settings.json").write_text(
        json.dumps(
            {
                "hooks": {
                    "PreToolUse": [
                        {"matcher": "Bash", "hooks": [{"type": "command", "command": str(hook)}]}
                    ]
                },
                "permissions": {"allow": ["Bash"]},
            }
        )
    )
    model = write_script(
        tmp_path / "s.yaml",
        [
            {"tool_calls": [{"name": "Bash", "input": {"command": "touch should-not-exist"}}]},
            {"text": "blocked"},
        ],
    )
    run = covey("-p", "go", "--model", model, "--output-format", "stream-json", cwd=git_repo)
    assert run.code == 0, run.err
    result = run.events()[2]["message"]["content"][0]
    assert result["is_error"] and "no rm allowed here" in result["content"]
    assert not (git_repo / "should-not-exist").exists()


def test_sixteen_concurrent_print_runs_share_one_store(git_repo: Path, tmp_path: Path) -> None:
    turns = [
        {"tool_calls": [{"name": "Read", "input": {"file_path": "README.md"}}]},
        {"tool_calls": [{"name": "Glob", "input": {"pattern": "*"}}]},
        {"text": "done"},
    ]
    model = write_script(tmp_path / "s.yaml", turns)
    procs = [
        subprocess.Popen(
            [PY, "-m", "covey", "-p", f"job {i}", "--model", model, "--output-format", "json"],
            cwd=git_repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(16)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 16, [o[1] for o in outs]
    ids = {json.loads(o[0])["session_id"] for o in outs}
    assert len(ids) == 16
    listed = json.loads(covey("sessions", "--json", cwd=git_repo).out)
    assert {r["id"] for r in listed} >= ids
    assert all(r["state"] == "completed" for r in listed if r["id"] in ids)


def test_a_tiny_auto_compact_window_compacts_and_the_run_completes(
    git_repo: Path, tmp_path: Path
) -> None:
    (git_repo / ".covey").mkdir()
    (git_repo / ".covey" / "settings.json").write_text(json.dumps({"autoCompactWindow": 2000}))
    turns: list[dict[str, Any]] = [
        {
            "text": f"step {i}",
            "tool_calls": [{"name": "Write", "input": {"file_path": f"f{i}.txt", "content": "x"}}],
            "usage": {"input": 800 + 400 * i, "output": 40},
        }
        for i in range(10)
    ]
    model = write_script(tmp_path / "s.yaml", [*turns, {"text": "all ten written"}])
    run = covey(
        "-p",
        "write ten files",
        "--model",
        model,
        "--permission-mode",
        "acceptEdits",
        "--output-format",
        "json",
        cwd=git_repo,
    )
    assert run.code == 0, run.err
    assert run.json()["result"] == "all ten written"
    assert sorted(p.name for p in git_repo.glob("f*.txt")) == sorted(f"f{i}.txt" for i in range(10))
    logs = covey("logs", run.json()["session_id"], cwd=git_repo).out
    assert "── compacted (auto) ──" in logs


def test_a_corrupt_store_is_exit_2_and_left_alone(git_repo: Path, covey_home: Path) -> None:
    db = covey_home / "covey.db"
    db.write_bytes(b"this is not a database" * 100)
    before = db.read_bytes()
    run = covey("-p", "hi", "--model", "scripted:x.yaml", cwd=git_repo)
    assert run.code == 2
    assert str(db) in run.err and len(run.err.strip().splitlines()) == 1
    assert db.read_bytes() == before
    listed = covey("sessions", cwd=git_repo)
    assert listed.code == 2 and str(db) in listed.err


def test_dash_w_works_in_its_own_worktree(git_repo: Path, tmp_path: Path) -> None:
    (git_repo / ".gitignore").write_text(".covey/worktrees/\n")
    model = write_script(
        tmp_path / "s.yaml",
        [
            {"tool_calls": [{"name": "Write", "input": {"file_path": "new.txt", "content": "x"}}]},
            {"text": "written"},
        ],
    )
    run = covey(
        "-w",
        "feat",
        "-p",
        "write it",
        "--model",
        model,
        "--permission-mode",
        "acceptEdits",
        "--output-format",
        "json",
        cwd=git_repo,
    )
    assert run.code == 0, run.err
    tree = git_repo / ".covey" / "worktrees" / "feat"
    assert (tree / "new.txt").read_text() == "x"
    assert not (git_repo / "new.txt").exists()
    branch = subprocess.run(
        ["git", "branch", "--show-current"], cwd=tree, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert branch == "worktree-feat"
    listed = covey("worktree", "list", "--json", cwd=git_repo)
    entry = next(w for w in json.loads(listed.out)["worktrees"] if w["name"] == "feat")
    assert entry["locked_by"] is None, "the lock is released when the run ends"
    bad = covey("-w", "../x", "-p", "hi", "--model", model, cwd=git_repo)
    assert bad.code == 2 and len(bad.err.strip().splitlines()) == 1


def test_a_notification_hook_hears_agent_completed(git_repo: Path, tmp_path: Path) -> None:
    heard = tmp_path / "heard.json"
    (git_repo / ".covey").mkdir()
    (git_repo / ".covey" / "settings.json").write_text(
        json.dumps(
            {
                "hooks": {
                    "Notification": [
                        {
                            "matcher": "agent_completed",
                            "hooks": [{"type": "command", "command": f"cat > {heard}"}],
                        }
                    ]
                }
            }
        )
    )
    model = write_script(tmp_path / "s.yaml", [{"text": "done"}])
    run = covey("-p", "hi", "--model", model, "--output-format", "json", cwd=git_repo)
    assert run.code == 0, run.err
    payload = json.loads(heard.read_text())
    assert payload["hook_event_name"] == "Notification"
    assert payload["notification_type"] == "agent_completed"
    assert payload["session_id"] == run.json()["session_id"]


def test_the_lazy_subcommand_table_names_every_command_of_every_module() -> None:
    import importlib

    from covey.cli.subcommands import MODULES

    for module, names in MODULES.items():
        commands = importlib.import_module(f"covey.cli.{module}").COMMANDS
        assert tuple(c.name for c in commands) == names, module


def test_stop_interrupts_a_foreground_session_running_in_a_terminal(
    git_repo: Path, tmp_path: Path
) -> None:
    model = write_script(tmp_path / "slow.yaml", [{"text": "too late", "delay_s": 60}])
    proc = subprocess.Popen(
        [PY, "-m", "covey", "-p", "wait", "--model", model],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        rows = _wait_working(git_repo)
        stop = covey("stop", rows[0]["id"], cwd=git_repo)
        assert stop.code == 0 and stop.out.strip() == f"stop requested · {rows[0]['id']}"
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        row = json.loads(covey("sessions", "--json", cwd=git_repo).out)[0]
        assert row["state"] == "stopped", row
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_stop_reaches_a_run_started_with_sigint_ignored(git_repo: Path, tmp_path: Path) -> None:
    """A command started in the background by a non-interactive shell inherits SIGINT
    ignored; `covey stop` still stops it (the lost stop under load)."""
    model = write_script(tmp_path / "slow.yaml", [{"text": "too late", "delay_s": 60}])
    proc = subprocess.Popen(
        [PY, "-m", "covey", "-p", "wait", "--model", model],
        cwd=git_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        rows = _wait_working(git_repo)
        assert covey("stop", rows[0]["id"], cwd=git_repo).code == 0
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        row = json.loads(covey("sessions", "--json", cwd=git_repo).out)[0]
        assert row["state"] == "stopped", row
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _wait_working(repo: Path) -> list[dict[str, Any]]:
    """`covey sessions --json` once the newest session is working."""
    deadline = time.monotonic() + 60
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = json.loads(covey("sessions", "--json", cwd=repo).out)
        if rows and rows[0]["state"] == "working":
            break
        time.sleep(0.05)
    assert rows and rows[0]["state"] == "working", rows
    return rows
