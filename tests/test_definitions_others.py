"""Subagent definitions written by others: the lenient reading, odd tool lists, unknown models,
name clashes, and what `covey -p --agent` says about a file it skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from clitools import covey
from covey.agent.definitions import load_definitions, resolve_tools
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer

SUB = ["Read", "Write", "Edit", "Glob", "Grep", "Bash", "Agent"]


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _agents_dir(repo: Path) -> Path:
    return repo / ".covey" / "agents"


EXAMPLE_STYLE = """---
name: test-writer
description: Use this agent when code needs tests. Examples:

<example>
Context: The user just added a parser.
user: "I added parse_date(), can you cover it?"
assistant: "I'll use the test-writer agent to write the tests."
<commentary>
New code without tests: call test-writer.
</commentary>
</example>
tools: Read, Write, Bash
color: green
---
Write focused pytest tests.
"""


def test_the_lenient_reading_keeps_an_example_style_description_whole(
    tmp_path: Path, user_home: Path
) -> None:
    path = _write(_agents_dir(tmp_path) / "test-writer.md", EXAMPLE_STYLE)
    [report] = [r for r in load_definitions(tmp_path).reports if r.path == path]
    assert report.status == "loaded", report.reason
    defn = report.definition
    assert defn is not None
    assert defn.description == (
        "Use this agent when code needs tests. Examples:\n\n<example>\n"
        "Context: The user just added a parser.\n"
        'user: "I added parse_date(), can you cover it?"\n'
        'assistant: "I\'ll use the test-writer agent to write the tests."\n'
        "<commentary>\nNew code without tests: call test-writer.\n</commentary>\n</example>"
    )
    assert defn.tools == ["Read", "Write", "Bash"] and defn.color == "green"
    assert defn.extra == {}
    [warning] = report.warnings
    assert "read as plain key: value" in warning


def test_the_lenient_reading_still_reads_indented_continuations_and_known_fields(
    tmp_path: Path, user_home: Path
) -> None:
    text = (
        "---\nname: fixer\ndescription: Fixes bugs: small ones.\n  Context: any.\n"
        "tools:\n  - Read\n  - Edit\nmodel: haiku\nmaxTurns: 4\nskills: x\n---\nFix.\n"
    )
    _write(_agents_dir(tmp_path) / "fixer.md", text)
    defn = load_definitions(tmp_path).get("fixer")
    assert defn is not None
    assert defn.description == "Fixes bugs: small ones.\nContext: any."
    assert (defn.tools, defn.model, defn.max_turns) == (["Read", "Edit"], "haiku", 4)
    assert defn.extra == {"skills": "x"}


def test_tools_empty_list_is_an_agent_with_no_tools(tmp_path: Path, user_home: Path) -> None:
    text = "---\nname: oracle\ndescription: Answers from what it knows.\ntools: []\n---\nAnswer.\n"
    _write(_agents_dir(tmp_path) / "oracle.md", text)
    loaded = load_definitions(tmp_path)
    defn = loaded.get("oracle")
    assert defn is not None and defn.tools == []
    assert resolve_tools(defn, SUB, depth_allows_agent=True) == []
    json_defs = load_definitions(
        tmp_path, cli_json='{"quiet": {"description": "d", "prompt": "p", "tools": []}}'
    )
    assert json_defs.get("quiet") is not None


def test_an_agent_with_no_tools_runs_and_sends_no_tools(git_repo: Path, user_home: Path) -> None:
    text = "---\nname: oracle\ndescription: Answers.\ntools: []\n---\nYou only answer.\n"
    _write(_agents_dir(git_repo) / "oracle.md", text)
    with FakeServer(Script.model_validate({"turns": [{"text": "42"}]})) as srv:
        env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": srv.url}
        run = covey(
            "-p",
            "answer",
            "--agent",
            "oracle",
            "--model",
            "anthropic:claude-x",
            cwd=git_repo,
            env=env,
        )
    assert run.code == 0, run.err
    assert run.out == "42\n"
    (request,) = srv.requests
    assert "tools" not in request["body"]
    assert "You only answer." in json.dumps(request["body"]["system"])


def test_agent_naming_a_skipped_file_says_which_and_why(git_repo: Path, user_home: Path) -> None:
    broken = _write(_agents_dir(git_repo) / "reviewer.md", "---\nname: reviewer\n---\nReview.\n")
    for i in range(30):
        _write(_agents_dir(git_repo) / f"a{i}.md", f"---\nname: a{i}\ndescription: d\n---\nB\n")
    run = covey("-p", "go", "--agent", "reviewer", "--model", "scripted:x.yaml", cwd=git_repo)
    assert run.code == 2, (run.out, run.err)
    (line,) = run.err.strip().splitlines()
    assert line == (
        f"covey: error: --agent 'reviewer': {broken} was found but skipped: "
        "no description: the frontmatter needs 'description:'"
    )
    listed = covey("sessions", "--json", cwd=git_repo)
    assert listed.json() == []
    # a name nobody defines: the list of names is cut short
    missing = covey("-p", "go", "--agent", "nobody", "--model", "scripted:x.yaml", cwd=git_repo)
    assert missing.code == 2
    assert "no such agent definition (see covey subagents list)" in missing.err
    assert "more)" in missing.err and len(missing.err) < 400


def test_a_file_without_frontmatter_is_found_by_its_file_name(
    tmp_path: Path, user_home: Path
) -> None:
    path = _write(_agents_dir(tmp_path) / "notes.md", "just text\n")
    why = load_definitions(tmp_path).why_missing("notes")
    assert (
        why
        == f"{path} was found but skipped: no frontmatter: the file must start with a '---' line"
    )


def test_older_tool_names_read_as_their_equivalents(tmp_path: Path, user_home: Path) -> None:
    text = (
        "---\nname: legacy\ndescription: Old names.\n"
        "tools: MultiEdit, LS, NotebookRead, Edit, Task(worker)\n"
        "disallowedTools: LS\n---\nBody.\n"
    )
    _write(_agents_dir(tmp_path) / "legacy.md", text)
    [report] = [r for r in load_definitions(tmp_path).reports if r.name == "legacy"]
    assert report.definition is not None
    assert report.definition.tools == ["Edit", "Glob", "Read", "Agent(worker)"]
    assert report.definition.disallowed_tools == ["Glob"]
    assert report.warnings == []
    assert resolve_tools(report.definition, SUB, depth_allows_agent=True) == [
        "Read",
        "Edit",
        "Agent",
    ]


def test_dropped_tools_are_one_warning_line(tmp_path: Path, user_home: Path) -> None:
    text = (
        "---\nname: web\ndescription: Browses.\n"
        "tools: Read, WebSearch, WebFetch, mcp__github__list_issues, TodoWrite\n---\nBody.\n"
    )
    _write(_agents_dir(tmp_path) / "web.md", text)
    [report] = [r for r in load_definitions(tmp_path).reports if r.name == "web"]
    assert report.warnings == [
        "tools dropped: WebSearch, WebFetch, TodoWrite (covey has no such tool); "
        "mcp__github__list_issues (no MCP server is connected)"
    ]


def _fabled(repo: Path) -> None:
    text = "---\nname: fabled\ndescription: Has an odd model.\nmodel: fable\n---\nBe fabled.\n"
    _write(_agents_dir(repo) / "fabled.md", text)


def test_an_unknown_model_falls_back_to_the_parent_with_one_warning(
    tmp_path: Path, user_home: Path
) -> None:
    _fabled(tmp_path)
    [report] = [r for r in load_definitions(tmp_path).reports if r.name == "fabled"]
    assert report.definition is not None and report.definition.model == "inherit"
    [warning] = report.warnings
    assert warning.startswith("model 'fable' is not a model covey knows")
    assert warning.endswith("the parent's model is used")
    aliased = load_definitions(tmp_path, model_aliases={"fable": "openai:gpt-4.1"})
    [report] = [r for r in aliased.reports if r.name == "fabled"]
    assert report.definition is not None and report.definition.model == "fable"
    assert report.warnings == []


def _script(path: Path, text: str) -> Path:
    path.write_text(yaml.safe_dump({"turns": [{"text": text}]}))
    return path


def test_covey_p_agent_with_an_unknown_model_runs_on_the_parent_model(
    git_repo: Path, user_home: Path
) -> None:
    _fabled(git_repo)
    parent = _script(git_repo.parent / "parent.yaml", "from the parent's model")
    (git_repo / ".covey" / "settings.json").write_text(json.dumps({"model": f"scripted:{parent}"}))
    run = covey("-p", "go", "--agent", "fabled", cwd=git_repo)
    assert run.code == 0, run.err
    assert run.out == "from the parent's model\n"
    (warning,) = run.err.strip().splitlines()
    path = _agents_dir(git_repo) / "fabled.md"
    assert warning.startswith(f"covey: warning: agent fabled ({path}): model 'fable' is not")


def test_model_aliases_name_a_definition_model_when_listing_and_running(
    git_repo: Path, user_home: Path
) -> None:
    _fabled(git_repo)
    parent = _script(git_repo.parent / "parent.yaml", "parent")
    fable = _script(git_repo.parent / "fable.yaml", "from the fable alias")
    settings = {"model": f"scripted:{parent}", "modelAliases": {"fable": f"scripted:{fable}"}}
    (git_repo / ".covey" / "settings.json").write_text(json.dumps(settings))
    run = covey("-p", "go", "--agent", "fabled", cwd=git_repo)
    assert run.code == 0, run.err
    assert (run.out, run.err) == ("from the fable alias\n", "")
    listed = covey("subagents", "list", "--json", cwd=git_repo)
    [row] = [r for r in listed.json()["agents"] if r["name"] == "fabled"]
    assert (row["model"], row["warnings"]) == ("fable", [])


def test_a_name_clash_in_one_scope_names_the_winning_file(git_repo: Path, user_home: Path) -> None:
    winner = _write(_agents_dir(git_repo) / "b.md", "---\nname: dup\ndescription: b\n---\nB\n")
    deeper = _write(
        _agents_dir(git_repo) / "a" / "a.md", "---\nname: dup\ndescription: a\n---\nA\n"
    )
    later = _write(_agents_dir(git_repo) / "c.md", "---\nname: dup\ndescription: c\n---\nC\n")
    listed = covey("subagents", "list", "--json", cwd=git_repo)
    assert listed.code == 0, listed.err
    rows = {r["path"]: r for r in listed.json()["agents"] if r["name"] == "dup"}
    assert rows[str(winner)]["status"] == "loaded"
    assert rows[str(winner)]["shadowed_by"] is None
    for loser in (deeper, later):
        row = rows[str(loser)]
        assert row["status"] == "shadowed"
        assert row["shadowed_by"] == str(winner)
        assert row["reason"] == f"shadowed by dup in project ({winner})"
    text = covey("subagents", "list", cwd=git_repo).out
    assert f"dup  [project]  shadowed by dup in project ({winner})" in text


def test_a_subagent_with_no_tools_answers_its_caller(git_repo: Path, user_home: Path) -> None:
    text = "---\nname: oracle\ndescription: Answers.\ntools: []\n---\nYou only answer.\n"
    _write(_agents_dir(git_repo) / "oracle.md", text)
    call = {"description": "ask", "prompt": "what is six times seven?", "subagent_type": "oracle"}
    script = {
        "turns": [{"tool_calls": [{"name": "Agent", "input": call}]}, {"text": "It said 42."}],
        "agents": {"oracle": {"turns": [{"text": "42"}]}},
    }
    with FakeServer(Script.model_validate(script)) as srv:
        env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": srv.url}
        run = covey("-p", "ask the oracle", "--model", "anthropic:claude-x", cwd=git_repo, env=env)
    assert run.code == 0, run.err
    assert run.out == "It said 42.\n"
    [oracle] = [r for r in srv.requests if r["agent"] == "oracle"]
    assert "tools" not in oracle["body"]
    answered = json.dumps(srv.requests[-1]["body"]["messages"][-1])
    assert "42" in answered
