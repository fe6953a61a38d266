"""Subagent definitions: Markdown files with YAML frontmatter, found in five scopes.

Scopes, highest first (on a name clash the higher one wins, the other is "shadowed"):

    cli             --agents '{"<name>": {"description": …, "prompt": …, <fields>}}'
    project         .covey/agents/  in the cwd and each parent up to the git root (or, outside
                    git, the project root); the nearest directory wins a clash
    claude-project  .claude/agents/ in the same directories, nearest first
    user            $COVEY_HOME/agents/
    claude-user     ~/.claude/agents/
    built-in        general-purpose, Explore, Plan

Directories are scanned recursively (`**/*.md`); identity is the `name` field, never the
file name. Two files of one scope with the same name: the first found wins, and the other's
report names the winning file. Found means: nearest directory first; within one directory its
own files before its subfolders', then by path, compared name by name (so `a.md` before
`b.md`, and `x/a.md` before `y/a.md`).
A file that cannot be used is reported as skipped with its reason, never raised.
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from covey.agent.definitions_parse import Invalid, normalize, split_frontmatter
from covey.config import covey_home, find_project_root, load_settings
from covey.errors import UserError
from covey.tools import CORE_TOOL_NAMES

__all__ = [
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

SCOPES = ("cli", "project", "claude-project", "user", "claude-user", "built-in")
"""Every scope, highest precedence first."""
KNOWN_TOOLS = frozenset([*CORE_TOOL_NAMES, "Agent"])
MODE_RANK = {"plan": 0, "dontAsk": 1, "default": 2, "acceptEdits": 3, "bypassPermissions": 4}
"""Permission modes from the most to the least careful."""
PROJECT_SCOPES = ("project", "claude-project")
"""Definitions that came with the repository: anyone who can commit can write them."""
"""Tool names a definition may list; anything else is dropped with a warning."""
ALWAYS_REMOVED = frozenset({"AskUserQuestion"})
"""Tools a subagent never gets, whatever its definition says."""
Status = Literal["loaded", "shadowed", "skipped"]
_NAMES_SHOWN = 12


@dataclass
class AgentDefinition:
    """One subagent type. `tools` None means every tool available to subagents."""

    name: str
    description: str
    prompt: str
    """The system prompt (the Markdown body, or `prompt` in --agents JSON)."""
    tools: list[str] | None = None
    """Allowlist of tool names; `Agent(worker, researcher)` keeps its note of allowed types."""
    disallowed_tools: list[str] = field(default_factory=list)
    """Denylist, applied first. A rule with a specifier (`Bash(rm *)`) removes no tool."""
    model: str = "inherit"
    """`inherit`, an alias (sonnet, opus, haiku, or one of settings `modelAliases`) or
    `provider:id`; one covey cannot resolve was read as `inherit`, with a warning."""
    permission_mode: str | None = None
    max_turns: int | None = None
    background: bool = False
    isolation: str | None = None
    color: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Frontmatter fields covey does not know, kept as they were."""
    scope: str = "built-in"
    path: Path | None = None


@dataclass
class DefinitionReport:
    """What became of one definition source (a file, an --agents entry, a built-in)."""

    path: Path | None
    scope: str
    name: str | None
    status: Status
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    definition: AgentDefinition | None = None
    shadowed_by: Path | None = None
    """When shadowed: the file of the definition that won (None for --agents or a built-in)."""


@dataclass
class Definitions:
    """The outcome of `load_definitions`: a report per file, --agents entry and built-in,
    highest precedence first."""

    reports: list[DefinitionReport]

    def get(self, name: str) -> AgentDefinition | None:
        """The definition that wins for `name`, or None."""
        return next((d for d in self.all() if d.name == name), None)

    def all(self) -> list[AgentDefinition]:
        """Every loaded definition (one per name), built-ins included."""
        return [r.definition for r in self.reports if r.status == "loaded" and r.definition]

    def run_warnings(self, defn: AgentDefinition | None) -> list[str]:
        """The warnings of `defn` that change how it runs (its model was replaced by the
        parent's), worded for a session that runs it as the main agent."""
        report = next((r for r in self.reports if r.definition is defn), None) if defn else None
        if report is None:
            return []
        where = f" ({report.path})" if report.path else ""
        return [
            f"agent {report.name}{where}: {w}" for w in report.warnings if w.startswith("model ")
        ]

    def why_missing(self, name: str) -> str:
        """Why `get(name)` is None, in words: a file by that name (its `name` field, else its
        file name) was found but skipped, and why; else what names there are."""
        skipped = [
            r
            for r in self.reports
            if r.status == "skipped"
            and (r.name == name or (r.name is None and r.path and r.path.stem == name))
        ]
        if skipped:
            first = skipped[0]
            more = f" (and {len(skipped) - 1} more such file(s))" if len(skipped) > 1 else ""
            return f"{first.path} was found but skipped: {first.reason}{more}"
        names = [d.name for d in self.all()]
        shown = ", ".join(names[:_NAMES_SHOWN])
        if len(names) > _NAMES_SHOWN:
            shown += f", … ({len(names) - _NAMES_SHOWN} more)"
        return f"no such agent definition (see covey subagents list); available: {shown}"


