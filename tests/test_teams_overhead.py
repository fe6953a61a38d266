"""What a teammate's requests carry, kept small because it goes with each of them: no tool
nobody could answer (AskUserQuestion), an Agent tool without `name` (teammates cannot start
teammates), brief team tools, a short preamble; the shutdown how-to only with a shutdown
request; terse idle notices. `bench/teams.py --only overhead` measures the whole."""

from __future__ import annotations

import json
from pathlib import Path

from teamtools import call, fake, requests_of, run, spawn, texts, tool_names, tool_results

JOB = {
    "turns": [
        {"tool_calls": [spawn("alice", "Say hello.")]},
        {"text": "waiting"},
        {"tool_calls": [call("SendMessage", to="alice", message={"type": "shutdown_request"})]},
        {"text": "asked alice to stop"},
        {"text": "LEAD-FINAL"},
        {"text": "spare"},
        {"text": "spare"},
    ],
    "agents": {
        "alice": {
            "turns": [
                {"delay_s": 1.0, "tool_calls": [spawn("bob", "Nested?")]},
                {"text": "ALICE-HELLO"},
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
                {"text": "spare"},
            ]
        }
    },
}


def _tool(request: dict[str, object], name: str) -> dict[str, object]:
    tools = request["body"]["tools"]  # type: ignore[index]
    return next(t for t in tools if t["name"] == name)  # type: ignore[no-any-return]


def test_a_teammates_requests_carry_only_what_it_can_use(git_repo: Path) -> None:
    with fake(JOB) as (srv, env):
        result = run(git_repo, env)
    assert result.code == 0, result.err
    lead, alice = requests_of(srv, None), requests_of(srv, "alice")
    assert "AskUserQuestion" in tool_names(lead[0])
    assert "AskUserQuestion" not in tool_names(alice[0])
    assert "name" in _tool(lead[0], "Agent")["input_schema"]["properties"]  # type: ignore[index]
    mate_agent = _tool(alice[0], "Agent")["input_schema"]
    assert "name" not in mate_agent["properties"]  # type: ignore[index]
    assert "null" not in json.dumps(mate_agent)
    # a name anyway: the clear refusal, as before
    ((refused, is_error),) = tool_results(alice[1])
    assert is_error and "teammates cannot start teammates" in refused
    lead_update = _tool(lead[0], "TaskUpdate")
    mate_update = _tool(alice[0], "TaskUpdate")
    assert len(json.dumps(mate_update)) < len(json.dumps(lead_update))
    system = alice[0]["body"]["system"][0]["text"]
    assert 'You are teammate "alice"' in system and "shutdown" not in system
    # the how-to comes with the request itself
    asked = next(r for r in alice if "shutdown_request" in texts(r))
    assert "shutdown_response" in texts(asked) and '\\"approve\\": true' in texts(asked)
    idle = next(texts(r) for r in lead if "ALICE-HELLO" in texts(r))
    assert "state: idle" not in idle and "session: " in idle
