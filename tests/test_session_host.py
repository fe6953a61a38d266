"""One session plan and one session host: every host ends a turn the same way, every figure
of cost comes from the ledger, background sessions keep their safety flags, and the
orchestration layer stays a tree (no import cycles, one writer of a session's state)."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bgtools import agents, daemon_status, supervisor, wait_for_state  # noqa: F401  (fixture)
from clitools import covey
from covey.messages import Usage
from covey.models.pricing import cost_usd
from covey.models.script import Script
from covey.store import Store
from covey.store.sessions import get_session
from covey.store.usage import usage_rows
from covey.testing.fakeserver import FakeServer

SRC = Path(__file__).resolve().parents[1] / "src" / "covey"
MODEL = ["--model", "anthropic:claude-sonnet-4-5"]
FINISHED = ("completed", "failed", "stopped")


def _env(server: FakeServer) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": server.url}


def _usage(i: int, o: int, read: int = 0, write: int = 0) -> dict[str, int]:
    return {"input": i, "output": o, "cache_read": read, "cache_write": write}


def test_print_cost_and_usage_are_the_ledger_with_subagents(git_repo: Path) -> None:
    """The subagent makes two of the four model calls: the result counts all four."""
    script = {
        "turns": [
            {
                "usage": _usage(1200, 80, 300, 50),
                "tool_calls": [
                    {"name": "Agent", "input": {"description": "look", "prompt": "look around"}}
                ],
            },
            {"usage": _usage(900, 40, 1500), "text": "Done."},
        ],
        "agents": {
            "general-purpose": {
                "turns": [
                    {
                        "usage": _usage(2000, 120, 0, 700),
                        "tool_calls": [{"name": "Glob", "input": {"pattern": "*"}}],
                    },
                    {"usage": _usage(2500, 60, 800), "text": "Found a README."},
                ]
            }
        },
    }
    with FakeServer(Script.model_validate(script)) as server:
        run = covey("-p", "go", "--output-format", "json", *MODEL, cwd=git_repo, env=_env(server))
        billed = [Usage(**r["usage"]) for r in server.requests if "usage" in r]
    assert run.code == 0, run.err
    result = run.json()
    assert len(billed) == 4
    expected = sum(cost_usd("claude-sonnet-4-5", u) for u in billed)
    assert result["total_cost_usd"] == pytest.approx(expected, abs=1e-6)
    assert result["usage"] == {
        "input_tokens": sum(u.input for u in billed),
        "output_tokens": sum(u.output for u in billed),
        "cache_read_input_tokens": sum(u.cache_read for u in billed),
        "cache_creation_input_tokens": sum(u.cache_write for u in billed),
    }
    with Store.open() as store, store.read() as conn:
        rows = usage_rows(conn, session_id=result["session_id"], include_descendants=True)
    assert sum(r.cost_usd for r in rows) == pytest.approx(result["total_cost_usd"], abs=1e-6)


def test_a_resumed_run_reports_only_its_own_spending(git_repo: Path) -> None:
    script = {
        "turns": [
            {"usage": _usage(1000, 10), "text": "first"},
            {"usage": _usage(3000, 30), "text": "second"},
        ]
    }
    with FakeServer(Script.model_validate(script)) as server:
        env = _env(server)
        first = covey("-p", "one", "--output-format", "json", *MODEL, cwd=git_repo, env=env)
        sid = first.json()["session_id"]
        second = covey(
            "-p", "two", "--resume", sid, "--output-format", "json", *MODEL, cwd=git_repo, env=env
        )
    assert second.code == 0, second.err
    assert first.json()["usage"]["input_tokens"] == 1000
    assert second.json()["usage"]["input_tokens"] == 3000


def _failing_script() -> Script:
    fault = {"status": 400, "message": "the request broke a rule"}
    turn = {"text": "never", "faults": [fault, fault]}  # one for each host
    return Script.model_validate({"turns": [turn]})


def _row(session_id: str) -> tuple[str, str | None]:
    with Store.open() as store, store.read() as conn:
        row = get_session(conn, session_id)
    assert row is not None
    return row.state, row.reason


def test_a_failing_turn_ends_the_same_way_in_every_host(
    supervisor: Path,  # noqa: F811
) -> None:
    repo = supervisor
    with FakeServer(_failing_script()) as server:
        env = _env(server)
        foreground = covey("-p", "go", "--output-format", "json", *MODEL, cwd=repo, env=env)
        assert foreground.code == 1, foreground.err
        fg_state = _row(foreground.json()["session_id"])
        dispatched = covey("--bg", "go on then", *MODEL, cwd=repo, env=env)
        assert dispatched.code == 0, dispatched.err
        sid = dispatched.out.split(" · ")[1]
        wait_for_state(repo, sid, FINISHED)
        bg_state = _row(sid)
    assert fg_state[0] == "failed" and "the request broke a rule" in (fg_state[1] or "")
    assert bg_state == fg_state


def test_background_sessions_keep_their_safety_flags(
    supervisor: Path,  # noqa: F811
) -> None:
    """`--disallowedTools` and `--max-turns` given to `--bg` hold in the supervisor."""
    repo = supervisor
    (repo / "victim.txt").write_text("keep me\n")
    subprocess.run(["git", "add", "victim.txt"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "victim"], cwd=repo, check=True)
    script = repo.parent / "rm.yaml"
    bash = {"name": "Bash", "input": {"command": "rm -f victim.txt"}}
    script.write_text(json.dumps({"turns": [{"tool_calls": [bash]}, {"text": "tried"}]}))
    run = covey(
        "--bg",
        "remove the victim",
        "--model",
        f"scripted:{script}",
        "--permission-mode",
        "bypassPermissions",
        "--disallowedTools",
        "Bash(rm:*)",
        cwd=repo,
    )
    assert run.code == 0, run.err
    sid = run.out.split(" · ")[1]
    row = wait_for_state(repo, sid, FINISHED)
    assert row["state"] == "completed", row
    worktree = Path(row["worktree"])
    assert (worktree / "victim.txt").exists()
    glob = {"name": "Glob", "input": {"pattern": "*"}}
    script.write_text(json.dumps({"turns": [{"tool_calls": [glob]}, {"text": "looked"}]}))
    model = f"scripted:{script}"
    capped = covey("--bg", "look around", "--model", model, "--max-turns", "1", cwd=repo)
    assert capped.code == 0, capped.err
    row = wait_for_state(repo, capped.out.split(" · ")[1], FINISHED)
    assert (row["state"], row["reason"].split(":")[0]) == ("failed", "max_turns"), row


def test_bg_accepts_a_key_that_only_credentials_json_holds(
    supervisor: Path,  # noqa: F811
) -> None:
    repo = supervisor
    credentials = Path(os.environ["COVEY_HOME"]) / "credentials.json"
    with FakeServer(Script.model_validate({"turns": [{"text": "Keyed."}]})) as server:
        credentials.write_text(json.dumps({"ANTHROPIC_API_KEY": "test-key"}))
        credentials.chmod(0o600)
        env = {"ANTHROPIC_BASE_URL": server.url}
        run = covey("--bg", "use the stored key", *MODEL, cwd=repo, env=env)
        assert run.code == 0, run.err
        row = wait_for_state(repo, run.out.split(" · ")[1], FINISHED)
    assert row["state"] == "completed", row


def test_bg_refuses_flags_it_cannot_honour(git_repo: Path) -> None:
    run = covey("--bg", "do it", "--worktree", "x", cwd=git_repo)
    assert run.code == 2 and "--worktree does not work with --bg" in run.err
    assert "Traceback" not in run.err


# --- the shape of the code -----------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """Every covey module `path` imports, at any depth (lazy imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("covey"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("covey"))
    return found


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_sessions_and_supervisor_import_no_cycle() -> None:
    files = [*sorted((SRC / "sessions").glob("*.py")), *sorted((SRC / "supervisor").glob("*.py"))]
    modules = {_module(f): f for f in files}
    graph = {m: {i for i in _imports(f) if i in modules and i != m} for m, f in modules.items()}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif len(path) < len(graph):
                visit(nxt, [*path, nxt])

    for start in graph:
        visit(start, [start])
    assert cycles == []
    sessions = [f for f in files if f.parent.name == "sessions"]
    assert [
        f.name for f in sessions if any(i.startswith("covey.supervisor") for i in _imports(f))
    ] == []


def _calls(path: Path) -> list[ast.Call]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)]


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def test_only_the_state_module_writes_a_session_state() -> None:
    writers: list[str] = []
    for path in SRC.rglob("*.py"):
        for call in _calls(path):
            keywords = {k.arg for k in call.keywords}
            if _name(call) == "update_session" and "state" in keywords:
                writers.append(str(path.relative_to(SRC)))
    assert sorted(set(writers)) == ["sessions/state.py"]


