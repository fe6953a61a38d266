"""The team tools' schemas: sent with every request of every member, so kept lean."""

from __future__ import annotations

import json

from covey.models.base import ToolSpec
from covey.store.teams import LEAD
from covey.teams.bell import Bell
from covey.teams.seat import TeamSeat
from covey.teams.tools import team_tools


def _seat(name: str) -> TeamSeat:
    return TeamSeat(None, "team", "session-x", name, "s1", None, Bell())  # type: ignore[arg-type]


def test_team_tool_schemas_have_no_null_alternatives_or_null_defaults() -> None:
    specs = {t.name: t.spec() for t in team_tools(_seat(LEAD))}
    assert list(specs) == ["TaskCreate", "TaskUpdate", "TaskGet", "TaskList", "SendMessage"]
    text = json.dumps([s.input_schema for s in specs.values()])
    assert '"null"' not in text and '"default"' not in text
    update = specs["TaskUpdate"].input_schema
    assert update["required"] == ["taskId"]
    assert update["properties"]["status"] == {
        "enum": ["pending", "in_progress", "completed", "deleted"],
        "type": "string",
    }
    message = specs["SendMessage"].input_schema["properties"]["message"]
    assert message["anyOf"][0] == {"type": "string"}  # text or a structured object


def test_a_teammates_team_tools_take_the_same_input_in_fewer_tokens() -> None:
    """A teammate's tools go with each of its requests; its preamble says how to work, so
    their descriptions are brief, and the input shapes stay the reference's."""
    lead = {t.name: t.spec() for t in team_tools(_seat(LEAD))}
    mate = {t.name: t.spec() for t in team_tools(_seat("alice"))}

    def size(specs: dict[str, ToolSpec]) -> int:
        return len(json.dumps([(s.name, s.description, s.input_schema) for s in specs.values()]))

    assert list(mate) == list(lead)
    for name, spec in mate.items():
        assert set(spec.input_schema["properties"]) == set(lead[name].input_schema["properties"])
        assert spec.input_schema.get("required") == lead[name].input_schema.get("required")
    assert size(mate) < 0.7 * size(lead), (size(mate), size(lead))
    # what stays: the dependency directions, which their names do not make plain
    assert "description" in mate["TaskUpdate"].input_schema["properties"]["addBlockedBy"]
