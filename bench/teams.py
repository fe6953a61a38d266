"""Agent teams' task list under contention: many claimers, one store, no double claims.

    .venv/bin/python bench/teams.py [--claimers 32] [--tasks 2000] [--only claims|overhead|latency]

(a) `--claimers` processes race to claim `--tasks` tasks of one team, each walking the ids in
its own random order and calling `update_task(owner=me)` in one write transaction per try
(the TaskUpdate tool's path); a refusal ("owned by …") moves on. Prints claims per second,
tries per second, and double claims: tasks two processes both believe they won, or whose
final owner is not the process that won it (must be 0).

(b) Mail delivery latency with the recipient mid-turn: a real `covey -p` team against the
loopback fake provider. The lead sends `--messages` messages, one per model turn (each answer
delayed 150 ms), while teammate alice works through short Bash calls (`sleep 0.1`); for each
message, the time from its commit (`sent_at`) to alice's first model request that carries it.
Prints p50, p99 and max. The floor is the rest of the tool batch the message lands in.

(c) Token overhead of coordination: the same scripted job (`--files` file writes, one per
turn) done by one agent, and by a lead that starts three teammates each writing a third of
the files. Input tokens as the fake provider bills them (its estimate of each request), team
/ single, and what they are made of, per side (single, lead, teammates): the system prompt
(the teammates' with their team preamble), the core tool schemas, the team tool schemas, and
the conversation (which carries the spawn results, mail and idle notices).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from covey.models.script import Script
from covey.store import Store, teams
from covey.testing.fakeserver import FakeServer


def _claimer(path: str, team_id: str, name: str, tasks: int, gate: Barrier, out: mp.Queue) -> None:  # type: ignore[type-arg]
    store = Store.open(Path(path))
    order = list(range(1, tasks + 1))
    random.Random(name).shuffle(order)
    won, tries = [], 0
    gate.wait()
    started = time.perf_counter()
    for task in order:
        tries += 1
        try:
            with store.write() as conn:
                teams.update_task(conn, team_id, str(task), by=name, owner=name)
            won.append(task)
        except teams.TeamRefused:
            pass
    out.put((name, won, tries, time.perf_counter() - started))
    store.close()


def _latency_script(messages: int) -> dict[str, Any]:
    def call(tool: str, **tool_input: Any) -> dict[str, Any]:
        return {"name": tool, "input": tool_input}

    spawn = {
        "name": "Agent",
        "input": {"name": "alice", "description": "worker", "prompt": "Work through the list."},
    }
    sends = [
        {"delay_s": 0.15, "tool_calls": [call("SendMessage", to="alice", message=f"MSG-{i:03d}")]}
        for i in range(messages)
    ]
    work = [
        {"tool_calls": [call("Bash", command="sleep 0.1", description="work")]}
        for _ in range(messages * 3)
    ]
    spare = [{"text": "done"} for _ in range(messages + 5)]
    return {
        "turns": [{"tool_calls": [spawn]}, *sends, *spare],
        "agents": {"alice": {"turns": [*work, *spare]}},
    }


def _latency(messages: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        repo, home = Path(tmp) / "repo", Path(tmp) / "home"
        repo.mkdir()
        home.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        script = Script.model_validate(_latency_script(messages))
        with FakeServer(script) as srv:
            env = {
                **os.environ,
                "COVEY_HOME": str(home),
                "COVEY_EXPERIMENTAL_AGENT_TEAMS": "1",
                "ANTHROPIC_API_KEY": "bench",
                "ANTHROPIC_BASE_URL": srv.url,
            }
            argv = [sys.executable, "-m", "covey", "-p", "go", "--model"]
            argv += ["anthropic:claude-sonnet-4-5", "--permission-mode", "bypassPermissions"]
            subprocess.run(argv, cwd=repo, env=env, check=True, capture_output=True, timeout=600)
            alice = [
                (datetime.fromisoformat(r["ts"]).timestamp(), json.dumps(r["body"]["messages"]))
                for r in srv.requests
                if r["agent"] == "alice" and r["turn"] is not None
            ]
        with Store.open(home / "covey.db") as store, store.read() as conn:
            sent = conn.execute(
                "SELECT body, sent_at FROM team_mailbox WHERE recipient = 'alice'"
            ).fetchall()
    latencies = []
    for body, sent_at in sent:
        first = min(ts for ts, text in alice if body in text)
        latencies.append(first - sent_at)
    return sorted(latencies)


def _run_team_job(script: dict[str, Any], teams_on: bool) -> list[dict[str, Any]]:
    """Run `covey -p` on `script` in a fresh repository and home; the fake server's requests."""
    with tempfile.TemporaryDirectory() as tmp:
        repo, home = Path(tmp) / "repo", Path(tmp) / "home"
        repo.mkdir()
        home.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        with FakeServer(Script.model_validate(script)) as srv:
            env = {
                **os.environ,
                "COVEY_HOME": str(home),
                "ANTHROPIC_API_KEY": "bench",
                "ANTHROPIC_BASE_URL": srv.url,
            }
            if teams_on:
                env["COVEY_EXPERIMENTAL_AGENT_TEAMS"] = "1"
            else:
                env.pop("COVEY_EXPERIMENTAL_AGENT_TEAMS", None)
            argv = [sys.executable, "-m", "covey", "-p", "go", "--model"]
            argv += ["anthropic:claude-sonnet-4-5", "--permission-mode", "bypassPermissions"]
            subprocess.run(argv, cwd=repo, env=env, check=True, capture_output=True, timeout=600)
            return [r for r in srv.requests if r["turn"] is not None]