def test_no_long_functions_in_the_orchestration_layer() -> None:
    long: list[str] = []
    for package in ("sessions", "supervisor"):
        for path in (SRC / package).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > 60:
                        long.append(f"{package}/{path.name}:{node.name} ({length} lines)")
    assert long == []


def test_session_rows_have_no_untyped_keys_left() -> None:
    users = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if any(_name(c) == "extra" for c in _calls(path))
    ]
    assert users == []


def test_a_supervisor_restarted_at_once_after_kill_9_resumes_its_sessions(
    supervisor: Path,  # noqa: F811
) -> None:
    """The killed daemon may linger as a zombie (its pid still answers): liveness comes from
    the supervisor lock, and orphans are looked for while the new supervisor runs. Each
    session is inside a long Bash call when the daemon dies (its marker file says so, however
    slow the machine), so none can finish before the kill."""
    repo = supervisor
    script = repo.parent / "slow.yaml"
    bash = {"name": "Bash", "input": {"command": "touch started && sleep 30"}}
    script.write_text(json.dumps({"turns": [{"tool_calls": [bash]}, {"text": "done"}]}))
    ids = []
    for n in range(3):
        run = covey(
            "--bg", f"job number {n}", "--model", f"scripted:{script}",
            "--permission-mode", "bypassPermissions", cwd=repo,
        )  # fmt: skip
        assert run.code == 0, run.err
        ids.append(run.out.split(" · ")[1])
    for sid in ids:
        row = wait_for_state(repo, sid, ("working",))
        started = Path(row["worktree"]) / "started"
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), row
    pid = int(daemon_status(repo)["pid"])
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert covey("daemon", "start", cwd=repo).code == 0
    deadline = time.monotonic() + 30
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {r["id"]: r["state"] for r in agents(repo) if r["id"] in ids}
        if set(states.values()) == {"completed"}:
            break
        time.sleep(0.2)
    assert set(states.values()) == {"completed"}, states


def test_a_project_definition_cannot_raise_the_main_agents_mode(
    git_repo: Path, tmp_path: Path
) -> None:
    agents = git_repo / ".covey" / "agents"
    agents.mkdir(parents=True)
    (agents / "yolo.md").write_text(
        "---\nname: yolo\ndescription: does anything\npermissionMode: bypassPermissions\n---\n"
        "You do what you are told.\n"
    )
    script = tmp_path / "s.yaml"
    script.write_text(json.dumps({"turns": [{"text": "ok"}]}))
    args = ["-p", "go", "--agent", "yolo", "--model", f"scripted:{script}"]
    run = covey(*args, "--output-format", "stream-json", cwd=git_repo)
    assert run.code == 0, run.err
    assert run.events()[0]["permissionMode"] == "default"
    assert "cannot raise the permission mode" in run.err
    allowed = covey(*args, "--permission-mode", "bypassPermissions", "--output-format",
                    "stream-json", cwd=git_repo)  # fmt: skip
    assert allowed.events()[0]["permissionMode"] == "bypassPermissions"
