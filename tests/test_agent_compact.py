"""Compaction and hook points in the loop, with the scripted model."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from covey.agent import Agent, Compacted, RequestBilled
from covey.agent.hooks import NoHooks
from covey.errors import BudgetExceeded
from covey.messages import Message, TextBlock, ToolUseBlock, Usage, compacted_turns
from covey.models.base import ModelRequest, ModelResponse, TextSink
from covey.models.scripted import ScriptedModel
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


class SummaryReplies:
    """The scripted model for the agent's own turns; compaction requests get `replies` in
    order (and are kept in `asked`)."""

    def __init__(self, inner: ScriptedModel, replies: list[Message]) -> None:
        self.inner = inner
        self.replies = replies
        self.asked: list[ModelRequest] = []

    @property
    def name(self) -> str:
        return "summary-replies"

    @property
    def context_window(self) -> int:
        return self.inner.context_window

    async def complete(
        self, request: ModelRequest, on_text: TextSink | None = None
    ) -> ModelResponse:
        if request.purpose != "compact":
            return await self.inner.complete(request, on_text)
        self.asked.append(request)
        reply = self.replies.pop(0) if self.replies else Message(role="assistant", content=[])
        return ModelResponse(reply, "end_turn", Usage(input=10, output=1), "test")


NO_TEXT = Message(
    role="assistant", content=[ToolUseBlock(id="toolu_x", name="Record", input={"text": "x"})]
)
BIG = "x" * 1000


def summarising_agent(tmp_path: Path, replies: list[Message], events: list[Compacted]) -> Agent:
    agent = make_agent(
        tmp_path,
        long_script(6),
        [Record()],
        auto_compact_tokens=3000,
        observers=[lambda e: events.append(e) if isinstance(e, Compacted) else None],
    )
    assert isinstance(agent.model, ScriptedModel)
    agent.model = SummaryReplies(agent.model, replies)
    return agent


def test_a_summary_without_text_is_asked_again_with_no_tool_calls_allowed(tmp_path: Path) -> None:
    events: list[Compacted] = []
    text = Message(role="assistant", content=[TextBlock(text="SUMMARY of the first steps")])
    agent = summarising_agent(tmp_path, [NO_TEXT, text], events)
    assert asyncio.run(agent.run("go")).result == "finished"
    assert isinstance(agent.model, SummaryReplies)
    first, retry = agent.model.asked[:2]
    assert first.allow_tool_calls and not retry.allow_tool_calls
    assert retry.tools == first.tools != [], "the tools are still described"
    assert events[0].method == "summary_without_tools"
    assert events[0].summary == "SUMMARY of the first steps"
    assert "SUMMARY of the first steps" in agent.messages[0].text


def test_no_summary_twice_keeps_the_history_and_trims_old_tool_outputs(tmp_path: Path) -> None:
    events: list[Compacted] = []
    turns = [
        {"tool_calls": [call("Record", text=f"{i} {BIG}")], "usage": {"input": 1000 + 600 * i}}
        for i in range(6)
    ]
    agent = make_agent(
        tmp_path,
        [*turns, {"text": "finished"}],
        [Record()],
        auto_compact_tokens=3000,
        observers=[lambda e: events.append(e) if isinstance(e, Compacted) else None],
    )
    assert isinstance(agent.model, ScriptedModel)
    agent.model = SummaryReplies(agent.model, [])  # never any text
    assert asyncio.run(agent.run("go")).result == "finished"
    assert events and all(e.method == "trimmed_tool_outputs" for e in events)
    assert "no summary" in events[0].summary and "trimmed" in events[0].summary
    assert agent.messages[0].text == "go", "the history is kept"
    assert sum(1 for m in agent.messages if m.role == "assistant") == 7
    outputs = [r.content for m in agent.messages for r in m.tool_results]
    assert len(outputs) == 6
    assert all(len(o) < 400 and "trimmed" in o for o in outputs[:3]), outputs
    assert outputs[-1] == f"recorded 5 {BIG}", "the latest turns stay verbatim"
    assert len(agent.model.asked) == 2 * len(events), "each asked twice before trimming"


def test_summary_requests_pass_the_request_guard_and_are_billed(tmp_path: Path) -> None:
    """The budget's guard sees a compaction's summary request like any other and can refuse
    it; what a summary request costs reaches the observers (and so the usage ledger)."""
    seen: list[str] = []
    billed: list[RequestBilled] = []

    @contextlib.asynccontextmanager
    async def guard(request: ModelRequest, _model: Any) -> AsyncIterator[None]:
        seen.append(request.purpose)
        if request.purpose == "compact" and seen.count("compact") > 1:
            raise BudgetExceeded("session", 1.0, 1.0, 0.5)
        yield

    agent = make_agent(
        tmp_path,
        long_script(12),
        [Record()],
        auto_compact_tokens=3000,
        request_guard=guard,
        observers=[lambda e: billed.append(e) if isinstance(e, RequestBilled) else None],
    )
    with pytest.raises(BudgetExceeded):
        asyncio.run(agent.run("do twelve steps"))
    assert seen.count("compact") == 2 and seen[-1] == "compact", seen
    assert [b.purpose for b in billed] == ["compact"], "only the answered summary is billed"
    assert billed[0].usage.total_input > 0
    assert agent.usage.input >= billed[0].usage.input
