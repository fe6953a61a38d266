"""Reading one subagent definition: split the frontmatter, parse it, check every field.

Nothing here touches the file system or knows about scopes; `definitions.py` does. A file
that cannot become a definition raises `Invalid` with a one-line reason; anything merely odd
(an unknown field, a tool covey lacks, the lenient parser) becomes a warning string.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from covey.errors import UserError
from covey.models.registry import DEFAULT_ALIASES, PROVIDERS
from covey.tools.permissions import PERMISSION_MODES, parse_tool_list

if TYPE_CHECKING:
    import yaml

__all__ = ["KNOWN_FIELDS", "OLD_TOOL_NAMES", "Invalid", "normalize", "split_frontmatter"]

KNOWN_FIELDS = frozenset(
    {
        "name",
        "description",
        "tools",
        "disallowedTools",
        "model",
        "permissionMode",
        "maxTurns",
        "background",
        "isolation",
        "color",
    }
)
_FRONTMATTER_KEYS = KNOWN_FIELDS | {"skills", "mcpServers", "hooks", "memory", "effort"}
"""Claude Code's frontmatter fields: the lenient parser starts a new key only at one of these,
so `user:`, `assistant:` or `Context:` lines inside a description stay in it."""
_KEY_LINE = re.compile(r"([A-Za-z_][\w-]*)[ \t]*:(?:[ \t]+(.*)|)$")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
_TYPED = frozenset({"maxTurns", "background", "tools", "disallowedTools"})
OLD_TOOL_NAMES = {"Task": "Agent", "MultiEdit": "Edit", "LS": "Glob", "NotebookRead": "Read"}
"""Claude Code's older tool names, read as the covey tool that does the same."""
_MODE_ALIASES = {"manual": "default"}


class Invalid(Exception):
    """The file cannot become a definition; `str(e)` is the reason shown to the user."""


def split_frontmatter(text: str) -> tuple[dict[str, Any], str, list[str]]:
    """Markdown text → (frontmatter mapping, body, warnings). Raises Invalid.

    Tolerates a UTF-8 BOM, CRLF line endings and an empty body. Frontmatter that strict YAML
    rejects (typically an unquoted `description: Use this agent when: …`) is read again
    line by line as `key: value`, with a warning.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise Invalid("no frontmatter: the file must start with a '---' line")
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
    if end is None:
        raise Invalid("frontmatter not closed: no second '---' line")
    front = "\n".join(lines[1:end])
    body = "\n".join(lines[end + 1 :]).strip()
    warnings: list[str] = []
    import yaml  # here: a session without definition files never needs it

    try:
        meta = yaml.safe_load(front)
    except yaml.YAMLError as e:
        problem = _yaml_problem(e)
        meta = _lenient(front)
        if not meta:
            raise Invalid(f"broken YAML frontmatter: {problem}") from None
        warnings.append(f"frontmatter is not valid YAML ({problem}); read as plain key: value")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise Invalid(f"frontmatter is a {type(meta).__name__}, not a mapping of fields")
    return {str(k): v for k, v in meta.items()}, body, warnings


def _yaml_problem(e: yaml.YAMLError) -> str:
    import yaml

    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        return f"line {e.problem_mark.line + 2}: {e.problem}"  # +1 for 1-based, +1 for '---'
    return str(e).splitlines()[0]


def _lenient(front: str) -> dict[str, Any]:
    """`key: value` lines, where a key is a frontmatter field name at the start of a line;
    every other line (indented, key-less, or `word:` text) continues the previous value."""
    meta: dict[str, Any] = {}
    key: str | None = None
    parts: list[str] = []

    def flush() -> None:
        if key is not None:
            meta[key] = _lenient_value(key, parts)

    for line in front.split("\n"):
        match = _KEY_LINE.match(line)
        if match and match[1] in _FRONTMATTER_KEYS:
            flush()
            key, parts = match[1], [match[2] or ""]
        elif key is not None:
            parts.append(line)
        elif line.strip() and not line.lstrip().startswith("#"):
            return {}  # text before the first key: not frontmatter we understand
    flush()
    return meta


def _lenient_value(key: str, parts: list[str]) -> Any:
    items = [p.strip()[2:].strip() for p in parts[1:] if p.strip().startswith("- ")]
    if not parts[0].strip() and items:
        return [_unquote(item) for item in items]
    lines = [parts[0].strip(), *textwrap.dedent("\n".join(parts[1:])).split("\n")]
    text = _unquote("\n".join(line.rstrip() for line in lines).strip())
    if key in _TYPED:
        import yaml

        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            return text
        return value if isinstance(value, int | bool | list) else text
    return text


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[0]), text[1:-1])
    return text


def normalize(
    meta: dict[str, Any],
    known_tools: frozenset[str],
    model_aliases: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Frontmatter → the AgentDefinition fields other than prompt, scope and path, plus warnings.

    `model_aliases` are the settings' `modelAliases` (the built-in aliases are always known).
    Raises Invalid for a missing or bad name or description, or an unreadable tool list.
    """
    warnings: list[str] = []
    name = _required_text(meta, "name")
    if ":" in name:
        raise Invalid(f"name {name!r} contains ':' (reserved for plugin ids)")
    if name.startswith("-"):
        raise Invalid(f"name {name!r} starts with '-'")
    if any(ch.isspace() for ch in name):
        raise Invalid(f"name {name!r} contains whitespace: use lowercase letters and hyphens")
    description = _required_text(meta, "description").replace("\\n", "\n")
    fields: dict[str, Any] = {
        "name": name,
        "description": description,
        "tools": _tools(meta.get("tools"), "tools", known_tools, warnings),
        "disallowed_tools": _tools(meta.get("disallowedTools"), "disallowedTools", None, warnings)
        or [],
        "model": _model(meta.get("model"), model_aliases or {}, warnings),
        "permission_mode": _permission_mode(meta.get("permissionMode"), warnings),
        "max_turns": _max_turns(meta.get("maxTurns"), warnings),
        "background": _flag(meta.get("background"), "background", warnings),
        "isolation": _choice(meta.get("isolation"), "isolation", ("worktree",), warnings),
        "color": None if meta.get("color") is None else str(meta["color"]),
        "extra": {k: v for k, v in meta.items() if k not in KNOWN_FIELDS},
    }
    warnings += [f"unknown field {k!r} kept" for k in fields["extra"]]
    return fields, warnings


