"""Permission rules compiled and matched: Bash commands, paths, other specifiers.

The evaluation order and the modes live in `permissions.py`; this module only answers
"which rule matches this?".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from covey.config import split_permission_rule
from covey.errors import UserError
from covey.tools.shell import CommandAnalysis, SimpleCommand

if TYPE_CHECKING:
    import pathspec

__all__ = ["EDIT_TOOLS", "READ_TOOLS", "Rule", "allow_rule", "applies", "command_rule"]
__all__ += ["compile_all", "generic_hit", "path_hit", "path_rule", "relative", "root_forms"]
__all__ += ["write_rule"]

READ_TOOLS = frozenset({"Read", "Glob", "Grep"})
"""The tools a `Read(...)` rule covers."""
EDIT_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit"})
"""The tools an `Edit(...)` rule covers (with any tool whose `edits_files` is true)."""
_MAIN_ARG = {"Agent": "subagent_type", "Skill": "skill", "WebFetch": "url", "WebSearch": "query"}


@dataclass(frozen=True)
class Rule:
    text: str
    tool: str
    spec: str | None
    command: re.Pattern[str] | None = None  # Bash with wildcards; None: an exact command
    paths: pathspec.PathSpec[Any] | None = None
    bases: tuple[str, ...] = ()  # the directories a path specifier is relative to


def compile_all(rules: Iterable[str], kind: str, roots: tuple[str, ...]) -> list[Rule]:
    try:
        return [_compile(text, roots) for text in rules]
    except ValueError as e:
        raise UserError(f"invalid {kind} permission rule: {e}") from None


def _compile(text: str, roots: tuple[str, ...]) -> Rule:
    tool, spec = split_permission_rule(text)
    text = text.strip()
    if spec is None:
        return Rule(text, tool, None)
    if tool == "Bash":
        return Rule(text, tool, spec, command=_command_pattern(spec))
    if tool not in READ_TOOLS | EDIT_TOOLS:
        return Rule(text, tool, spec)
    bases, pattern = roots, spec
    if spec.startswith("//"):
        bases, pattern = ("/",), spec[1:]
    elif spec == "~" or spec.startswith("~/"):
        bases, pattern = root_forms(Path.home()), "/" + spec[2:] if spec != "~" else "**"
    elif spec.startswith("./"):
        pattern = spec[1:]
    import pathspec  # here: planning a session reads rules; only a path rule needs it

    paths = pathspec.PathSpec.from_lines("gitignore", [pattern])
    return Rule(text, tool, spec, paths=paths, bases=bases)


def _command_pattern(spec: str) -> re.Pattern[str] | None:
    """`git *` and `git:*` match `git` and `git ...` (a word boundary); `*` spans anything."""
    spec = spec[:-2] + " *" if spec.endswith(":*") else spec
    if "*" not in spec:
        return None
    tail = spec.endswith(" *")
    return _glob(spec[:-2] if tail else spec, "(?: .*)?" if tail else "")


def _glob(pattern: str, suffix: str = "") -> re.Pattern[str]:
    return re.compile(".*".join(map(re.escape, pattern.split("*"))) + suffix, re.DOTALL)


def _command_hit(rule: Rule, command: str) -> bool:
    if rule.command is None:
        return (rule.spec or "").strip() == command
    return rule.command.fullmatch(command) is not None


def command_rule(rules: list[Rule], command: str, shell: CommandAnalysis) -> str | None:
    """The first deny/ask rule matching the whole line or any form of any command in it."""
    candidates = [command, *(form for c in shell.commands for form in c.forms)]
    return next((r.text for r in rules if r.spec is None or _any_hit(r, candidates)), None)


def allow_rule(rules: list[Rule], command: str, shell: CommandAnalysis) -> str | None:
    """The allow rules covering every command of the line (comma-separated), or None; a
    bare `Bash` (or `Bash(*)`) covers everything, a command not known statically nothing else."""
    if bare := next((r for r in rules if r.spec is None or r.spec.strip() == "*"), None):
        return bare.text
    if exact := next((r for r in rules if r.command is None and _command_hit(r, command)), None):
        return exact.text
    if shell.problems:
        return None
    found: list[str] = []
    for c in shell.commands:
        if c.transparent:
            continue
        rule = None if c.dynamic else _allowing(rules, c)
        if rule is None:
            return None
        found += [] if rule in found else [rule]
    return ", ".join(found) or None


def _allowing(rules: list[Rule], command: SimpleCommand) -> str | None:
    return next((r.text for r in rules if _any_hit(r, command.allow_forms)), None)


def _any_hit(rule: Rule, commands: Iterable[str]) -> bool:
    return rule.spec is not None and any(_command_hit(rule, c) for c in commands)


def write_rule(rules: list[Rule], writes: list[tuple[str, list[str]]]) -> tuple[str, str] | None:
    """The first rule covering a file the command writes, and what it writes."""
    for path, forms in writes:
        if rule := path_rule(rules, forms, False):
            return rule, f"the command writes {path}"
    return None


def path_rule(rules: list[Rule], forms: list[str], is_dir: bool) -> str | None:
    """The first path rule (or bare rule) matching any form of a path."""
    for rule in rules:
        if rule.spec is None or (
            rule.paths is not None and any(path_hit(rule, f, is_dir) for f in forms)
        ):
            return rule.text
    return None


def applies(rule_tool: str, name: str, edits_files: bool = False) -> bool:
    """Whether a rule naming `rule_tool` is about the tool called `name`."""
    rule_tool = "Agent" if rule_tool == "Task" else rule_tool
    if rule_tool == name:
        return True
    if rule_tool == "Edit":
        return name in EDIT_TOOLS or edits_files
    if rule_tool == "Read":
        return name in READ_TOOLS
    if rule_tool.startswith("mcp__") and name.startswith("mcp__"):
        if "*" in rule_tool:
            return fnmatchcase(name, rule_tool)
        return rule_tool.count("__") == 1 and name.startswith(rule_tool + "__")
    return False


def path_hit(rule: Rule, path: str, is_dir: bool) -> bool:
    assert rule.paths is not None
    for base in rule.bases:
        rel = relative(path, base)
        if rel is not None and (
            rule.paths.match_file(rel) or (is_dir and rule.paths.match_file(rel + "/"))
        ):
            return True
    return False


def generic_hit(spec: str, name: str, inp: Mapping[str, Any]) -> bool:
    key, sep, value = spec.partition(":")
    if name == "WebFetch" and sep and key == "domain":
        host = urlsplit(str(inp.get("url", ""))).hostname or ""
        return _wild(value, host) or host.endswith("." + value)
    if sep and key in inp:
        return _wild(value.strip(), str(inp[key]))
    main = _MAIN_ARG.get(name)
    if main is None:
        strings = [k for k, v in inp.items() if isinstance(v, str)]
        main = strings[0] if len(strings) == 1 else None
    return main is not None and main in inp and _wild(spec, str(inp[main]))


def _wild(pattern: str, text: str) -> bool:
    return _glob(pattern).fullmatch(text) is not None


def relative(path: str, base: str) -> str | None:
    """`path` relative to `base` in POSIX form, or None when it is not strictly inside."""
    prefix = base if base.endswith("/") else base + "/"
    return path[len(prefix) :] if path.startswith(prefix) and path != prefix else None


def root_forms(*dirs: Path) -> tuple[str, ...]:
    forms = [f(str(d)) for d in dirs for f in (os.path.abspath, os.path.realpath)]
    return tuple(dict.fromkeys(os.path.normpath(f) for f in forms))
