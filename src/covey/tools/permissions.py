"""May this tool call run? Permission rules and modes, with Claude Code's syntax and order.

A rule is `Tool` or `Tool(specifier)`. Specifiers: for Bash a command, exact (`npm test`),
with `*` wildcards spanning spaces (`git *`; a trailing ` *` needs a word boundary, so `ls *`
matches `ls -la` but not `lsof`) or the legacy `git:*` (= `git *`); for Read/Edit/Write/Glob/
Grep a gitignore-style path (`src/**` and `/src/**` under the project root, `//abs/**`
absolute, `~/x/**` under home); `Edit` rules cover every file-editing tool and `Read` rules
cover Read, Glob and Grep; for other tools `param:value` or the tool's main argument.

Evaluation: deny rules → plan mode denies what is not read-only → bypassPermissions allows →
ask rules → allow rules → the mode's default. A compound Bash command (`a && b`, `a | b`,
`$(b)`) is allowed by rules only when every command in it is; a deny matching any one wins.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal, cast, get_args
from urllib.parse import urlsplit

import pathspec

from covey.config import PermissionMode, Settings, split_permission_rule
from covey.errors import UserError
from covey.tools.base import Tool

__all__ = ["EDIT_TOOLS", "PERMISSION_MODES", "READ_TOOLS", "Behavior", "Decision"]
__all__ += ["PermissionPolicy", "parse_tool_list", "rule_matches", "subcommands"]

PERMISSION_MODES: tuple[str, ...] = get_args(PermissionMode)
READ_TOOLS = frozenset({"Read", "Glob", "Grep"})
"""The tools a `Read(...)` rule covers."""
EDIT_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit"})
"""The tools an `Edit(...)` rule covers (with any tool whose `edits_files` is true)."""
_MAIN_ARG = {"Agent": "subagent_type", "Skill": "skill", "WebFetch": "url", "WebSearch": "query"}
_PROTECTED = frozenset({".git", ".covey"})  # acceptEdits still asks about files in these

Behavior = Literal["allow", "ask", "deny"]


@dataclass(frozen=True)
class Decision:
    behavior: Behavior
    rule: str | None
    """The rule (or rules, comma-separated) that decided; None when the mode did."""
    reason: str


@dataclass(frozen=True)
class _Rule:
    text: str
    tool: str
    spec: str | None
    command: re.Pattern[str] | None = None  # Bash with wildcards; None: an exact command
    paths: pathspec.PathSpec[Any] | None = None
    bases: tuple[str, ...] = ()  # the directories a path specifier is relative to


class PermissionPolicy:
    """Decides each tool call: allow, ask or deny, with the rule and a reason."""

    def __init__(
        self,
        mode: str,
        allow: Iterable[str],
        ask: Iterable[str],
        deny: Iterable[str],
        project_root: Path,
        workspace: Path,
        *,
        extra_dirs: Sequence[Path] = (),
    ) -> None:
        if mode not in PERMISSION_MODES:
            raise UserError(f"unknown permission mode {mode!r}; use one of {PERMISSION_MODES}")
        self.mode = mode
        self.workspace = workspace
        self._roots = _forms(project_root, workspace)
        self._workdirs = tuple(dict.fromkeys(os.path.realpath(d) for d in (workspace, *extra_dirs)))
        self.allow, self.ask, self.deny = (
            _compile_all(rules, kind, self._roots)
            for rules, kind in ((allow, "allow"), (ask, "ask"), (deny, "deny"))
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        mode_override: str | None = None,
        allowed_tools: Sequence[str] = (),
        disallowed_tools: Sequence[str] = (),
        project_root: Path,
        workspace: Path,
    ) -> PermissionPolicy:
        """The policy for a session: settings rules plus `--allowedTools`/`--disallowedTools`."""
        perms = settings.permissions
        extra = [project_root / Path(d).expanduser() for d in perms.additionalDirectories]
        return cls(
            mode_override or perms.defaultMode or "default",
            [*perms.allow, *_cli_rules(allowed_tools, "--allowedTools")],
            perms.ask,
            [*perms.deny, *_cli_rules(disallowed_tools, "--disallowedTools")],
            project_root,
            workspace,
            extra_dirs=extra,
        )

    def tool_enabled(self, name: str) -> bool:
        """False when a bare-name deny rule takes the tool out of the model's context."""
        return not any(r.spec is None and _applies(r.tool, name) for r in self.deny)

    def decide(self, tool: Tool[Any], tool_input: Mapping[str, Any]) -> Decision:
        if rule := self._match(self.deny, tool, tool_input, every=False):
            return Decision("deny", rule, f"denied by permission rule {rule}")
        read_only = tool.read_only_for(tool_input)
        if self.mode == "plan" and not read_only:
            return Decision("deny", None, f"plan mode is read-only; {tool.name} may not run")
        if self.mode == "bypassPermissions":
            return Decision("allow", None, "bypassPermissions mode allows what no rule denies")
        if rule := self._match(self.ask, tool, tool_input, every=False):
            return self._ask(rule, f"permission rule {rule} asks first")
        if rule := self._match(self.allow, tool, tool_input, every=True):
            return Decision("allow", rule, f"allowed by permission rule {rule}")
        if read_only:
            return Decision("allow", None, f"{tool.name} is read-only")
        if self.mode == "acceptEdits" and self._edit_inside(tool, tool_input):
            return Decision("allow", None, "acceptEdits mode accepts edits inside the workspace")
        return self._ask(None, f"{tool.name} needs permission in {self.mode} mode")

    def _ask(self, rule: str | None, reason: str) -> Decision:
        if self.mode == "dontAsk":
            return Decision("deny", rule, f"dontAsk mode denies what would ask ({reason})")
        return Decision("ask", rule, reason)

    def _match(
        self, rules: list[_Rule], tool: Tool[Any], inp: Mapping[str, Any], *, every: bool
    ) -> str | None:
        """The first rule matching the call; with `every`, all of its commands or path forms."""
        rules = [r for r in rules if _applies(r.tool, tool.name, tool.edits_files)]
        if bare := next((r for r in rules if r.spec is None), None):
            return bare.text
        if tool.name == "Bash":
            return _match_command(rules, str(inp.get("command", "")).strip(), every=every)
        target = self._target(tool, inp)
        for rule in rules:
            if rule.paths is None:
                if _generic_hit(rule.spec or "", tool.name, inp):
                    return rule.text
            elif target is not None:
                hits = [_path_hit(rule, form, target[1]) for form in target[0]]
                if all(hits) if every else any(hits):
                    return rule.text
        return None

    def _target(self, tool: Tool[Any], inp: Mapping[str, Any]) -> tuple[list[str], bool] | None:
        """The path a call touches: as written (absolute) and resolved; and whether a dir."""
        raw = inp.get("file_path") or inp.get("notebook_path") or inp.get("path")
        if not isinstance(raw, str):
            if tool.name not in ("Glob", "Grep"):
                return None
            raw = "."  # they search the workspace by default
        path = os.path.join(self.workspace, os.path.expanduser(raw))
        real = os.path.realpath(path)
        return list(dict.fromkeys((os.path.abspath(path), real))), os.path.isdir(real)

    def _edit_inside(self, tool: Tool[Any], inp: Mapping[str, Any]) -> bool:
        if not (tool.edits_files or tool.name in EDIT_TOOLS):
            return False
        target = self._target(tool, inp)
        rels = [_relative(target[0][-1], d) for d in self._workdirs] if target else []
        return any(rel is not None and not _PROTECTED & set(rel.split("/")) for rel in rels)


