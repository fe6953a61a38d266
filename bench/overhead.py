"""Fixed per-request overhead (system prompt + tool schemas) and the loop's own cost per turn.

    .venv/bin/python bench/overhead.py [--turns 1000]

Prints two tables: the overhead and loop cost, then the overhead with 0, 50 and 400 agent
definitions installed (generated files in a temp directory), before and after the Agent
tool's list of types was kept within `subagents.listBudgetChars`.

The overhead is what every request carries before any conversation; Claude
Code 2.1.197's first request carries 108,441 bytes of system prompt and tool definitions
(measured against the fake provider, issue 18; plus 6.9 KB of reminders, not counted).
The loop cost is measured with the scripted model (no network, no delay), each
turn one Read tool call of a small file, so it is covey's own work per turn: building the
request, running the tool, checking permissions, appending messages and emitting events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from covey.agent import Agent
from covey.agent.definitions import load_definitions
from covey.agent.prompt import build_system_prompt
from covey.agent.subagents import AgentTool, SubagentLimits, SubagentRuntime
from covey.agent.subagents_roster import DEFAULT_LIST_BUDGET_CHARS
from covey.messages import Usage
from covey.models.script import Script, ScriptToolCall, ScriptTurn
from covey.models.scripted import ScriptedModel
from covey.models.tokens import estimate_tokens
from covey.tools import core_tools
from covey.tools.base import Tool, ToolContext
from covey.tools.permissions import PermissionPolicy

CLAUDE_CODE_BYTES = 108_441
TARGET_BYTES = 15_000
TARGET_MS_PER_TURN = 2.0
DEFINITION_COUNTS = (0, 50, 400)
DESCRIPTION = (
    "Use this agent when the user asks to review {area} code for correctness, security and "
    "style. It reads the changed files, runs the project's linters and reports each finding "
    "with its file, line and a suggested fix. Example: 'review my {area} changes'."
)
"""~250 characters, two to three sentences: the size of a typical public collection's entry."""
AREAS = ("backend", "frontend", "database", "infrastructure", "mobile", "security", "data")


def write_definitions(workspace: Path, count: int) -> None:
    agents = workspace / ".covey" / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        area = AREAS[i % len(AREAS)]
        name = f"{area}-reviewer-{i:03d}"
        text = f"---\nname: {name}\ndescription: {DESCRIPTION.format(area=area)}\n---\nReview.\n"
        (agents / f"{name}.md").write_text(text)


def session_tools(workspace: Path, budget: int = DEFAULT_LIST_BUDGET_CHARS) -> list[Tool[Any]]:
    """What a session's main agent is given: the core tools and the Agent tool, whose
    description lists the agent types (the three built-ins and those of `workspace`)."""
    definitions = load_definitions(workspace, home=workspace / "home")
    runtime = SubagentRuntime(definitions, limits=SubagentLimits(list_budget_chars=budget))
    spawner = runtime.agent_tool(model=ScriptedModel(Script()), mode="default")
    return [*core_tools(), *([spawner] if spawner else [])]


def request_overhead(
    workspace: Path, budget: int = DEFAULT_LIST_BUDGET_CHARS, *, full: bool = False
) -> tuple[int, int, int]:
    """Bytes of the system prompt and of the tool definitions, as sent to the API."""
    system = build_system_prompt(workspace)
    tools = [
        {"name": s.name, "description": s.description, "input_schema": s.input_schema}
        for s in (t.spec() for t in session_tools(workspace, budget))
    ]
    if full:  # as the list was built before the budget: every description in full
        definitions = load_definitions(workspace, home=workspace / "home").all()
        roster = "\n".join(f"- {d.name}: {d.description}" for d in definitions)
        agent = next(t for t in tools if t["name"] == "Agent")
        agent["description"] = f"{AgentTool.description}\n\nAgent types:\n{roster}"
    return len(system.encode()), len(json.dumps(tools).encode()), len(tools)


def loop_cost(workspace: Path, turns: int) -> list[float]:
    """Seconds per turn for `turns` turns, each one Read call."""
    (workspace / "small.txt").write_text("hello\n" * 20)
    usage = Usage(input=100, output=10)
    script = Script(
        turns=[
            ScriptTurn(
                tool_calls=[ScriptToolCall(name="Read", input={"file_path": "small.txt"})],
                usage=usage,
            )
            for _ in range(turns)
        ]
        + [ScriptTurn(text="done", usage=usage)]
    )
    policy = PermissionPolicy("default", [], [], [], project_root=workspace, workspace=workspace)
    times: list[float] = []
    last = [time.perf_counter()]

    def tick(event: object) -> None:
        from covey.agent import MessageAdded

        if isinstance(event, MessageAdded) and event.message.role == "user":
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now

    agent = Agent(
        ScriptedModel(script),
        session_tools(workspace),
        build_system_prompt(workspace),
        ToolContext(workspace=workspace),
        policy,
        observers=[tick],
    )
    asyncio.run(agent.run("read small.txt many times"))
    return times[1:]  # the first interval is the prompt itself


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        system_b, tools_b, n_tools = request_overhead(ws)
        per_turn = loop_cost(ws, args.turns)
    total = system_b + tools_b
    ms = [t * 1000 for t in per_turn]
    median = statistics.median(ms)
    p99 = statistics.quantiles(ms, n=100)[98]
    rows = [
        ("system prompt", f"{system_b:,} B", f"~{estimate_tokens('x' * system_b):,} tok", ""),
        (
            f"tool schemas ({n_tools} tools)",
            f"{tools_b:,} B",
            f"~{estimate_tokens('x' * tools_b):,} tok",
            "",
        ),
        (
            "fixed overhead per request",
            f"{total:,} B",
            f"~{estimate_tokens('x' * total):,} tok",
            f"target ≤ {TARGET_BYTES:,} B: {'met' if total <= TARGET_BYTES else 'MISSED'}",
        ),
        (
            "vs Claude Code 2.1.197 (108,441 B)",
            f"{total / CLAUDE_CODE_BYTES:.3f}×",
            f"{CLAUDE_CODE_BYTES / total:.1f}× smaller",
            "",
        ),
        (
            f"loop cost per turn, median ({len(ms)} turns)",
            f"{median:.3f} ms",
            "",
            f"target ≤ {TARGET_MS_PER_TURN} ms: "
            f"{'met' if median <= TARGET_MS_PER_TURN else 'MISSED'}",
        ),
        ("loop cost per turn, p99", f"{p99:.3f} ms", "", ""),
        ("loop cost per turn, mean", f"{statistics.fmean(ms):.3f} ms", "", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(width)} | value | tokens / ratio | target |")
    print(f"|{'-' * (width + 2)}|---|---|---|")
    for name, value, extra, target in rows:
        print(f"| {name.ljust(width)} | {value} | {extra} | {target} |")
    print()
    definitions_table()


def definitions_table() -> None:
    """Fixed overhead per request with N definitions: full descriptions vs the budget."""
    print("| definitions | before (full descriptions) | listBudgetChars 8,000 | ratio |")
    print("|---|---|---|---|")
    for count in DEFINITION_COUNTS:
        with tempfile.TemporaryDirectory() as tmp:
            ws = Path(tmp)
            write_definitions(ws, count)
            before = sum(request_overhead(ws, full=True)[:2])
            after = sum(request_overhead(ws)[:2])
        print(
            f"| {count} | {before:,} B (~{before // 4:,} tok) | {after:,} B (~{after // 4:,} tok)"
            f" | {before / after:.1f}× |"
        )


if __name__ == "__main__":
    main()