_READ_ONLY = ["Read", "Glob", "Grep"]
BUILT_INS = (
    AgentDefinition(
        name="general-purpose",
        description=(
            "General-purpose agent for researching complex questions, searching code and "
            "carrying out multi-step tasks. Use it when a search may take several tries, or "
            "to hand off a self-contained piece of work."
        ),
        prompt=(
            "You are a subagent: another agent gave you a task. Do the whole task with the "
            "tools you have; do not ask questions, make reasonable choices and say which. "
            "Your final message is all the caller sees: report what you did, what you found, "
            "and the absolute paths of files you changed or that matter."
        ),
    ),
    AgentDefinition(
        name="Explore",
        description=(
            "Fast read-only agent for exploring a codebase: find files by pattern, search "
            "code for keywords, answer how something works. Say how thorough to be: quick, "
            "medium or very thorough."
        ),
        prompt=(
            "You are a read-only search agent. Find what the task asks for and report it; "
            "never create, edit or delete files. Match your effort to the thoroughness asked: "
            "quick = a few targeted searches; medium = follow the main leads; very thorough = "
            "check every likely location and naming convention. Reply with the answer, then "
            "the evidence: absolute file paths with line numbers and short excerpts."
        ),
        tools=list(_READ_ONLY),
    ),
    AgentDefinition(
        name="Plan",
        description=(
            "Read-only research agent that studies the code and returns an implementation "
            "plan. Use it to plan a change before making it."
        ),
        prompt=(
            "You are a planning agent. Research the code the task concerns, then return a "
            "step-by-step implementation plan: the files to change (absolute paths), what to "
            "change in each, the order, risks, and how to test it. Do not edit anything; "
            "the plan is your only output."
        ),
        tools=list(_READ_ONLY),
    ),
)


def load_definitions(
    cwd: Path,
    *,
    cli_json: str | None = None,
    home: Path | None = None,
    model_aliases: Mapping[str, str] | None = None,
) -> Definitions:
    """Find, parse and rank every definition for a session started in `cwd`.

    `home` is the covey home (default `$COVEY_HOME` or `~/.covey`); `~/.claude` follows
    `$HOME`. `model_aliases`: the settings' `modelAliases` (default: read from the settings
    of `cwd`), so a definition's `model` may name one. Raises UserError for bad `--agents`
    JSON (or a broken settings file, when `model_aliases` is not given).
    """
    aliases = load_settings(cwd).settings.modelAliases if model_aliases is None else model_aliases
    reports = _from_json(cli_json, aliases) if cli_json is not None else []
    seen: set[Path] = set()
    for scope, directory in _directories(cwd, home or covey_home()):
        key = directory.resolve()
        if key in seen or not directory.is_dir():
            continue
        seen.add(key)
        for path in sorted(directory.rglob("*.md"), key=lambda p: _depth_first(p, directory)):
            if path.is_file():
                reports.append(_from_file(path, scope, aliases))
    reports += [
        DefinitionReport(None, "built-in", b.name, "loaded", definition=_fresh(b))
        for b in BUILT_INS
    ]
    winners: dict[str, DefinitionReport] = {}
    for report in reports:
        if report.status != "loaded" or report.name is None:
            continue
        winner = winners.setdefault(report.name, report)
        if winner is not report:
            report.status = "shadowed"
            report.shadowed_by = winner.path
            where = f" ({winner.path})" if winner.path else ""
            report.reason = f"shadowed by {report.name} in {winner.scope}{where}"
    return Definitions(reports)


def _fresh(built_in: AgentDefinition) -> AgentDefinition:
    """A built-in's own copy (its lists and `extra` too: a session may change them), made
    field by field: `copy.deepcopy` of the three cost ~1.4 ms of every session start."""
    return dataclasses.replace(
        built_in,
        tools=None if built_in.tools is None else list(built_in.tools),
        disallowed_tools=list(built_in.disallowed_tools),
        extra=copy.deepcopy(built_in.extra) if built_in.extra else {},
    )