def rule_matches(
    rule: str, tool_name: str, tool_input: Mapping[str, Any], *, project_root: Path, workspace: Path
) -> bool:
    """Whether one rule covers a call the way a deny rule would (a compound Bash command matches
    when any command in it does). Hooks use it for their `if` field. UserError if malformed."""
    policy = PermissionPolicy("default", (), (), (rule,), project_root, workspace)
    tool = cast("Tool[Any]", SimpleNamespace(name=tool_name, edits_files=False))
    return policy._match(policy.deny, tool, tool_input, every=False) is not None


def parse_tool_list(value: str, flag: str = "--allowedTools") -> list[str]:
    """`"Bash(git log:*) Edit,Read"` → three rules: split on commas and spaces outside ()."""
    rules: list[str] = []
    current, depth = "", 0
    for ch in value:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            break
        if depth == 0 and (ch == "," or ch.isspace()):
            rules += [current] if current else []
            current = ""
        else:
            current += ch
    if depth != 0:
        raise UserError(f"{flag}: unbalanced parentheses in {value!r}")
    return [*rules, current] if current else rules


def _cli_rules(values: Sequence[str], flag: str) -> list[str]:
    rules = [rule for value in values for rule in parse_tool_list(value, flag)]
    for rule in rules:
        try:
            split_permission_rule(rule)
        except ValueError as e:
            raise UserError(f"{flag}: {e}") from None
    return rules


def _compile_all(rules: Iterable[str], kind: str, roots: tuple[str, ...]) -> list[_Rule]:
    try:
        return [_compile(text, roots) for text in rules]
    except ValueError as e:
        raise UserError(f"invalid {kind} permission rule: {e}") from None


