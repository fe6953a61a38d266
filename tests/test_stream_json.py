"""`covey --input-format stream-json`: the control protocol line by line (no SDK in between),
with the scripted model."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from clitools import covey
from covey.store import Store
from covey.store.sessions import get_session

STREAM = ["--input-format", "stream-json", "--output-format", "stream-json", "--verbose"]


def user(text: str) -> str:
    return json.dumps({"type": "user", "message": {"role": "user", "content": text}})


def control(request_id: str, **request: Any) -> str:
    return json.dumps({"type": "control_request", "request_id": request_id, "request": request})


class Covey:
    """covey in stream-json mode, fed and read a line at a time."""

    def __init__(self, repo: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "covey", *STREAM, *args],
            cwd=repo,
            env={**os.environ, **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def until(self, **match: Any) -> list[dict[str, Any]]:
        """The lines up to and including the first one with these fields."""
        seen = []
        while True:
            line = self.lines.get(timeout=30)
            assert line is not None, f"stdout ended; seen {seen}"
            seen.append(line)
            if all(line.get(k) == v for k, v in match.items()):
                return seen

    def close(self) -> int:
        """End stdin; covey's exit code (its stderr in `err`)."""
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout=60)
        finally:
            self.proc.kill()
            self.reader.join(timeout=10)
            self.err = self.proc.stderr.read()
            self.proc.stdout.close()
            self.proc.stderr.close()
        return code


def script(tmp: Path, turns: list[dict[str, Any]]) -> str:
    path = tmp / "script.yaml"
    path.write_text(yaml.safe_dump({"turns": turns}))
    return f"scripted:{path}"


def test_unknown_requests_are_refused_and_eof_after_the_last_turn_exits_0(
    git_repo: Path, tmp_path: Path
) -> None:
    model = script(tmp_path, [{"text": "one"}, {"text": "two"}])
    lines = "\n".join(
        [
            control("r1", subtype="initialize", hooks=None),
            user("first"),
            "not json at all",
            control("r2", subtype="rewind_files", user_message_id="x"),
            json.dumps(
                {
                    "type": "user",
                    "message": {"role": "user", "content": [{"type": "image", "source": {}}]},
                }
            ),
            json.dumps(
                {
                    "type": "user",
                    "message": {"role": "user", "content": [{"type": "text", "text": "more"}]},
                }
            ),
        ]
    )
    run = covey(*STREAM, "--model", model, cwd=git_repo, stdin=lines + "\n")
    assert run.code == 0, run.err
    events = run.events()
    answers = {e["response"]["request_id"]: e["response"] for e in events if "response" in e}
    assert answers["r1"]["subtype"] == "success"
    assert answers["r2"]["subtype"] == "error" and "rewind_files" in answers["r2"]["error"]
    results = [e for e in events if e["type"] == "result"]
    assert [r["is_error"] for r in results] == [False, True, False]
    assert results[0]["result"] == "one" and results[2]["result"] == "two"
    assert "only text content blocks" in results[1]["result"]  # every message gets a result
    assert len({r["session_id"] for r in results}) == 1
    assert all("uuid" in e for e in events if e["type"] in ("system", "assistant", "result"))
    assert "not JSON" in run.err


def test_input_format_needs_stream_json_output_and_no_prompt(git_repo: Path) -> None:
    run = covey("--input-format", "stream-json", cwd=git_repo, stdin="")
    assert run.code == 2 and "--output-format stream-json" in run.err
    run = covey(*STREAM, "hello", cwd=git_repo, stdin="")
    assert run.code == 2 and "stdin" in run.err


def test_an_interrupt_withdraws_a_pending_can_use_tool(git_repo: Path, tmp_path: Path) -> None:
    model = script(
        tmp_path,
        [
            {"tool_calls": [{"name": "Write", "input": {"file_path": "a.txt", "content": "a"}}]},
            {"text": "next"},
        ],
    )
    env = {"CLAUDE_CODE_SDK_READS_SESSION_STATE": "1"}
    host = Covey(git_repo, "--model", model, "--permission-prompt-tool", "stdio", env=env)
    host.send(user("write a"))
    seen = host.until(type="control_request")
    ask = seen[-1]
    assert ask["request"]["subtype"] == "can_use_tool" and ask["request"]["tool_name"] == "Write"
    host.send(control("i1", subtype="interrupt"))
    seen += host.until(type="result")
    withdrawn = [e for e in seen if e["type"] == "control_cancel_request"]
    assert withdrawn and withdrawn[0]["request_id"] == ask["request_id"]
    assert seen[-1]["subtype"] == "error_during_execution"
    interrupted = [e for e in seen if e["type"] == "user"][-1]["message"]["content"]
    assert interrupted == [{"type": "text", "text": "[Request interrupted by user]"}]
    seen += host.until(subtype="session_state_changed", state="idle")
    frames = [e for e in seen if e.get("subtype") == "session_state_changed"]
    assert [f["state"] for f in frames] == ["running", "requires_action", "running", "idle"]
    assert all(f["sdk_host_only"] for f in frames)  # the SDK reads them; its caller does not
    host.send(user("go on"))
    assert host.until(type="result")[-1]["result"] == "next"
    assert host.close() == 0
    assert not (git_repo / "a.txt").exists()


def test_a_deny_with_interrupt_ends_the_turn(git_repo: Path, tmp_path: Path) -> None:
    write = {"name": "Write", "input": {"file_path": "a.txt", "content": "a"}}
    model = script(tmp_path, [{"tool_calls": [write]}, {"text": "never"}])
    host = Covey(git_repo, "--model", model, "--permission-prompt-tool", "stdio")
    host.send(user("write a"))
    ask = host.until(type="control_request")[-1]
    answer = {"behavior": "deny", "message": "stop right there", "interrupt": True}
    response = {"subtype": "success", "request_id": ask["request_id"], "response": answer}
    host.send(json.dumps({"type": "control_response", "response": response}))
    seen = host.until(type="result")
    assert seen[-1]["subtype"] == "error_during_execution"
    assert not any(e["type"] == "assistant" for e in seen)  # the model was not asked again
    assert host.close() == 0


def test_sigterm_stops_the_turn_and_lets_go_of_the_session(git_repo: Path, tmp_path: Path) -> None:
    sleep = {"name": "Bash", "input": {"command": "sleep 60"}}
    model = script(tmp_path, [{"tool_calls": [sleep]}, {"text": "never"}])
    host = Covey(git_repo, "--model", model, "--allowedTools", "Bash(sleep *)")
    host.send(user("wait"))
    session_id = host.until(type="assistant")[-1]["session_id"]
    time.sleep(0.5)  # the command runs
    host.proc.send_signal(signal.SIGTERM)
    assert host.close() == 143
    with Store.open() as store, store.read() as conn:
        row = get_session(conn, session_id)
    assert row is not None and row.state == "stopped" and row.host_id is None