def resolve_tools(
    defn: AgentDefinition,
    available: list[str],
    *,
    depth_allows_agent: bool,
    main_agent: bool = False,
) -> list[str]:
    """The tool names a subagent of type `defn` gets, in the order of `available`.

    Drops the always-removed tools (unless `defn` runs as a session's main agent, `--agent`,
    which talks to the person) and Agent unless `depth_allows_agent`, then every tool
    `disallowed_tools` names (`mcp__server`, `mcp__server__*` and `mcp__*` cover MCP tools),
    then keeps only those `tools` lists, when it lists any.
    """
    removed = frozenset() if main_agent else ALWAYS_REMOVED
    names = [t for t in available if t not in removed and (depth_allows_agent or t != "Agent")]
    names = [
        t for t in names if not any("(" not in r and _covers(r, t) for r in defn.disallowed_tools)
    ]
    if defn.tools is not None:
        names = [t for t in names if any(_covers(r.split("(", 1)[0], t) for r in defn.tools)]
    return names


def _covers(pattern: str, tool: str) -> bool:
    if pattern == tool:
        return True
    if "*" in pattern:
        return fnmatch.fnmatchcase(tool, pattern)
    return (
        pattern.startswith("mcp__") and "__" not in pattern[5:] and tool.startswith(pattern + "__")
    )


def _depth_first(path: Path, directory: Path) -> tuple[int, tuple[str, ...]]:
    """Files of a directory before those of its subfolders, then by name."""
    parts = path.relative_to(directory).parts
    return len(parts), parts


def _directories(cwd: Path, home: Path) -> list[tuple[str, Path]]:
    start = cwd.resolve()
    git_root = next((d for d in (start, *start.parents) if (d / ".git").exists()), None)
    root = git_root or find_project_root(start)  # a nested .covey/ does not stop the walk
    walk = [start, *(p for p in start.parents if p.is_relative_to(root))]
    return [
        *(("project", d / ".covey" / "agents") for d in walk),
        *(("claude-project", d / ".claude" / "agents") for d in walk),
        ("user", home / "agents"),
        ("claude-user", Path.home() / ".claude" / "agents"),
    ]


def _from_file(path: Path, scope: str, aliases: Mapping[str, str]) -> DefinitionReport:
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return DefinitionReport(path, scope, None, "skipped", f"cannot read: {e}")
    try:
        meta, body, warnings = split_frontmatter(text)
    except Invalid as e:
        return DefinitionReport(path, scope, None, "skipped", str(e))
    return _build(meta, body, warnings, scope, path, aliases)


def _from_json(text: str, aliases: Mapping[str, str]) -> list[DefinitionReport]:
    hint = 'pass {"<name>": {"description": "…", "prompt": "…"}}'
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"--agents: not valid JSON ({e}); {hint}") from None
    if not isinstance(data, dict):
        raise UserError(f"--agents: a JSON object of agents is needed; {hint}")
    reports = []
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise UserError(f"--agents: {name!r} must be an object; {hint}")
        fields = {k: v for k, v in entry.items() if k != "prompt"}
        prompt = entry.get("prompt")
        body = prompt.strip() if isinstance(prompt, str) else ""
        reports.append(_build({**fields, "name": name}, body, [], "cli", None, aliases))
    return reports


def _build(
    meta: dict[str, Any],
    body: str,
    warnings: list[str],
    scope: str,
    path: Path | None,
    aliases: Mapping[str, str],
) -> DefinitionReport:
    name = meta.get("name") if isinstance(meta.get("name"), str) else None
    try:
        fields, more = normalize(meta, KNOWN_TOOLS, aliases)
        defn = AgentDefinition(prompt=body, scope=scope, path=path, **fields)
        no_tools = meta.get("tools") == []  # `tools: []`: an agent that only answers
        if not no_tools and not resolve_tools(defn, sorted(KNOWN_TOOLS), depth_allows_agent=True):
            raise Invalid(_no_tool_reason(meta, defn))
    except Invalid as e:
        return DefinitionReport(path, scope, name, "skipped", str(e), warnings)
    if not body:
        more.append("empty body: no system prompt beyond the environment details")
    return DefinitionReport(path, scope, defn.name, "loaded", None, warnings + more, defn)


def _no_tool_reason(meta: dict[str, Any], defn: AgentDefinition) -> str:
    raw = meta.get("tools")
    listed = ", ".join(raw) if isinstance(raw, list) else str(raw)
    if not listed.strip():
        return "no usable tool: 'tools' is empty"
    if not defn.tools:
        return f"no usable tool: covey has none of {listed}"
    return f"no usable tool: {', '.join(defn.tools)} removed by disallowedTools or for subagents"
