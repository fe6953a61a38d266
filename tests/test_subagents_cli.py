"""Subagents end to end: `covey -p` in a real git repo, the Agent tool, records and hooks.

Fake provider server + real Anthropic SDK where the wire matters; the scripted model elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from clitools import CliRun, covey
from covey.models.script import Script
from covey.store import Store
from covey.store.sessions import list_sessions
from covey.store.usage import session_usage, usage_rows
from covey.testing.fakeserver import FakeServer

MARKER = "ZEBRA-7781-SECRET-CONTENT"


def agent_call(prompt: str, kind: str | None = None, **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"description": f"task {prompt[:10]}", "prompt": prompt, **extra}
    if kind:
        args["subagent_type"] = kind
    return {"name": "Agent", "input": args}


@contextmanager
def fake(script: dict[str, Any]) -> Iterator[tuple[FakeServer, list[str], dict[str, str]]]:
    with FakeServer(Script.model_validate(script)) as srv:
        env = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": srv.url}
        yield srv, ["--model", "anthropic:claude-sonnet-4-5"], env


def run(repo: Path, args: list[str], env: dict[str, str], *more: str) -> CliRun:
    return covey("-p", "go", "--output-format", "json", *args, *more, cwd=repo, env=env)


def scripted(repo: Path, script: dict[str, Any]) -> list[str]:
    path = repo.parent / "script.yaml"
    path.write_text(yaml.safe_dump(script))
    return ["--model", f"scripted:{path}"]


def requests_of(srv: FakeServer, agent: str | None) -> list[dict[str, Any]]:
    return [r for r in srv.requests if r["agent"] == agent and r["turn"] is not None]


def tool_results(request: dict[str, Any]) -> list[str]:
    out = []
    for message in request["body"]["messages"]:
        if message["role"] == "user" and isinstance(message["content"], list):
            for block in message["content"]:
                if block.get("type") == "tool_result":
                    content = block["content"]
                    out.append(content if isinstance(content, str) else json.dumps(content))
    return out


def settings(repo: Path, data: dict[str, Any]) -> None:
    (repo / ".covey").mkdir(exist_ok=True)
    (repo / ".covey" / "settings.json").write_text(json.dumps(data))


EXPLORE = {
    "turns": [
        {"tool_calls": [agent_call("Find the secret and summarise it", "Explore")]},
        {"text": "The explorer reported back."},
    ],
    "agents": {
        "Explore": {
            "turns": [
                {"tool_calls": [{"name": "Read", "input": {"file_path": "secret.txt"}}]},
                {"text": "SUMMARY: secret.txt holds one marker line."},
            ]
        }
    },
}


def test_parent_sees_only_the_summary_and_child_gets_only_its_tools(git_repo: Path) -> None:
    (git_repo / "secret.txt").write_text(MARKER + "\n")
    with fake(EXPLORE) as (srv, args, env):
        result = run(git_repo, args, env)
    assert result.code == 0, result.err
    assert result.json()["result"] == "The explorer reported back."
    parent = requests_of(srv, None)
    child = requests_of(srv, "Explore")
    assert [r["turn"] for r in parent] == [0, 1] and [r["turn"] for r in child] == [0, 1]
    (agent_result,) = tool_results(parent[1])
    assert agent_result.startswith("SUMMARY: secret.txt holds one marker line.")
    trailer = json.loads(agent_result.splitlines()[-1])
    assert set(trailer) >= {"agentId", "totalToolUseCount", "totalDurationMs", "usage"}
    assert trailer["totalToolUseCount"] == 1 and trailer["usage"]["output_tokens"] > 0
    assert MARKER not in json.dumps(parent[1]["body"])
    assert MARKER in json.dumps(child[1]["body"])  # the child did read it
    for request in child:
        assert {t["name"] for t in request["body"]["tools"]} == {"Read", "Glob", "Grep"}
    assert "Agent" in {t["name"] for t in parent[0]["body"]["tools"]}
    system = json.dumps(child[0]["body"]["system"])
    assert "read-only search agent" in system and "<env>" in system


def _three(delay: float) -> dict[str, Any]:
    return {
        "turns": [
            {"tool_calls": [agent_call(f"job {i}") for i in range(3)]},
            {"text": "All three done."},
        ],
        "agents": {
            "general-purpose": {
                "turns": [
                    {"delay_s": delay, "tool_calls": [{"name": "Glob", "input": {"pattern": "*"}}]},
                    {"text": "job finished"},
                ]
            }
        },
    }


def test_three_subagents_in_one_turn_overlap(git_repo: Path) -> None:
    with fake(_three(2.0)) as (srv, args, env):
        result = run(git_repo, args, env)
    assert result.code == 0, result.err
    child = requests_of(srv, "general-purpose")
    firsts = [r["ts"] for r in child if r["turn"] == 0]
    seconds = [r["ts"] for r in child if r["turn"] == 1]
    assert len(firsts) == 3 and len(seconds) == 3
    assert max(firsts) < min(seconds)  # all three started before any finished its 2 s turn
    assert len(tool_results(requests_of(srv, None)[1])) == 3


def test_max_concurrent_one_queues_and_all_complete(git_repo: Path) -> None:
    settings(git_repo, {"subagents": {"maxConcurrent": 1}})
    with fake(_three(0.2)) as (srv, args, env):
        result = run(git_repo, args, env)
    assert result.code == 0, result.err
    turns = [r["turn"] for r in requests_of(srv, "general-purpose")]
    assert turns == [0, 1, 0, 1, 0, 1]  # one after another
    results = tool_results(requests_of(srv, None)[1])
    assert len(results) == 3 and all(r.startswith("job finished") for r in results)
    queued = [json.loads(r.splitlines()[-1])["queued_ms"] for r in results]
    assert sum(q > 0 for q in queued) >= 2  # two waited a whole child for their slot
    store = Store.open()
    try:
        with store.read() as conn:
            rows = conn.execute(
                "SELECT type, data FROM events WHERE type LIKE 'subagent_%'"
            ).fetchall()
    finally:
        store.close()
    assert [k for k, _ in rows].count("subagent_queued") == 2
    assert [k for k, _ in rows].count("subagent_finished") == 3


BACKGROUND = {
    "turns": [
        {"tool_calls": [agent_call("slow audit", run_in_background=True)]},
        {"text": "Launched; waiting for the audit."},
        {"text": "The audit says: all good."},
    ],
    "agents": {
        "general-purpose": {
            "turns": [
                {"delay_s": 1.0, "tool_calls": [{"name": "Glob", "input": {"pattern": "*"}}]},
                {"text": "AUDIT-RESULT all good"},
            ]
        }
    },
}


def test_background_subagent_notifies_before_the_next_call(git_repo: Path) -> None:
    with fake(BACKGROUND) as (srv, args, env):
        result = run(git_repo, args, env)
    assert result.code == 0, result.err
    assert result.json()["result"] == "The audit says: all good."
    parent = requests_of(srv, None)
    child = requests_of(srv, "general-purpose")
    assert [r["turn"] for r in parent] == [0, 1, 2]
    (launched,) = tool_results(parent[1])
    assert json.loads(launched)["status"] == "async_launched"
    assert parent[1]["ts"] < child[1]["ts"]  # the parent went on while the child worked
    last = parent[2]["body"]["messages"][-1]
    text = json.dumps(last)
    assert last["role"] == "user" and "<task-notification>" in text
    assert "<status>completed</status>" in text and "AUDIT-RESULT all good" in text
    assert "<tool_uses>1</tool_uses>" in text


def test_records_transcript_and_usage_roll_up(git_repo: Path) -> None:
    (git_repo / "secret.txt").write_text(MARKER + "\n")
    result = run(git_repo, scripted(git_repo, EXPLORE), {})
    assert result.code == 0, result.err
    parent_id = result.json()["session_id"]
    listed = covey("sessions", "--json", "--all", cwd=git_repo).json()
    kids = [s for s in listed if s["kind"] == "subagent"]
    assert len(kids) == 1 and kids[0]["state"] == "completed"
    store = Store.open()
    try:
        with store.read() as conn:
            (row,) = list_sessions(conn, kinds=["subagent"])
            total, _ = session_usage(conn, parent_id)
            rows = usage_rows(conn, session_id=parent_id, include_descendants=True)
    finally:
        store.close()
    assert row.parent_id == parent_id and row.agent == "Explore" and row.id == kids[0]["id"]
    assert {r.agent_path for r in rows} == {"main", "main/Explore-1"}
    assert total.output == sum(r.usage.output for r in rows)
    assert total.output > sum(r.usage.output for r in rows if r.session_id == parent_id)
    logs = covey("logs", row.id, cwd=git_repo)
    assert logs.code == 0, logs.err
    assert MARKER in logs.out and "SUMMARY" in logs.out


HOOKED = {
    "turns": [
        {"tool_calls": [agent_call("check", "Explore")]},
        {"text": "ok"},
    ],
    "agents": {"Explore": {"turns": [{"text": "first answer"}, {"text": "second answer"}]}},
}


def test_subagent_hooks_start_context_and_stop_block_once(git_repo: Path) -> None:
    start = {
        "hookSpecificOutput": {"hookEventName": "SubagentStart", "additionalContext": "CTX-42"}
    }
    stop = "test -f stopped.flag || { touch stopped.flag; echo 'CHECK-AGAIN' >&2; exit 2; }"
    settings(
        git_repo,
        {
            "hooks": {
                "SubagentStart": [
                    {
                        "matcher": "Explore",
                        "hooks": [{"type": "command", "command": f"echo '{json.dumps(start)}'"}],
                    },
                    {
                        "matcher": "Plan",
                        "hooks": [{"type": "command", "command": "echo WRONG-MATCHER; exit 2"}],
                    },
                ],
                "SubagentStop": [
                    {"matcher": "Explore", "hooks": [{"type": "command", "command": stop}]}
                ],
            }
        },
    )
    with fake(HOOKED) as (srv, args, env):
        result = run(git_repo, args, env)
    assert result.code == 0, result.err
    child = requests_of(srv, "Explore")
    assert [r["turn"] for r in child] == [0, 1]
    assert "CTX-42" in json.dumps(child[0]["body"]["messages"][0])
    assert "CHECK-AGAIN" in json.dumps(child[1]["body"]["messages"][-1])
    (answer,) = tool_results(requests_of(srv, None)[1])
    assert answer.startswith("second answer")


def test_hooks_run_inside_a_subagent_name_it(git_repo: Path) -> None:
    log = git_repo.parent / "hooks.jsonl"
    settings(
        git_repo,
        {
            "hooks": {
                "PreToolUse": [
                    {"hooks": [{"type": "command", "command": f"cat >> {log}; echo >> {log}"}]}
                ]
            }
        },
    )
    script = {
        "turns": [{"tool_calls": [agent_call("look", "Explore")]}, {"text": "ok"}],
        "agents": {
            "Explore": {
                "turns": [
                    {"tool_calls": [{"name": "Read", "input": {"file_path": "README.md"}}]},
                    {"text": "read it"},
                ]
            }
        },
    }
    with fake(script) as (_srv, args, env):
        result = run(git_repo, args, env)
    assert result.code == 0, result.err
    seen = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    by_tool = {e["tool_name"]: e for e in seen}
    assert set(by_tool) == {"Agent", "Read"}
    assert "agent_id" not in by_tool["Agent"]  # the main agent's own call
    assert by_tool["Read"]["agent_type"] == "Explore"
    assert (
        by_tool["Read"]["agent_id"]
        and by_tool["Read"]["session_id"] == by_tool["Agent"]["session_id"]
    )


def test_a_main_agent_keeps_ask_user_question_which_subagents_never_get(
    git_repo: Path,
) -> None:
    agents = {
        "asker": {
            "description": "Asks",
            "prompt": "Ask first.",
            "tools": ["Read", "AskUserQuestion"],
        },
        "all": {"description": "Everything", "prompt": "Anything."},
    }
    script = {"agents": {n: {"turns": [{"text": "ok"}]} for n in agents}}
    for name, expected in (("asker", {"Read", "AskUserQuestion"}), ("all", None)):
        with fake(script) as (srv, args, env):
            result = run(git_repo, args, env, "--agent", name, "--agents", json.dumps(agents))
        assert result.code == 0, result.err
        (request,) = srv.requests
        tools = {t["name"] for t in request["body"]["tools"]}
        assert tools == expected if expected else "AskUserQuestion" in tools and "Bash" in tools


def test_main_agent_from_a_definition(git_repo: Path) -> None:
    agents = {
        "reviewer": {
            "description": "Reviews code",
            "prompt": "You are REVIEWER-PROMPT-MARK.",
            "tools": ["Read", "Grep"],
            "maxTurns": 3,
        }
    }
    script = {"agents": {"reviewer": {"turns": [{"text": "Reviewed."}]}}}
    with fake(script) as (srv, args, env):
        result = run(git_repo, args, env, "--agent", "reviewer", "--agents", json.dumps(agents))
    assert result.code == 0, result.err
    assert result.json()["result"] == "Reviewed."
    (request,) = srv.requests
    assert request["agent"] == "reviewer"
    system = json.dumps(request["body"]["system"])
    assert "REVIEWER-PROMPT-MARK" in system and "<env>" in system
    assert "You are covey" not in system
    assert {t["name"] for t in request["body"]["tools"]} == {"Read", "Grep"}
    unknown = covey("-p", "go", "--agent", "nobody", cwd=git_repo)
    assert unknown.code == 2
    assert "nobody" in unknown.err and "general-purpose" in unknown.err


def test_worktree_isolation_keeps_changed_trees_only(git_repo: Path) -> None:
    agents = {
        name: {"description": name, "prompt": f"You are {name}.", "isolation": "worktree"}
        for name in ("writer", "looker")
    }
    script = {
        "turns": [
            {"tool_calls": [agent_call("write", "writer"), agent_call("look", "looker")]},
            {"text": "done"},
        ],
        "agents": {
            "writer": {
                "turns": [
                    {
                        "tool_calls": [
                            {"name": "Write", "input": {"file_path": "new.txt", "content": "x\n"}}
                        ]
                    },
                    {"text": "wrote"},
                ]
            },
            "looker": {"turns": [{"text": "looked"}]},
        },
    }
    args = [*scripted(git_repo, script), "--permission-mode", "acceptEdits"]
    result = covey(
        "-p", "go", "--output-format", "stream-json", *args, "--agents", json.dumps(agents),
        cwd=git_repo,
    )  # fmt: skip
    assert result.code == 0, result.err
    results = [
        b["content"]
        for e in result.events()
        if e["type"] == "user"
        for b in e["message"]["content"]
        if b.get("type") == "tool_result"
    ]
    trailers = {r.splitlines()[0]: json.loads(r.splitlines()[-1]) for r in results}
    kept = Path(trailers["wrote"]["worktreePath"])
    assert (kept / "new.txt").read_text() == "x\n" and not (git_repo / "new.txt").exists()
    assert trailers["wrote"]["worktreeBranch"].startswith("worktree-")
    assert "worktreePath" not in trailers["looked"]
    worktrees = list((git_repo / ".covey" / "worktrees").iterdir())
    assert worktrees == [kept]


def test_plan_mode_launches_read_only_subagents_only(git_repo: Path) -> None:
    script = {
        "turns": [
            {"tool_calls": [agent_call("look around", "Explore"), agent_call("edit", None)]},
            {"text": "planned"},
        ],
        "agents": {"Explore": {"turns": [{"text": "found two files"}]}},
    }
    result = run(git_repo, scripted(git_repo, script), {}, "--permission-mode", "plan")
    assert result.code == 0, result.err
    denials = result.json()["permission_denials"]
    assert [d["tool_input"].get("subagent_type") for d in denials] == [None]