def _required_text(meta: dict[str, Any], key: str) -> str:
    value = meta.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Invalid(f"no {key}: the frontmatter needs '{key}:'")
    if isinstance(value, dict | list):
        raise Invalid(f"{key} is a {type(value).__name__}, not text (quote it)")
    return str(value).strip()


def _tools(
    value: Any, field: str, known: frozenset[str] | None, warnings: list[str]
) -> list[str] | None:
    """A comma string or a list → rule strings. `known` given: drop tools covey lacks."""
    if value is None or value == "":
        return None
    raw = value if isinstance(value, list) else [value]
    rules: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            raise Invalid(f"{field}: {item!r} is not a tool name")
        try:
            rules += parse_tool_list(item, field)
        except UserError as e:
            raise Invalid(str(e)) from None
    rules = [_new_name(r) for r in rules]
    if known is None:
        return rules
    kept: list[str] = []
    lacking: list[str] = []
    no_server: list[str] = []
    for rule in rules:
        base, spec = rule.split("(", 1)[0], "(" in rule
        canonical = next((k for k in known if k.lower() == base.lower()), None)
        if canonical is None:
            (no_server if base.startswith("mcp__") else lacking).append(base)
            continue
        if canonical != base:
            warnings.append(f"tool {base!r} read as {canonical!r}")
        if spec and canonical != "Agent":
            warnings.append(f"tool {rule!r}: the specifier is ignored, all of {canonical} is given")
        tool = canonical + rule[len(base) :] if canonical == "Agent" else canonical
        if tool not in kept:
            kept.append(tool)
    if lacking or no_server:
        groups = [(lacking, "covey has no such tool"), (no_server, "no MCP server is connected")]
        why = "; ".join(f"{', '.join(names)} ({reason})" for names, reason in groups if names)
        warnings.append(f"tools dropped: {why}")
    return kept


def _new_name(rule: str) -> str:
    """`Task(worker)` → `Agent(worker)`, `MultiEdit` → `Edit`: older names, current tools."""
    base = rule.split("(", 1)[0]
    new = OLD_TOOL_NAMES.get(base)
    return rule if new is None else new + rule[len(base) :]


def _model(value: Any, aliases: Mapping[str, str], warnings: list[str]) -> str:
    """`inherit`, an alias (built-in or from settings `modelAliases`) or `provider:id`. A model
    covey cannot resolve becomes `inherit` (the parent's model), with a warning."""
    if value is None or value == "":
        return "inherit"
    model = str(value).strip()
    if model in aliases:
        return model
    if model.lower() == "inherit" or model.lower() in DEFAULT_ALIASES:
        return model.lower()
    if model.startswith("claude-"):
        return f"anthropic:{model}"
    provider, sep, rest = model.partition(":")
    if not sep or not rest or provider not in PROVIDERS:
        known = ", ".join([*DEFAULT_ALIASES, *(a for a in aliases if a not in DEFAULT_ALIASES)])
        warnings.append(
            f"model {model!r} is not a model covey knows (inherit, {known}, claude-…, "
            "anthropic:…, openai:…, or a settings modelAliases entry); the parent's model is used"
        )
        return "inherit"
    return model


def _permission_mode(value: Any, warnings: list[str]) -> str | None:
    if value is None:
        return None
    mode = _MODE_ALIASES.get(str(value), str(value))
    if mode not in PERMISSION_MODES:
        warnings.append(
            f"permissionMode {value!r} ignored: use one of {', '.join(PERMISSION_MODES)}"
        )
        return None
    return mode


def _max_turns(value: Any, warnings: list[str]) -> int | None:
    if value is None:
        return None
    try:
        turns = int(str(value).strip())
    except ValueError:
        turns = 0
    if isinstance(value, bool) or turns < 1:
        warnings.append(f"maxTurns {value!r} ignored: use a whole number of at least 1")
        return None
    return turns


def _flag(value: Any, field: str, warnings: list[str]) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "yes", "false", "no"):
        return text in ("true", "yes")
    warnings.append(f"{field} {value!r} ignored: use true or false")
    return False


def _choice(value: Any, field: str, choices: tuple[str, ...], warnings: list[str]) -> str | None:
    if value is None:
        return None
    if value in choices:
        return str(value)
    warnings.append(f"{field} {value!r} ignored: use {' or '.join(choices)}")
    return None
