"""Compaction and hook points in the loop, with the scripted model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from covey.agent import Compacted
from covey.agent.hooks import NoHooks
from covey.messages import compacted_turns
from test_agent_loop import Record, call, make_agent


def long_script(turns: int) -> list[dict[str, Any]]:
    script: list[dict[str, Any]] = [
        {
            "text": f"step {i}",
            "tool_calls": [call("Record", text=str(i))],
            "usage": {"input": 1000 + 500 * i, "output": 50},
        }
        for i in range(turns)
    ]
    return [*script, {"text": "finished", "usage": {"input": 10, "output": 5}}]


def test_a_tiny_window_forces_compaction_and_the_run_completes(tmp_path: Path) -> None:
    events: list[Compacted] = []
    rec = Record()
    agent = make_agent(
        tmp_path,
        long_script(12),
        [rec],
        auto_compact_tokens=3000,
        observers=[lambda e: events.append(e) if isinstance(e, Compacted) else None],
    )
    result = asyncio.run(agent.run("do twelve steps"))
    assert result.result == "finished"
    assert rec.seen == [str(i) for i in range(12)], "no turn was skipped or repeated"
    assert len(events) >= 2
    first = agent.messages[0]
    assert first.role == "user" and first.text.startswith("<compact-summary")
    assert "step 0" in events[0].summary
    # The summary stands for the dropped turns, so turn counting stays exact.
    assert (
        compacted_turns(agent.messages) + sum(1 for m in agent.messages if m.role == "assistant")
        == 13
    )


class BlockTwice(NoHooks):
    def __init__(self) -> None:
        self.calls: list[bool] = []

    async def stop(self, final_text: str, stop_hook_active: bool) -> str:
        self.calls.append(stop_hook_active)
        return "keep going" if len(self.calls) <= 2 else ""


class NoCompaction(NoHooks):
    def __init__(self) -> None:
        self.asked = 0

    async def pre_compact(self, trigger: str) -> bool:
        self.asked += 1
        return False


def test_a_stop_hook_keeps_the_agent_working(tmp_path: Path) -> None:
    hooks = BlockTwice()
    turns = [{"text": "one"}, {"text": "two"}, {"text": "three"}]
    agent = make_agent(tmp_path, turns, [Record()], hooks=hooks)
    result = asyncio.run(agent.run("go"))
    assert result.result == "three" and hooks.calls == [False, True, True]
    assert [m.text for m in agent.messages if m.role == "user"] == [
        "go",
        "keep going",
        "keep going",
    ]


def test_a_pre_compact_hook_can_block_compaction(tmp_path: Path) -> None:
    hooks = NoCompaction()
    agent = make_agent(tmp_path, long_script(4), [Record()], auto_compact_tokens=10, hooks=hooks)
    assert asyncio.run(agent.run("go")).result == "finished"
    assert hooks.asked == 4
    assert agent.messages[0].text == "go"
