"""The scripted-model format, shared by `ScriptedModel` and the fake provider server.

A script (JSON or YAML) is::

    turns:                      # the main agent's turns, in order
      - text: "I'll look at the test."
        tool_calls: [{name: Read, input: {file_path: tests/test_calc.py}}]
        delay_s: 0.5            # optional: wait before answering
        usage: {input: 1200, output: 40, cache_read: 0, cache_write: 0}   # optional
        faults:                 # optional, fake server only: one per attempt at this turn
          - {status: 429, retry_after: 0.1}
          - {drop: before_blocks}
          - {malformed: not_json, at: mid_text}   # or bad_index: a delta for no block
      - text: "Fixed."
    agents:                     # optional: per-agent scripts, chosen by agent name
      reviewer: {turns: [...]}

A turn is chosen by counting the assistant messages already in the conversation, so the
choice is stateless: a resumed or retried conversation asks for the same turn again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from covey.errors import ModelError, UserError
from covey.messages import Message, Usage, compacted_turns

__all__ = [
    "Script",
    "ScriptFault",
    "ScriptToolCall",
    "ScriptTurn",
    "load_script",
    "select_turn",
    "tool_use_id",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScriptToolCall(_Strict):
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


StreamPoint = Literal["before_blocks", "mid_text", "mid_tool"]


class ScriptFault(_Strict):
    """One failed attempt. Either an HTTP error status, a stream dropped at a point, or a
    stream with a malformed event in it."""

    status: int | None = None
    retry_after: float | None = None
    message: str | None = None
    drop: StreamPoint | None = None
    malformed: Literal["not_json", "bad_index"] | None = None
    """`not_json`: a `data:` line that is not JSON; `bad_index`: a delta for a content block
    (OpenAI: a tool call) that was never started. Sent at `at`; the stream then goes on."""
    at: StreamPoint | None = None
    """Where a `malformed` event goes, default `mid_text` (a point the reply lacks falls back
    to `before_blocks`)."""


class ScriptTurn(_Strict):
    text: str | None = None
    tool_calls: list[ScriptToolCall] = Field(default_factory=list)
    delay_s: float = 0.0
    usage: Usage | None = None
    faults: list[ScriptFault] = Field(default_factory=list)
    stop_reason: str | None = None
    """Overrides the natural stop reason (tool_use when there are tool calls, else end_turn)."""

    @property
    def natural_stop_reason(self) -> str:
        return self.stop_reason or ("tool_use" if self.tool_calls else "end_turn")


class AgentScript(_Strict):
    turns: list[ScriptTurn]


class Script(_Strict):
    turns: list[ScriptTurn] = Field(default_factory=list)
    agents: dict[str, AgentScript] = Field(default_factory=dict)

    def turns_for(self, agent_name: str | None) -> list[ScriptTurn]:
        if agent_name and agent_name in self.agents:
            return self.agents[agent_name].turns
        return self.turns


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~30× faster
_PARSED: dict[tuple[str, str], Script] = {}
"""(suffix, text) → its Script: a supervisor starting many sessions on one script parses it
once (scripts are never changed after loading). Keyed by the text, so never stale."""
_PARSED_MAX = 32


def load_script(path: str | Path) -> Script:
    """Read and validate a script file; a bad file is a `UserError` naming it."""
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read script {p}: {e.strerror or e}") from None
    key = (p.suffix, raw)
    if (known := _PARSED.get(key)) is not None:
        return known
    script = _parse(p, raw)
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[key] = script
    return script


def _parse(p: Path, raw: str) -> Script:
    try:
        data = json.loads(raw) if p.suffix == ".json" else yaml.load(raw, Loader=_YAML_LOADER)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"script {p} is not valid JSON/YAML: {first}") from None
    try:
        return Script.model_validate(data if data is not None else {})
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "(top level)"
        raise UserError(f"script {p}: field {where}: {err['msg']}") from None


def select_turn(
    script: Script, messages: list[Message], agent_name: str | None = None
) -> tuple[int, ScriptTurn]:
    """The turn to answer with: index = number of assistant turns so far, counting those a
    compaction summary stands for."""
    turns = script.turns_for(agent_name)
    index = compacted_turns(messages) + sum(1 for m in messages if m.role == "assistant")
    if index >= len(turns):
        who = f"agent {agent_name!r}" if agent_name in script.agents else "the main agent"
        raise ModelError(
            f"scripted model: the script for {who} has {len(turns)} turn(s); "
            f"the conversation asks for turn {index + 1}"
        )
    return index, turns[index]


def tool_use_id(turn_index: int, call_index: int) -> str:
    """Deterministic ids, unique within a conversation."""
    return f"toolu_{turn_index:03d}_{call_index:02d}"
