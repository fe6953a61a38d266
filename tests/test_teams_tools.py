"""The team tools' schemas: sent with every request of every member, so kept lean."""

from __future__ import annotations

import json

from covey.teams.tools import team_tools


def test_team_tool_schemas_have_no_null_alternatives_or_null_defaults() -> None:
    specs = {t.name: t.spec() for t in team_tools(None)}  # type: ignore[arg-type]
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
