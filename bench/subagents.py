"""Subagents: parallel efficiency of concurrent subagents, and the context a subagent saves.

    .venv/bin/python bench/subagents.py [--files 20] [--file-bytes 2000]

Prints a markdown table. Both parts run the real agent loop and Agent tool with the scripted
model (offline), records kept in memory (`MemoryRecorder`).

- Parallel efficiency: one parent turn launches N subagents at once; each answers after a
  scripted 1 s model call. Ideal wall time = 1 s (they all wait at once); efficiency = ideal /
  actual wall time of the whole parent run (its own two turns included). `maxConcurrent` = N.
- Context saved: the parent's context growth (input tokens of its last request minus those of
  its first, from the scripted model's token estimate: bytes of the JSON request / 4) when it
  reads N files itself, versus when it hands "read them and summarise" to one subagent that
  reads the same files and returns a 200-character summary (plus the JSON trailer).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from covey.agent import Agent, AgentEvent, MessageAdded
from covey.agent.definitions import load_definitions
from covey.agent.subagents import SubagentLimits, SubagentRuntime
from covey.models.script import Script
from covey.models.scripted import ScriptedModel
from covey.tools import core_tools
from covey.tools.base import ToolContext
from covey.tools.permissions import PermissionPolicy

DELAY_S = 1.0
TARGET_EFFICIENCY_AT_10 = 0.9


def _agent(ws: Path, script: dict[str, Any], max_concurrent: int) -> tuple[Agent, list[int]]:
    model = ScriptedModel(Script.model_validate(script))
    runtime = SubagentRuntime(
        load_definitions(ws, home=ws / "home"),
        limits=SubagentLimits(max_depth=1, max_concurrent=max_concurrent),
        env={},
    )
    tool = runtime.agent_tool(model=model, mode="default")
    assert tool is not None
    inputs: list[int] = []

    def watch(event: AgentEvent) -> None:
        if isinstance(event, MessageAdded) and event.usage is not None:
            inputs.append(event.usage.input)

    agent = Agent(
        model,
        [*core_tools(), tool],
        "You are the parent.",
        ToolContext(ws),
        PermissionPolicy("default", ["Agent"], [], [], ws, ws),
        observers=[watch],
        inbox=tool.inbox,
    )
    return agent, inputs


def parallel(ws: Path, n: int) -> tuple[float, float]:
    calls = [
        {"name": "Agent", "input": {"description": f"job {i}", "prompt": f"do job {i}"}}
        for i in range(n)
    ]
    script = {
        "turns": [{"tool_calls": calls}, {"text": "all done"}],
        "agents": {"general-purpose": {"turns": [{"delay_s": DELAY_S, "text": "job done"}]}},
    }
    agent, _ = _agent(ws, script, max_concurrent=n)
    started = time.perf_counter()
    asyncio.run(agent.run("run the jobs"))
    wall = time.perf_counter() - started
    return wall, DELAY_S / wall


def context_growth(ws: Path, files: int, size: int, delegate: bool) -> int:
    names = [f"f{i:02d}.txt" for i in range(files)]
    for i, name in enumerate(names):
        line = f"file {i}: " + "lorem ipsum dolor sit amet " * 4 + "\n"
        (ws / name).write_text((line * (size // len(line) + 1))[:size])
    reads = [{"name": "Read", "input": {"file_path": name}} for name in names]
    summary = "Summary: " + "the files hold lorem ipsum lines, one per file index. " * 4
    if delegate:
        call = {"description": "read files", "prompt": f"Read {', '.join(names)}; summarise."}
        script = {
            "turns": [{"tool_calls": [{"name": "Agent", "input": call}]}, {"text": "ok"}],
            "agents": {
                "general-purpose": {"turns": [{"tool_calls": reads}, {"text": summary[:200]}]}
            },
        }
    else:
        script = {"turns": [{"tool_calls": reads}, {"text": "ok"}]}
    agent, inputs = _agent(ws, script, max_concurrent=10)
    asyncio.run(agent.run("read the files and tell me what they hold"))
    return inputs[-1] - inputs[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--file-bytes", type=int, default=2000)
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        for n in (10, 50):
            wall, eff = parallel(ws, n)
            target = f"≥ {TARGET_EFFICIENCY_AT_10}" if n == 10 else ""
            rows.append(
                (
                    f"{n} subagents × 1 s, wall time / efficiency",
                    f"{wall:.3f} s / {eff:.2f}",
                    target,
                )
            )
        own = context_growth(ws, args.files, args.file_bytes, delegate=False)
        via = context_growth(ws, args.files, args.file_bytes, delegate=True)
    label = f"{args.files} files × {args.file_bytes} B"
    rows.append((f"parent context growth, reads {label} itself", f"{own:,} tokens", ""))
    rows.append(("parent context growth, one subagent reads them", f"{via:,} tokens", ""))
    rows.append(("context saved (own / via subagent)", f"{own / via:.1f}×", ""))
    print("| measure | value | target |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {' | '.join(row)} |")


if __name__ == "__main__":
    main()
