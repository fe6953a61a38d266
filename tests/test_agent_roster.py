"""The agent types in the Agent tool's description stay within `subagents.listBudgetChars`."""

from __future__ import annotations

import json
from pathlib import Path

from clitools import covey
from covey.agent.definitions import AgentDefinition, load_definitions
from covey.agent.subagents import SubagentLimits, SubagentRuntime
from covey.agent.subagents_roster import NAMES_ONLY_HEADER, agent_roster, first_sentence
from covey.models.script import Script
from covey.models.scripted import ScriptedModel
from covey.testing.fakeserver import FakeServer

LONG = (
    "Reviews pull requests for security problems in web applications. "
    + "It reads every changed file, runs the linters and explains each finding. " * 30
)


def write_definitions(root: Path, count: int) -> None:
    agents = root / ".covey" / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        text = f"---\nname: reviewer-{i:03d}\ndescription: {LONG}\n---\nYou review code.\n"
        (agents / f"reviewer-{i:03d}.md").write_text(text)


def test_first_sentence_is_cut_to_120_characters() -> None:
    assert first_sentence("Finds files. Then more.") == "Finds files."
    assert first_sentence("\n  Plans work.\nSecond line.") == "Plans work."
    cut = first_sentence("x" * 300)
    assert len(cut) == 120 and cut.endswith("…")


def test_roster_within_budget_lists_every_name(tmp_path: Path) -> None:
    definitions = [
        AgentDefinition(f"agent-{i}", LONG, "p", scope="project" if i % 2 else "user")
        for i in range(400)
    ]
    roster = agent_roster(definitions, 8_000)
    assert len(roster) <= 8_000
    assert all(f"agent-{i}" in roster for i in range(400))
    assert "- agent-0: Reviews pull requests for security problems in web applications.\n" in roster
    names_only = roster.split(NAMES_ONLY_HEADER, 1)[1]
    assert "- project: " in names_only and "- user: " in names_only
    assert "Reviews" not in names_only


def test_a_small_collection_is_described_in_full(tmp_path: Path) -> None:
    write_definitions(tmp_path, 3)
    runtime = SubagentRuntime(load_definitions(tmp_path, home=tmp_path / "home"))
    tool = runtime.agent_tool(model=ScriptedModel(Script()), mode="default")
    assert tool is not None
    description = tool.spec().description
    assert NAMES_ONLY_HEADER not in description
    assert description.count("Reviews pull requests for security problems") == 3
    assert "general-purpose: " in description


def test_names_past_the_budget_stay_usable(tmp_path: Path) -> None:
    write_definitions(tmp_path, 50)
    limits = SubagentLimits(list_budget_chars=1_000)
    runtime = SubagentRuntime(load_definitions(tmp_path, home=tmp_path / "home"), limits=limits)
    tool = runtime.agent_tool(model=ScriptedModel(Script()), mode="default")
    assert tool is not None
    roster = tool.spec().description.split("Agent types:\n", 1)[1]
    assert len(roster) <= 1_000
    assert NAMES_ONLY_HEADER in roster
    assert runtime.definition("reviewer-049").name == "reviewer-049"


def test_settings_budget_reaches_the_request(git_repo: Path) -> None:
    write_definitions(git_repo, 400)
    (git_repo / ".covey" / "settings.json").write_text(
        json.dumps({"subagents": {"listBudgetChars": 6_000}})
    )
    script = Script.model_validate({"turns": [{"text": "ok"}]})
    with FakeServer(script) as server:
        env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": server.url}
        run = covey("-p", "hi", "--model", "anthropic:claude-sonnet-4-5", cwd=git_repo, env=env)
        tools = server.requests[0]["body"]["tools"]
    assert run.code == 0, run.err
    agent = next(t for t in tools if t["name"] == "Agent")
    roster = agent["description"].split("Agent types:\n", 1)[1]
    assert len(roster) <= 6_000  # the 400 names alone take ~5,700; the default would be 8,000
    assert roster.startswith("- reviewer-000: Reviews pull requests")
    assert all(f"reviewer-{i:03d}" in roster for i in range(400))


def test_roster_meets_every_budget_the_names_fit_in() -> None:
    definitions = [
        AgentDefinition(f"t-{i}", f"Does task {i}. More.", "p", scope=("project", "user")[i % 2])
        for i in range(60)
    ]
    names_only = len(agent_roster(definitions, 0))
    for budget in range(names_only, names_only + 1_500, 7):
        roster = agent_roster(definitions, budget)
        assert len(roster) <= budget
        assert all(f"t-{i}" in roster for i in range(60))