def _overhead(files: int) -> None:
    def write(i: int) -> dict[str, Any]:
        args = {"file_path": f"f{i:02d}.txt", "content": f"file {i}\n"}
        return {"tool_calls": [{"name": "Write", "input": args}]}

    single = {"turns": [*(write(i) for i in range(files)), {"text": "done"}]}
    mates = ["ann", "bo", "cy"]
    share = [list(range(files))[k :: len(mates)] for k in range(len(mates))]
    spawns = [
        {
            "name": "Agent",
            "input": {
                "name": m,
                "description": f"files {m}",
                "prompt": f"Write files {', '.join(f'f{i:02d}.txt' for i in share[k])}.",
            },
        }
        for k, m in enumerate(mates)
    ]
    team = {
        "turns": [{"tool_calls": spawns}, *({"text": "waiting"} for _ in range(len(mates) + 3))],
        "agents": {
            m: {"turns": [*(write(i) for i in share[k]), {"text": f"{m}: wrote my files"}]}
            for k, m in enumerate(mates)
        },
    }
    one = _run_team_job(single, teams_on=False)
    many = _run_team_job(team, teams_on=True)
    tokens_one = sum(r["usage"]["input"] for r in one)
    tokens_many = sum(r["usage"]["input"] for r in many)
    sides = {
        "single": one,
        "lead": [r for r in many if r["agent"] is None],
        "teammates": [r for r in many if r["agent"] in mates],
    }
    print(f"{'team / single (input tokens)':<34}{tokens_many / tokens_one:>10.2f}")
    print(f"{'single: input tokens':<34}{tokens_one:>10,}")
    print(f"{'team: input tokens':<34}{tokens_many:>10,}")
    print()
    parts = ("requests", "billed", "system", "core tools", "team tools", "conversation")
    print(f"{'':<12}" + "".join(f"{p:>14}" for p in parts))
    for side, requests in sides.items():
        total = dict.fromkeys(parts, 0)
        for r in requests:
            total["requests"] += 1
            total["billed"] += r["usage"]["input"]
            for part, tokens in _request_parts(r["body"]).items():
                total[part] += tokens
        print(f"{side:<12}" + "".join(f"{total[p]:>14,}" for p in parts))
    print(f"{'preamble (per teammate request)':<34}{_preamble_tokens(mates):>10,}")


