"""Subagent definitions: the corpus in tests/data/agents, scopes, --agents, tools, the CLI."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

import covey.agent.definitions as definitions_module
from clitools import covey
from covey.agent.definitions import (
    BUILT_INS,
    AgentDefinition,
    Definitions,
    load_definitions,
    resolve_tools,
)
from covey.errors import UserError

CORPUS = Path(__file__).parent / "data" / "agents"
SUB = ["Read", "Write", "Edit", "Glob", "Grep", "Bash"]  # what a subagent gets at depth limit
CORE = [*SUB, "AskUserQuestion", "Agent"]

# corpus file → "loaded NAME: TOOLS" (resolved with Agent allowed; ALL = every tool), or the
# exact reason it was shadowed or skipped
ALL = "Read Write Edit Glob Grep Bash Agent"
EXPECTED = {
    "project/backend-architect.md": "loaded backend-architect: ALL",
    "project/api-designer.md": "loaded api-designer: Read Write Edit Glob Grep Bash",
    "project/code-reviewer.md": "loaded code-reviewer: Read Glob Grep",
    "project/test-runner.md": "loaded test-runner: Read Grep Bash",
    "project/review/security-auditor.md": "loaded security-auditor: Read Glob Grep",
    "project/review/deep/perf-reviewer.md": "loaded perf-reviewer: Read Glob Grep Bash",
    "project/github-triager.md": "loaded github-triager: Read",
    "project/web-researcher.md": "no usable tool: covey has none of WebSearch, WebFetch",
    "project/orchestrator.md": "loaded orchestrator: Read Grep Agent",
    "project/legacy-task.md": "loaded legacy-task: Read Agent",
    "project/empty-body.md": "loaded empty-body: Read",
    "project/broken-yaml.md": "broken YAML frontmatter: line 2: found unexpected end of stream",
    "project/no-name.md": "no name: the frontmatter needs 'name:'",
    "project/no-description.md": "no description: the frontmatter needs 'description:'",
    "project/colon-name.md": "name 'plugin:reviewer' contains ':' (reserved for plugin ids)",
    "project/dash-name.md": "name '-hidden' starts with '-'",
    "project/unknown-fields.md": "loaded memory-keeper: Read Write Edit",
    "project/README.md": "no frontmatter: the file must start with a '---' line",
    "project/settings-rich.md": "loaded refactorer: Read Glob Grep Bash Agent",
    "project/bad-values.md": "loaded bad-values: ALL",
    "project/multiline-folded.md": "loaded doc-writer: Read Write Edit Glob",
    "project/duplicate-a.md": "loaded duplicate: ALL",
    "project/dupes/duplicate-b.md": "shadowed by duplicate in project",
    "project/lowercase-tools.md": "loaded lowercase-tools: Read Grep Bash",
    "project/all-disallowed.md": "no usable tool: Read removed by disallowedTools or for subagents",
    "project/not-mapping.md": "frontmatter is a list, not a mapping of fields",
    "project/unclosed.md": "frontmatter not closed: no second '---' line",
    "project/crlf-agent.md": "loaded crlf-agent: Read Grep",
    "project/bom-agent.md": "loaded bom-agent: ALL",
    "claude-project/code-reviewer.md": "shadowed by code-reviewer in project",
    "claude-project/docs/docs-writer.md": "loaded docs-writer: Read Write",
    "user/backend-architect.md": "shadowed by backend-architect in project",
    "user/general-purpose.md": "loaded general-purpose: ALL",
    "claude-user/docs-writer.md": "shadowed by docs-writer in claude-project",
    "claude-user/explorer-plus.md": "loaded explorer-plus: Read Glob Grep",
}
SCOPE_OF_DIR = {
    "project": "project",
    "claude-project": "claude-project",
    "user": "user",
    "claude-user": "claude-user",
}


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def corpus_repo(tmp_path: Path, user_home: Path, covey_home: Path) -> Path:
    """A project holding the corpus in all four directory scopes; returns its root."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".covey").mkdir()
    (repo / ".claude").mkdir()
    shutil.copytree(CORPUS / "project", repo / ".covey" / "agents")
    shutil.copytree(CORPUS / "claude-project", repo / ".claude" / "agents")
    shutil.copytree(CORPUS / "user", covey_home / "agents")
    (user_home / ".claude").mkdir()
    shutil.copytree(CORPUS / "claude-user", user_home / ".claude" / "agents")
    return repo


