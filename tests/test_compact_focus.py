"""`/compact <focus>`: the person's instructions reach the model's summary request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from covey.agent import Compacted
from covey.models.base import ModelRequest, TextSink
from covey.models.script import Script
from covey.models.scripted import ScriptedModel
from test_agent_compact import long_script
from test_agent_loop import Record, make_agent


class RecordingModel(ScriptedModel):
    """The scripted model, keeping every request it answered."""

    def __init__(self, script: Script) -> None:
        super().__init__(script)
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest, on_text: TextSink | None = None) -> Any:
        self.requests.append(request)
        return await super().complete(request, on_text)


def test_manual_compaction_carries_the_focus_instructions(tmp_path: Path) -> None:
    events: list[Compacted] = []
    agent = make_agent(
        tmp_path,
        long_script(4),
        [Record()],
        observers=[lambda e: events.append(e) if isinstance(e, Compacted) else None],
    )
    asyncio.run(agent.run("do four steps"))
    model = RecordingModel(Script.model_validate({"turns": long_script(4)}))
    agent.model = model
    assert asyncio.run(agent.compact("manual", "the failing parser test"))
    [request] = model.requests
    assert request.purpose == "compact"
    assert "Focus the summary on: the failing parser test" in request.messages[-1].text
    assert [e.trigger for e in events] == ["manual"]