def _compile(text: str, roots: tuple[str, ...]) -> _Rule:
    tool, spec = split_permission_rule(text)
    text = text.strip()
    if spec is None:
        return _Rule(text, tool, None)
    if tool == "Bash":
        return _Rule(text, tool, spec, command=_command_pattern(spec))
    if tool not in READ_TOOLS | EDIT_TOOLS:
        return _Rule(text, tool, spec)
    bases, pattern = roots, spec
    if spec.startswith("//"):
        bases, pattern = ("/",), spec[1:]
    elif spec == "~" or spec.startswith("~/"):
        bases, pattern = _forms(Path.home()), "/" + spec[2:] if spec != "~" else "**"
    elif spec.startswith("./"):
        pattern = spec[1:]
    paths = pathspec.PathSpec.from_lines("gitignore", [pattern])
    return _Rule(text, tool, spec, paths=paths, bases=bases)


def _command_pattern(spec: str) -> re.Pattern[str] | None:
    """`git *` and `git:*` match `git` and `git ...` (a word boundary); `*` spans anything."""
    spec = spec[:-2] + " *" if spec.endswith(":*") else spec
    if "*" not in spec:
        return None
    tail = spec.endswith(" *")
    return _glob(spec[:-2] if tail else spec, "(?: .*)?" if tail else "")


def _glob(pattern: str, suffix: str = "") -> re.Pattern[str]:
    return re.compile(".*".join(map(re.escape, pattern.split("*"))) + suffix, re.DOTALL)


def _command_hit(rule: _Rule, command: str) -> bool:
    if rule.command is None:
        return (rule.spec or "").strip() == command
    return rule.command.fullmatch(command) is not None


def _match_command(rules: list[_Rule], command: str, *, every: bool) -> str | None:
    parts = subcommands(command)
    if not every:  # deny/ask: the whole command or any command inside it
        candidates = [command, *parts]
        return next((r.text for r in rules if any(_command_hit(r, c) for c in candidates)), None)
    if exact := next((r for r in rules if r.command is None and _command_hit(r, command)), None):
        return exact.text
    found: list[str] = []
    for part in parts:
        rule = next((r for r in rules if _command_hit(r, part)), None)
        if rule is None:
            return None
        found += [] if rule.text in found else [rule.text]
    return ", ".join(found) or None


def subcommands(command: str) -> list[str]:
    """The simple commands in a shell command line, split at `;`, `&&`, `||`, `|`, `&`,
    newlines, subshells, `$(...)`, `<(...)` and backticks outside quotes.

    Conservative: what it cannot tell apart stays split, so an allow rule sees too many
    pieces rather than too few. The text around a substitution stays one command (`echo $()`).
    """
    parts: list[str] = []
    stack: list[str] = []  # open contexts: ' " ( $( `
    saved: list[str] = []  # the command around each open substitution
    cur, i = "", 0

    def flush() -> None:
        nonlocal cur
        if cur.strip():
            parts.append(cur.strip())
        cur = ""

    while i < len(command):
        ch, two, step = command[i], command[i : i + 2], 1
        top = stack[-1] if stack else ""
        if top == "'":
            cur += ch
            if ch == "'":
                stack.pop()
        elif ch == "\\":
            cur, step = cur + two, 2
        elif ch == '"' and top == '"':
            cur += ch
            stack.pop()
        elif two == "$(" or (two in ("<(", ">(") and top != '"') or (ch == "`" and top != "`"):
            step = 1 if ch == "`" else 2
            saved.append(cur + command[i : i + step])
            stack.append("`" if ch == "`" else "$(")
            cur = ""
        elif (ch == "`" and top == "`") or (ch == ")" and top == "$("):
            flush()
            stack.pop()
            cur = saved.pop() + ch
        elif top == '"':
            cur += ch
        elif ch in "'\"":
            stack.append(ch)
            cur += ch
        elif ch in "()":
            flush()
            if ch == "(":
                stack.append(ch)
            elif top == "(":
                stack.pop()
        elif ch in ";|\n" or (ch == "&" and two != "&>" and not cur.endswith(("<", ">"))):
            flush()
        else:
            cur += ch
        i += step
    flush()
    return parts


def _applies(rule_tool: str, name: str, edits_files: bool = False) -> bool:
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


def _path_hit(rule: _Rule, path: str, is_dir: bool) -> bool:
    assert rule.paths is not None
    for base in rule.bases:
        rel = _relative(path, base)
        if rel is not None and (
            rule.paths.match_file(rel) or (is_dir and rule.paths.match_file(rel + "/"))
        ):
            return True
    return False


def _generic_hit(spec: str, name: str, inp: Mapping[str, Any]) -> bool:
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


def _relative(path: str, base: str) -> str | None:
    """`path` relative to `base` in POSIX form, or None when it is not strictly inside."""
    prefix = base if base.endswith("/") else base + "/"
    return path[len(prefix) :] if path.startswith(prefix) and path != prefix else None


def _forms(*dirs: Path) -> tuple[str, ...]:
    forms = [f(str(d)) for d in dirs for f in (os.path.abspath, os.path.realpath)]
    return tuple(dict.fromkeys(os.path.normpath(f) for f in forms))