def _corpus_path(rel: str, repo: Path, user_home: Path, covey_home: Path) -> Path:
    top, rest = rel.split("/", 1)
    base = {
        "project": repo / ".covey" / "agents",
        "claude-project": repo / ".claude" / "agents",
        "user": covey_home / "agents",
        "claude-user": user_home / ".claude" / "agents",
    }[top]
    return base / rest


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _agent(name: str, description: str = "Does things.", extra: str = "") -> str:
    return f"---\nname: {name}\ndescription: {description}\n{extra}---\nBody of {name}.\n"


def test_corpus_is_big_and_covered_by_the_table() -> None:
    files = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.md"))
    assert len(files) >= 25
    assert sorted(EXPECTED) == files
    assert b"\r\n" in (CORPUS / "project" / "crlf-agent.md").read_bytes()
    assert (CORPUS / "project" / "bom-agent.md").read_bytes().startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_corpus_file_outcome(
    rel: str, corpus_repo: Path, user_home: Path, covey_home: Path
) -> None:
    path = _corpus_path(rel, corpus_repo, user_home, covey_home)
    [report] = [r for r in load_definitions(corpus_repo).reports if r.path == path]
    assert report.scope == SCOPE_OF_DIR[rel.split("/")[0]]
    if report.status == "loaded":
        assert report.definition is not None and report.reason is None
        tools = resolve_tools(report.definition, CORE, depth_allows_agent=True)
        outcome = f"loaded {report.name}: {' '.join(tools)}".replace(ALL, "ALL")
    else:
        assert report.status == ("shadowed" if EXPECTED[rel].startswith("shadowed") else "skipped")
        assert (report.definition is None) == (report.status == "skipped")
        outcome = str(report.reason)
        if report.status == "shadowed":  # the reason ends with the winning file
            assert report.shadowed_by is not None and report.shadowed_by.is_file()
            assert outcome.endswith(f" ({report.shadowed_by})")
            outcome = outcome.removesuffix(f" ({report.shadowed_by})")
    assert outcome == EXPECTED[rel]


def test_corpus_details(corpus_repo: Path) -> None:
    loaded = load_definitions(corpus_repo)
    warnings = {r.name: r.warnings for r in loaded.reports if r.status == "loaded"}

    reviewer = loaded.get("code-reviewer")
    assert reviewer is not None and reviewer.color == "blue" and reviewer.scope == "project"
    assert "Examples: <example>Context: The user has just" in reviewer.description
    assert reviewer.description.endswith("</commentary></example>")
    assert "read as plain key: value" in warnings["code-reviewer"][0]

    auditor = loaded.get("security-auditor")
    assert auditor is not None and auditor.model == "opus" and auditor.permission_mode == "plan"
    assert auditor.description.startswith("Use this agent to audit code")
    assert '\n<example>\nContext: The user added an upload endpoint.\nuser: "Can' in (
        auditor.description
    )

    assert loaded.get("perf-reviewer").model == "anthropic:claude-sonnet-4-5"  # type: ignore[union-attr]
    assert loaded.get("github-triager").model == "anthropic:claude-haiku-4-5"  # type: ignore[union-attr]
    assert warnings["github-triager"] == [
        "tools dropped: mcp__github__list_issues, mcp__github__create_issue, "
        "mcp__github__add_labels (no MCP server is connected)"
    ]
    assert loaded.get("orchestrator").tools == ["Agent(worker, researcher)", "Read", "Grep"]  # type: ignore[union-attr]
    assert warnings["legacy-task"] == ["tools dropped: TodoWrite (covey has no such tool)"]
    assert warnings["empty-body"] == ["empty body: no system prompt beyond the environment details"]
    assert loaded.get("empty-body").prompt == ""  # type: ignore[union-attr]

    keeper = loaded.get("memory-keeper")
    assert keeper is not None
    assert keeper.extra["skills"] == ["changelog"] and keeper.extra["memory"] == "project"
    assert keeper.extra["hooks"]["Stop"][0]["hooks"][0]["command"] == "./scripts/notify.sh"
    assert warnings["memory-keeper"] == [
        f"unknown field '{k}' kept" for k in ("skills", "mcpServers", "hooks", "memory", "effort")
    ]

    rich = loaded.get("refactorer")
    assert rich is not None
    assert (rich.max_turns, rich.background, rich.isolation) == (20, True, "worktree")
    assert (rich.permission_mode, rich.model, rich.color) == (
        "acceptEdits",
        "openai:gpt-4o",
        "green",
    )
    assert rich.disallowed_tools == ["Write", "Edit"]

    bad = loaded.get("bad-values")
    assert bad is not None
    assert (bad.max_turns, bad.background, bad.isolation, bad.permission_mode) == (
        None,
        False,
        None,
        None,
    )
    assert len(warnings["bad-values"]) == 5 and bad.model == "inherit"  # `gpt-4o`: unknown

    assert loaded.get("doc-writer").description == (  # type: ignore[union-attr]
        "Writes and updates documentation. Use proactively after public APIs change."
    )
    assert loaded.get("explorer-plus").description == (  # type: ignore[union-attr]
        "Explores the codebase and reports.\nLiteral block description on two lines."
    )
    docs = loaded.get("docs-writer")
    assert docs is not None and "It's quoted" in docs.description
    crlf = loaded.get("crlf-agent")
    assert crlf is not None and crlf.prompt == "Find things.\nReport them."
    assert crlf.description == "Written on Windows, with CRLF line endings."
    assert loaded.get("bom-agent").prompt == "Hello."  # type: ignore[union-attr]
    assert warnings["lowercase-tools"][-1] == (
        "tool 'Bash(git *)': the specifier is ignored, all of Bash is given"
    )