_TEAM_TOOLS = {"TaskCreate", "TaskUpdate", "TaskGet", "TaskList", "SendMessage"}


def _request_parts(body: dict[str, Any]) -> dict[str, int]:
    """A request body's input tokens (the fake provider's estimate: UTF-8 bytes / 4) by part;
    the rest of the body (model, max_tokens, stream…) is in `billed` only."""

    def tokens(value: Any) -> int:
        return len(json.dumps(value, separators=(",", ":")).encode()) // 4

    tools = body.get("tools", [])
    return {
        "system": tokens(body.get("system", "")),
        "core tools": tokens([t for t in tools if t["name"] not in _TEAM_TOOLS]),
        "team tools": tokens([t for t in tools if t["name"] in _TEAM_TOOLS]),
        "conversation": tokens(body["messages"]),
    }


def _preamble_tokens(mates: list[str]) -> int:
    from covey.models.tokens import estimate_tokens
    from covey.store.teams import LEAD, MemberRow
    from covey.teams.text import preamble

    members = [MemberRow("t", n, "") for n in (LEAD, *mates)]
    return estimate_tokens(preamble(members[1], members))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claimers", type=int, default=32)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=30)
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--only", choices=("claims", "overhead", "latency"))
    args = parser.parse_args()
    code = 0
    if args.only in (None, "claims"):
        code = _claims(args)
    if args.only in (None, "overhead"):
        _overhead(args.files)
    if args.only in (None, "latency"):
        lat = _latency(args.messages)
        p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
        print(f"{'messages':<22}{len(lat):>12}")
        print(f"{'latency p50 (ms)':<22}{statistics.median(lat) * 1000:>12.0f}")
        print(f"{'latency p99 (ms)':<22}{p99 * 1000:>12.0f}")
        print(f"{'latency max (ms)':<22}{lat[-1] * 1000:>12.0f}")
    return code


def _claims(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "covey.db"
        names = [f"c{i:02d}" for i in range(args.claimers)]
        with Store.open(path) as store, store.write() as conn:
            team_id = teams.ensure_team(conn, "lead0001").id
            for i, name in enumerate(names):
                teams.add_member(conn, team_id, name, f"sid{i:05d}")
            for i in range(args.tasks):
                teams.create_task(conn, team_id, f"task {i + 1}", "benchmark task")
        ctx = mp.get_context("spawn")
        gate, out = ctx.Barrier(len(names) + 1), ctx.Queue()
        procs = [
            ctx.Process(target=_claimer, args=(str(path), team_id, n, args.tasks, gate, out))
            for n in names
        ]
        for p in procs:
            p.start()
        gate.wait()
        started = time.perf_counter()
        results = [out.get(timeout=600) for _ in procs]
        elapsed = time.perf_counter() - started
        for p in procs:
            p.join()
        with Store.open(path) as store, store.read() as conn:
            owners = {int(t.id): t.owner for t in teams.list_tasks(conn, team_id)}
    winners: dict[int, list[str]] = {}
    for name, won, _, _ in results:
        for task in won:
            winners.setdefault(task, []).append(name)
    doubles = sum(1 for w in winners.values() if len(w) > 1)
    doubles += sum(1 for task, w in winners.items() if owners.get(task) != w[0])
    unclaimed = sum(1 for o in owners.values() if o is None)
    tries = sum(r[2] for r in results)
    print(f"{'claimers':<22}{args.claimers:>12}")
    print(f"{'tasks':<22}{args.tasks:>12}")
    print(f"{'wall time (s)':<22}{elapsed:>12.2f}")
    print(f"{'claims / s':<22}{len(winners) / elapsed:>12.0f}")
    print(f"{'tries / s':<22}{tries / elapsed:>12.0f}")
    print(f"{'double claims':<22}{doubles:>12}")
    print(f"{'unclaimed tasks':<22}{unclaimed:>12}")
    return 1 if doubles or unclaimed else 0


if __name__ == "__main__":
    sys.exit(main())
