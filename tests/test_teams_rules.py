"""Agent teams' rules end to end: file ownership, worktree isolation, the teammate limit, team
hooks, the shutdown handshake."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from covey.store import Store
from covey.store import teams as team_store
from covey.store.sessions import get_session
from teamtools import call, fake, requests_of, run, spawn, texts, tool_results


def bwrap_works() -> bool:
    probe = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


SPARE = [{"text": "spare turn"} for _ in range(4)]


def settings(repo: Path, data: dict[str, Any]) -> None:
    (repo / ".covey").mkdir(exist_ok=True)
    (repo / ".covey" / "settings.json").write_text(json.dumps(data))


OWNERS = {
    "turns": [
        {
            "tool_calls": [
                spawn("alice", "Work in src.", owns=["src/**"]),
                spawn("bob", "Work in the API.", owns=["src/api/**"]),
                spawn("carol", "Write the docs.", owns=["docs/"]),
            ]
        },
        {"tool_calls": [call("Write", file_path="src/lead.py", content="x = 1\n")]},
        *SPARE,
    ],
    "agents": {
        "alice": {
            "turns": [
                {
                    "tool_calls": [
                        call("Write", file_path="NOTES.md", content="alice\n"),
                        call("Write", file_path="docs/guide.md", content="alice\n"),
                        call("Write", file_path="src/ok.py", content="ok = True\n"),
                    ]
                },
                {"text": "alice done"},
            ]
        },
        "carol": {"turns": [{"text": "carol idle"}]},
    },
}


def test_owned_files_are_refused_to_others_and_overlaps_at_spawn(git_repo: Path) -> None:
    with fake(OWNERS) as (srv, env):
        result = run(git_repo, env)
    assert result.code == 0, result.err
    lead = requests_of(srv, None)
    (_, a_err), (bob, b_err), (_, c_err) = tool_results(lead[1])
    assert not a_err and not c_err
    assert b_err and "'src/api/**' overlaps 'src/**' owned by teammate alice" in bob
    ((lead_write, lead_err),) = tool_results(lead[2])
    assert lead_err and "src/lead.py is owned by teammate alice (src/**)" in lead_write
    outside, others, own = tool_results(requests_of(srv, "alice")[1])
    assert outside[1] and "NOTES.md is outside what you own (src/**)" in outside[0]
    assert others[1] and "docs/guide.md is owned by teammate carol" in others[0]
    assert not own[1]
    assert (git_repo / "src" / "ok.py").exists()
    assert not (git_repo / "NOTES.md").exists() and not (git_repo / "src" / "lead.py").exists()
    assert requests_of(srv, "bob") == []


ISOLATED = {
    "turns": [
        {"tool_calls": [spawn("dave", "Change the readme.", isolation="worktree")]},
        *SPARE,
    ],
    "agents": {
        "dave": {
            "turns": [
                {
                    "delay_s": 1.0,  # after the lead's next request
                    "tool_calls": [call("Write", file_path="README.md", content="dave's\n")],
                },
                {"text": "dave changed the readme"},
            ]
        }
    },
}


def test_a_teammate_with_worktree_isolation_works_on_its_own_branch(git_repo: Path) -> None:
    with fake(ISOLATED) as (srv, env):
        result = run(git_repo, env)
    assert result.code == 0, result.err
    ((started, _),) = tool_results(requests_of(srv, None)[1])
    info = json.loads(started)
    assert info["branch"]
    assert (git_repo / "README.md").read_text() == "sample\n"  # the main checkout untouched
    with Store.open() as store, store.read() as conn:
        row = get_session(conn, info["agentId"])
    assert row is not None and row.meta.worktree and row.meta.branch == info["branch"]
    assert (Path(row.meta.worktree) / "README.md").read_text() == "dave's\n"
    idle = texts(requests_of(srv, None)[2])
    assert f"branch: {info['branch']}" in idle and "dave changed the readme" in idle


def test_an_ended_teammate_releases_its_files(git_repo: Path) -> None:
    """alice, owning `src/**`, fails (a 400): bob may then own `src/a.py` and write it. While
    alice is live the same spawn is refused (`test_owned_files_are_refused_…`)."""
    script = {
        "turns": [
            {"tool_calls": [spawn("alice", "Work in src.", owns=["src/**"])]},
            {"text": "waiting for alice"},
            {"tool_calls": [spawn("bob", "Write a.", owns=["src/a.py"])]},
            {"text": "waiting for bob"},
            {"text": "LEAD-FINAL"},
            *SPARE,
        ],
        "agents": {
            "alice": {"turns": [{"faults": [{"status": 400, "message": "alice cannot"}]}]},
            "bob": {
                "turns": [
                    {"tool_calls": [call("Write", file_path="src/a.py", content="a = 1\n")]},
                    {"text": "bob wrote a"},
                ]
            },
        },
    }
    with fake(script) as (srv, env):
        result = run(git_repo, env)
    assert result.code == 0, result.err
    lead = requests_of(srv, None)
    assert "alice" in texts(lead[2]) and "failed" in texts(lead[2])
    ((started, error),) = tool_results(lead[3])
    assert not error, started
    ((wrote, write_error),) = tool_results(requests_of(srv, "bob")[1])
    assert not write_error, wrote
    assert (git_repo / "src" / "a.py").read_text() == "a = 1\n"


def test_the_teammate_limit_comes_from_settings(git_repo: Path) -> None:
    settings(git_repo, {"teams": {"maxTeammates": 1}})
    script = {
        "turns": [{"tool_calls": [spawn("alice", "one"), spawn("bob", "two")]}, *SPARE],
        "agents": {"alice": {"turns": [{"text": "alice idle"}]}},
    }
    with fake(script) as (srv, env):
        result = run(git_repo, env)
    assert result.code == 0, result.err
    (_, a_err), (bob, b_err) = tool_results(requests_of(srv, None)[1])
    assert not a_err and b_err and "teams.maxTeammates" in bob


def test_the_teammate_limit_counts_only_live_teammates(git_repo: Path) -> None:
    """alice fails (a 400 from the provider): with `maxTeammates: 1` the lead may start bob."""
    settings(git_repo, {"teams": {"maxTeammates": 1}})
    script = {
        "turns": [
            {"tool_calls": [spawn("alice", "one")]},
            {"text": "waiting for alice"},
            {"tool_calls": [spawn("bob", "two")]},
            {"text": "waiting for bob"},
            {"text": "LEAD-FINAL"},
            *SPARE,
        ],
        "agents": {
            "alice": {"turns": [{"faults": [{"status": 400, "message": "alice cannot"}]}]},
            "bob": {"turns": [{"text": "bob idle"}]},
        },
    }
    with fake(script) as (srv, env):
        result = run(git_repo, env)
    assert result.code == 0, result.err
    lead = requests_of(srv, None)
    assert "alice" in texts(lead[2]) and "failed" in texts(lead[2])
    ((started, error),) = tool_results(lead[3])
    assert not error, started
    assert json.loads(started)["name"] == "bob"
    with Store.open() as store, store.read() as conn:
        rows = [get_session(conn, r.session_id) for r in _teammates(conn)]
    assert {(r.name, r.state) for r in rows if r} == {("alice", "failed"), ("bob", "completed")}


def _teammates(conn: Any) -> list[team_store.MemberRow]:
    (team_id,) = conn.execute("SELECT id FROM teams").fetchone()
    return [m for m in team_store.list_members(conn, team_id) if m.name != team_store.LEAD]


def once(log: Path, flag: Path, feedback: str) -> str:
    """A hook command that logs its input and blocks (exit 2) the first time only."""
    return (
        f"{{ cat; echo; }} >> {log}; test -f {flag} || "
        f"{{ touch {flag}; echo '{feedback}' >&2; exit 2; }}"
    )


HOOKED = {
    "turns": [
        {
            "tool_calls": [
                call("TaskCreate", subject="BLOCKME now", description="refused"),
                call("TaskCreate", subject="Real work", description="kept"),
                spawn("alice", "Do task 1."),
            ]
        },
        *SPARE,
    ],
    "agents": {
        "alice": {
            "turns": [
                {
                    "tool_calls": [
                        call("TaskUpdate", taskId="1", status="in_progress"),
                        call("TaskUpdate", taskId="1", status="completed"),
                        call("TaskUpdate", taskId="1", status="completed"),
                    ]
                },
                {"text": "first end"},
                {"text": "ALICE final"},
            ]
        }
    },
}


def test_team_hooks_block_with_exit_2_and_get_the_reference_inputs(git_repo: Path) -> None:
    log = git_repo.parent / "hooks.jsonl"

    def hook(command: str) -> list[dict[str, Any]]:
        return [{"hooks": [{"type": "command", "command": command}]}]

    settings(
        git_repo,
        {
            "hooks": {
                "TaskCreated": hook(
                    f'p=$(cat); echo "$p" >> {log}; case "$p" in *BLOCKME*) '
                    "echo 'no BLOCKME tasks' >&2; exit 2;; esac"
                ),
                "TaskCompleted": hook(once(log, git_repo.parent / "done", "run the tests first")),
                "TeammateIdle": hook(once(log, git_repo.parent / "idle", "IDLE-FEEDBACK go on")),
            }
        },
    )
    with fake(HOOKED) as (srv, env):
        result = run(git_repo, env)
    assert result.code == 0, result.err
    (refused, r_err), (created, _), _ = tool_results(requests_of(srv, None)[1])
    assert r_err and "no BLOCKME tasks" in refused
    assert json.loads(created)["task"]["id"] == "1"  # the refused creation left no trace
    alice = requests_of(srv, "alice")
    _, (blocked, b_err), (done, d_err) = tool_results(alice[1])
    assert b_err and "run the tests first" in blocked and "kept task 1 open" in blocked
    assert not d_err and json.loads(done)["statusChange"]["to"] == "completed"
    assert [r["turn"] for r in alice] == [0, 1, 2]
    assert "IDLE-FEEDBACK go on" in texts(alice[2])
    idle = "".join(texts(r) for r in requests_of(srv, None))
    assert "ALICE final" in idle and "first end" not in idle
    events = [json.loads(line) for line in log.read_text().splitlines()]
    created_in = [e for e in events if e["hook_event_name"] == "TaskCreated"]
    assert {e["task_subject"] for e in created_in} == {"BLOCKME now", "Real work"}
    assert all(e["team_name"].startswith("session-") for e in events)
    completed = [e for e in events if e["hook_event_name"] == "TaskCompleted"]
    assert completed[0]["task_id"] == "1" and completed[0]["teammate_name"] == "alice"
    idles = [e for e in events if e["hook_event_name"] == "TeammateIdle"]
    assert len(idles) == 2 and idles[0]["teammate_name"] == "alice"


SHUTDOWN = {
    "turns": [
        {"tool_calls": [spawn("alice", "Wait for orders.")]},
        {"text": "spawned"},
        {"tool_calls": [call("SendMessage", to="alice", message={"type": "shutdown_request"})]},
        {"text": "asked alice to stop"},
        *SPARE,
    ],
    "agents": {
        "alice": {
            "turns": [
                {"delay_s": 1.0, "text": "ready"},  # after the lead's "spawned"
                {
                    "tool_calls": [
                        call(
                            "SendMessage",
                            to="team-lead",
                            message={"type": "shutdown_response", "approve": True},
                        )
                    ]
                },
                {"text": "bye"},
                {"text": "never asked for"},
            ]
        }
    },
}


def test_the_shutdown_handshake_ends_the_teammate(git_repo: Path) -> None:
    with fake(SHUTDOWN) as (srv, env):
        result = run(git_repo, env)
    assert result.code == 0, result.err
    lead, alice = requests_of(srv, None), requests_of(srv, "alice")
    ((asked, _),) = tool_results(lead[3])
    request_id = json.loads(asked)["request_id"]
    assert request_id.startswith("shutdown-")
    assert request_id in texts(alice[1]) and "shutdown_request" in texts(alice[1])
    assert [r["turn"] for r in alice] == [0, 1, 2]
    assert "shutdown_response" in "".join(texts(r) for r in lead[4:])
    with Store.open() as store, store.read() as conn:
        team = team_store.team_of_lead(conn, result.json()["session_id"])
        assert team is not None
        (alice_member,) = [m for m in team_store.list_members(conn, team.id) if m.name == "alice"]
        row = get_session(conn, alice_member.session_id)
        assert row is not None and row.state == "completed"


UNFINISHED = {
    "turns": [
        {
            "tool_calls": [
                call("TaskCreate", subject="Half done", description="d"),
                spawn("alice", "Do task 1."),
            ]
        },
        *SPARE,
    ],
    "agents": {
        "alice": {
            "turns": [
                {"tool_calls": [call("TaskUpdate", taskId="1", status="in_progress")]},
                {"text": "stopping early"},
                {"tool_calls": [call("TaskUpdate", taskId="1", status="completed")]},
                {"text": "ALICE really done"},
            ]
        }
    },
}


def test_task_completed_runs_when_a_teammate_ends_with_a_task_in_progress(
    git_repo: Path,
) -> None:
    log, flag = git_repo.parent / "hooks.jsonl", git_repo.parent / "unfinished"
    settings(
        git_repo,
        {
            "hooks": {
                "TaskCompleted": [
                    {"hooks": [{"type": "command", "command": once(log, flag, "FINISH-FIRST")}]}
                ]
            }
        },
    )
    with fake(UNFINISHED) as (srv, env):
        result = run(git_repo, env)
    assert result.code == 0, result.err
    alice = requests_of(srv, "alice")
    assert [r["turn"] for r in alice] == [0, 1, 2, 3]
    assert "FINISH-FIRST" in texts(alice[2])
    lead_saw = "".join(texts(r) for r in requests_of(srv, None))
    assert "ALICE really done" in lead_saw and "stopping early" not in lead_saw
    (event, _) = [json.loads(line) for line in log.read_text().splitlines()]
    assert event["task_id"] == "1" and event["teammate_name"] == "alice"


ENDED = {
    "turns": [
        {"tool_calls": [spawn("alice", "Say hi.")]},
        {"text": "waiting"},
        {"text": "alice said hi"},
        {"tool_calls": [call("SendMessage", to="alice", message="are you there?")]},
        {"text": "alice has ended"},
        *SPARE,
    ],
    "agents": {"alice": {"turns": [{"delay_s": 1.0, "text": "hi"}]}},
}


def test_mail_to_a_teammate_that_has_ended_is_refused(git_repo: Path) -> None:
    with fake(ENDED) as (srv, env):
        first = run(git_repo, env)
        assert first.code == 0, first.err
        again = run(git_repo, env, "--resume", first.json()["session_id"], prompt="message alice")
    assert again.code == 0, again.err
    ((refused, is_error),) = tool_results(requests_of(srv, None)[4])
    assert is_error and "teammate alice has ended (completed)" in refused


SANDBOXED = {
    "turns": [{"tool_calls": [spawn("alice", "Write files.", owns=["src/**"])]}, *SPARE],
    "agents": {
        "alice": {
            "turns": [
                {
                    "tool_calls": [
                        call("Bash", command="echo in > src/in.txt", description="own dir"),
                        call("Bash", command="echo out > outside.txt", description="elsewhere"),
                    ]
                },
                {"text": "alice tried both"},
            ]
        }
    },
}


@pytest.mark.skipif(not bwrap_works(), reason="bubblewrap missing or not allowed")
def test_with_the_sandbox_a_teammates_bash_writes_only_its_own_directories(
    git_repo: Path,
) -> None:
    settings(git_repo, {"sandbox": {"enabled": True}})
    with fake(SANDBOXED) as (srv, env):
        result = run(git_repo, env, "--allowedTools", "Bash")
    assert result.code == 0, result.err
    (_, _), (outside, _) = tool_results(requests_of(srv, "alice")[1])
    assert (git_repo / "src" / "in.txt").read_text() == "in\n"
    assert not (git_repo / "outside.txt").exists()
    assert "Read-only file system" in outside and "Exit code" in outside