def test_scope_precedence_user_file_replaces_builtin(corpus_repo: Path) -> None:
    loaded = load_definitions(corpus_repo)
    gp = loaded.get("general-purpose")
    assert gp is not None and gp.scope == "user" and gp.model == "opus"
    [builtin] = [r for r in loaded.reports if r.scope == "built-in" and r.name == "general-purpose"]
    user_file = gp.path
    assert (builtin.status, builtin.reason, builtin.shadowed_by) == (
        "shadowed",
        f"shadowed by general-purpose in user ({user_file})",
        user_file,
    )
    names = [d.name for d in loaded.all()]
    assert len(names) == len(set(names))
    assert {"Explore", "Plan"} <= set(names)


def test_each_scope_beats_the_next(tmp_path: Path, user_home: Path, covey_home: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    dirs = [
        ("project", repo / ".covey" / "agents"),
        ("claude-project", repo / ".claude" / "agents"),
        ("user", covey_home / "agents"),
        ("claude-user", user_home / ".claude" / "agents"),
    ]
    for i, (_, d) in enumerate(dirs):
        for j in range(i + 1):
            _write(d / f"a{j}.md", _agent(f"a{j}", f"from scope {i}"))
    loaded = load_definitions(repo)
    for j, (scope, _) in enumerate(dirs):
        defn = loaded.get(f"a{j}")
        assert defn is not None and defn.scope == scope and defn.description == f"from scope {j}"
    cli = load_definitions(repo, cli_json='{"a0": {"description": "from cli", "prompt": "P"}}')
    assert cli.get("a0") == AgentDefinition(
        name="a0", description="from cli", prompt="P", scope="cli", path=None
    )
    shadowed = [r for r in cli.reports if r.name == "a0" and r.status == "shadowed"]
    assert [r.reason for r in shadowed] == ["shadowed by a0 in cli"] * len(dirs)


def test_walk_up_nearest_directory_wins(tmp_path: Path, user_home: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    _write(tmp_path / ".covey" / "agents" / "above.md", _agent("above"))  # outside the repo
    _write(repo / ".covey" / "agents" / "x.md", _agent("x", "outer"))
    _write(repo / ".covey" / "agents" / "only-outer.md", _agent("only-outer"))
    _write(repo / "pkg" / ".covey" / "agents" / "x.md", _agent("x", "inner"))
    _write(repo / "pkg" / ".claude" / "agents" / "y.md", _agent("y", "claude inner"))
    _write(repo / ".claude" / "agents" / "y.md", _agent("y", "claude outer"))
    _write(repo / "other" / ".covey" / "agents" / "z.md", _agent("z"))  # not on the way up
    cwd = repo / "pkg" / "src"
    cwd.mkdir(parents=True)
    loaded = load_definitions(cwd)
    assert loaded.get("x").description == "inner"  # type: ignore[union-attr]
    assert loaded.get("y").description == "claude inner"  # type: ignore[union-attr]
    assert loaded.get("only-outer") is not None
    assert loaded.get("above") is None and loaded.get("z") is None
    outer = [r for r in loaded.reports if r.path == repo / ".covey" / "agents" / "x.md"]
    inner = repo / "pkg" / ".covey" / "agents" / "x.md"
    assert [(r.status, r.reason) for r in outer] == [
        ("shadowed", f"shadowed by x in project ({inner})")
    ]


def test_home_argument_overrides_covey_home(tmp_path: Path, user_home: Path) -> None:
    other = tmp_path / "other-home"
    _write(other / "agents" / "mine.md", _agent("mine"))
    assert load_definitions(tmp_path, home=other).get("mine") is not None
    assert load_definitions(tmp_path).get("mine") is None


def test_agents_json(tmp_path: Path, user_home: Path) -> None:
    loaded = load_definitions(
        tmp_path,
        cli_json="""{
          "reviewer": {"description": "Reviews code", "prompt": "You review.",
                       "tools": ["Read", "Grep"], "model": "haiku", "maxTurns": 3,
                       "effort": "high"},
          "no-desc": {"prompt": "x"},
          "searcher": {"description": "Searches", "prompt": "S", "tools": "WebSearch"}
        }""",
    )
    reviewer = loaded.get("reviewer")
    assert reviewer is not None
    assert (reviewer.prompt, reviewer.tools, reviewer.model, reviewer.max_turns) == (
        "You review.",
        ["Read", "Grep"],
        "haiku",
        3,
    )
    assert reviewer.extra == {"effort": "high"}
    by_name = {r.name: r for r in loaded.reports if r.scope == "cli"}
    assert by_name["reviewer"].warnings == ["unknown field 'effort' kept"]
    assert by_name["no-desc"].reason == "no description: the frontmatter needs 'description:'"
    assert by_name["searcher"].reason == "no usable tool: covey has none of WebSearch"


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"x": "just a string"}'])
def test_bad_agents_json_is_a_user_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(UserError) as info:
        load_definitions(tmp_path, cli_json=text)
    assert str(info.value).startswith("--agents: ") and "\n" not in str(info.value)


def _defn(tools: list[str] | None = None, disallowed: list[str] | None = None) -> AgentDefinition:
    return AgentDefinition("t", "d", "p", tools=tools, disallowed_tools=disallowed or [])


def test_resolve_tools_rules() -> None:
    mcp = ["mcp__gh__issues", "mcp__gh__labels", "mcp__db__query"]
    available = [*CORE, *mcp]
    assert resolve_tools(_defn(), available, depth_allows_agent=False) == [*SUB, *mcp]
    assert "Agent" in resolve_tools(_defn(), available, depth_allows_agent=True)
    assert resolve_tools(_defn(["Agent(w)", "Read"]), available, depth_allows_agent=False) == [
        "Read"
    ]
    assert resolve_tools(_defn(["Grep", "Read"]), CORE, depth_allows_agent=False) == [
        "Read",
        "Grep",
    ]
    both = _defn(["Read", "Bash"], ["Bash"])
    assert resolve_tools(both, CORE, depth_allows_agent=True) == ["Read"]
    assert resolve_tools(_defn(["AskUserQuestion"]), CORE, depth_allows_agent=True) == []
    as_main = resolve_tools(
        _defn(["AskUserQuestion"]), CORE, depth_allows_agent=True, main_agent=True
    )
    assert as_main == ["AskUserQuestion"]
    assert resolve_tools(_defn(["Read", "WebSearch"]), ["Grep"], depth_allows_agent=True) == []
    no_gh = resolve_tools(_defn(disallowed=["mcp__gh"]), available, depth_allows_agent=False)
    assert [t for t in no_gh if t.startswith("mcp")] == ["mcp__db__query"]
    star = resolve_tools(_defn(disallowed=["mcp__gh__*"]), available, depth_allows_agent=False)
    assert [t for t in star if t.startswith("mcp")] == ["mcp__db__query"]
    all_mcp = resolve_tools(_defn(disallowed=["mcp__*"]), available, depth_allows_agent=False)
    assert all_mcp == SUB
    only = resolve_tools(_defn(["mcp__gh", "Read"]), available, depth_allows_agent=False)
    assert only == ["Read", "mcp__gh__issues", "mcp__gh__labels"]
    specifier = resolve_tools(_defn(disallowed=["Bash(rm *)"]), CORE, depth_allows_agent=False)
    assert "Bash" in specifier


def test_builtins(tmp_path: Path, user_home: Path) -> None:
    loaded = load_definitions(tmp_path)
    assert [d.name for d in loaded.all()] == ["general-purpose", "Explore", "Plan"]
    assert all(d.scope == "built-in" and d.path is None and d.model == "inherit" for d in BUILT_INS)
    gp, explore, plan = BUILT_INS
    assert resolve_tools(gp, CORE, depth_allows_agent=False) == SUB
    for read_only in (explore, plan):
        assert resolve_tools(read_only, CORE, depth_allows_agent=True) == ["Read", "Glob", "Grep"]
    assert "very thorough" in explore.prompt and "never create, edit or delete" in explore.prompt
    assert "plan" in plan.prompt and "Do not edit" in plan.prompt
    assert isinstance(loaded, Definitions) and loaded.get("nope") is None


def test_public_surface() -> None:
    assert definitions_module.__all__ == [
        "ALWAYS_REMOVED",
        "BUILT_INS",
        "KNOWN_TOOLS",
        "MODE_RANK",
        "PROJECT_SCOPES",
        "SCOPES",
        "AgentDefinition",
        "DefinitionReport",
        "Definitions",
        "load_definitions",
        "resolve_tools",
    ]


def test_cli_list_json_and_text(corpus_repo: Path) -> None:
    run = covey("subagents", "list", "--json", cwd=corpus_repo)
    assert run.code == 0, run.err
    rows = run.json()["agents"]
    assert len(rows) == len(EXPECTED) + 3
    by_path = {row["path"]: row for row in rows}
    reviewer = by_path[str(corpus_repo / ".covey" / "agents" / "code-reviewer.md")]
    assert reviewer["name"] == "code-reviewer" and reviewer["scope"] == "project"
    assert (reviewer["status"], reviewer["tools"]) == ("loaded", ["Read", "Glob", "Grep"])
    assert reviewer["model"] == "inherit" and len(reviewer["warnings"]) == 1
    web = by_path[str(corpus_repo / ".covey" / "agents" / "web-researcher.md")]
    assert (web["status"], web["reason"]) == (
        "skipped",
        "no usable tool: covey has none of WebSearch, WebFetch",
    )
    builtins = [row for row in rows if row["scope"] == "built-in"]
    assert [(b["name"], b["status"]) for b in builtins] == [
        ("general-purpose", "shadowed"),
        ("Explore", "loaded"),
        ("Plan", "loaded"),
    ]
    assert builtins[1]["tools"] == ["Read", "Glob", "Grep"]

    text = covey("subagents", "list", cwd=corpus_repo)
    assert text.code == 0, text.err
    assert "code-reviewer  [claude-project]  shadowed by code-reviewer in project" in text.out
    assert "warning: tool 'WebSearch'" not in text.out  # skipped files list no tools
    assert "skipped: no usable tool: covey has none of WebSearch, WebFetch" in text.out


def test_cli_bad_agents_json(tmp_path: Path, user_home: Path) -> None:
    run = covey("subagents", "list", "--agents", "{oops", cwd=tmp_path)
    assert run.code == 2
    assert "--agents: not valid JSON" in run.err and "Traceback" not in run.err


def test_each_load_gets_built_ins_of_its_own(tmp_path: Path) -> None:
    """A session may change its definitions' lists: never the next session's, nor
    `BUILT_INS` (every mutable field is copied, whichever fields the dataclass grows)."""
    first = load_definitions(tmp_path, home=tmp_path / "home")
    built_ins = {b.name: b for b in definitions_module.BUILT_INS}
    for report in first.reports:
        if report.scope != "built-in" or report.definition is None:
            continue
        original = built_ins[report.name or ""]
        for f in dataclasses.fields(report.definition):
            value = getattr(report.definition, f.name)
            if isinstance(value, list | dict | set):
                assert value is not getattr(original, f.name), f"{report.name}.{f.name} shared"
        report.definition.disallowed_tools.append("Bash")
    again = load_definitions(tmp_path, home=tmp_path / "home")
    assert all(
        "Bash" not in (r.definition.disallowed_tools if r.definition else [])
        for r in again.reports
        if r.scope == "built-in"
    )
