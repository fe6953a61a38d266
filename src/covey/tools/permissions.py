"""May this tool call run? Permission rules and modes, with Claude Code's syntax and order.

A rule is `Tool` or `Tool(specifier)`. Specifiers: for Bash a command, exact (`npm test`),
with `*` wildcards spanning spaces (`git *`; a trailing ` *` needs a word boundary, so `ls *`
matches `ls -la` but not `lsof`) or the legacy `git:*` (= `git *`); for Read/Edit/Write/Glob/
Grep a gitignore-style path (`src/**` and `/src/**` under the project root, `//abs/**`
absolute, `~/x/**` under home); `Edit` rules cover every file-editing tool and `Read` rules
cover Read, Glob and Grep; for other tools `param:value` or the tool's main argument.

Evaluation: deny rules → plan mode denies what is not read-only → bypassPermissions allows →
ask rules → writes into `.git`, `.covey` or `.claude` ask → allow rules → the mode's default.

A Bash command line is parsed (`covey.tools.shell`): it is allowed by rules only when every
simple command in it is, wrappers looked through (`timeout 5 npm test` is `npm test`); a deny
or ask rule matching any one of them, in any of its forms (`/bin/rm` is also `rm`), wins. A
command whose program is not known statically (`$X`, `$(…)`, `eval "$s"`) matches no allow
rule, and in bypassPermissions it asks when Bash deny rules exist (they cannot be checked).
A file it writes by redirection or `tee` is an edit of that file: Edit deny and ask rules
apply, and an allow needs it inside the workspace (or an Edit allow rule covering it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from covey.config import PermissionMode, Settings, split_permission_rule
from covey.errors import UserError
from covey.tools._rules import (
    EDIT_TOOLS,
    READ_TOOLS,
    Rule,
    allow_rule,
    applies,
    command_rule,
    compile_all,
    generic_hit,
    path_hit,
    path_rule,
    relative,
    root_forms,
    write_rule,
)
from covey.tools.paths import absolute_path
from covey.tools.shell import CommandAnalysis, analyze_command

if TYPE_CHECKING:  # the rules check without loading the tools' base (pydantic, messages)
    from covey.tools.base import Tool

__all__ = ["EDIT_TOOLS", "PERMISSION_MODES", "READ_TOOLS", "Behavior", "Decision"]
__all__ += ["PROTECTED_DIRS", "PermissionPolicy", "parse_tool_list", "rule_matches"]

PERMISSION_MODES: tuple[str, ...] = get_args(PermissionMode)
PROTECTED_DIRS = frozenset({".git", ".covey", ".claude"})
"""Writes into these ask in every mode but bypassPermissions (a broad allow rule such as
`Edit` does not cover them; one naming the path, such as `Edit(.claude/agents/**)`, does)."""

Behavior = Literal["allow", "ask", "deny"]
_PROTECTED_REASON = (
    "{} writes into .git, .covey or .claude, which asks in every mode but bypassPermissions"
)


@dataclass(frozen=True)
class Decision:
    behavior: Behavior
    rule: str | None
    """The rule (or rules, comma-separated) that decided; None when the mode did."""
    reason: str


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
        self._roots = root_forms(project_root, workspace)
        self._workdirs = tuple(dict.fromkeys(os.path.realpath(d) for d in (workspace, *extra_dirs)))
        self.allow, self.ask, self.deny = (
            compile_all(rules, kind, self._roots)
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

    def adopt(self, other: PermissionPolicy) -> None:
        """Take `other`'s mode, rules and directories: a running turn follows a change of its
        session's permissions (the tools keep this object)."""
        self.mode, self._workdirs = other.mode, other._workdirs
        self.allow, self.ask, self.deny = other.allow, other.ask, other.deny

    def tool_enabled(self, name: str) -> bool:
        """False when a bare-name deny rule takes the tool out of the model's context."""
        return not any(r.spec is None and applies(r.tool, name) for r in self.deny)

    def denied(self, kind: str, path: str) -> str | None:
        """The deny rule covering `kind` ("Read" or "Edit") of `path`, or None: what the file
        tools check on the path they open, and Glob and Grep on each file they list."""
        tools = {"Read"} if kind == "Read" else EDIT_TOOLS
        rules = [r for r in self.deny if r.tool in tools]
        if not rules:
            return None
        return path_rule(rules, *self._forms(path))

    def decide(self, tool: Tool[Any], tool_input: Mapping[str, Any]) -> Decision:
        if tool.name == "Bash":
            return self._decide_bash(str(tool_input.get("command", "")).strip())
        if rule := self._match(self.deny, tool, tool_input, every=False):
            return Decision("deny", rule, f"denied by permission rule {rule}")
        read_only = tool.read_only_for(tool_input)
        if self.mode == "plan" and not read_only:
            return Decision("deny", None, f"plan mode is read-only; {tool.name} may not run")
        if self.mode == "bypassPermissions":
            return Decision("allow", None, "bypassPermissions mode allows what no rule denies")
        if rule := self._match(self.ask, tool, tool_input, every=False):
            return self._ask(rule, f"permission rule {rule} asks first")
        rule = self._match(self.allow, tool, tool_input, every=True)
        target = self._target(tool, tool_input) if tool.edits_files else None
        if target and self._protected(target[0]) and (rule is None or "(" not in rule):
            return self._ask(None, _PROTECTED_REASON.format(tool.name))
        if rule:
            return Decision("allow", rule, f"allowed by permission rule {rule}")
        if read_only:
            return Decision("allow", None, f"{tool.name} is read-only")
        if self.mode == "acceptEdits" and self._edit_inside(tool, tool_input):
            return Decision("allow", None, "acceptEdits mode accepts edits inside the workspace")
        return self._ask(None, f"{tool.name} needs permission in {self.mode} mode")

    def _decide_bash(self, command: str) -> Decision:
        shell = _analysis(command)
        bash = {kind: [r for r in rules if applies(r.tool, "Bash")] for kind, rules in self._all()}
        edit = {kind: [r for r in rules if r.tool in EDIT_TOOLS] for kind, rules in self._all()}
        writes = [(w, self._forms(w)[0]) for w in shell.writes if w is not None]
        if rule := command_rule(bash["deny"], command, shell):
            return Decision("deny", rule, f"denied by permission rule {rule}")
        if found := write_rule(edit["deny"], writes):
            return Decision("deny", found[0], f"denied by permission rule {found[0]} ({found[1]})")
        if self.mode == "plan":
            return Decision("deny", None, "plan mode is read-only; Bash may not run")
        if self.mode == "bypassPermissions":
            unchecked = list(shell.dynamic) if any(r.spec for r in bash["deny"]) else []
            if None in shell.writes and edit["deny"]:
                unchecked.append("it writes a file whose name is not known statically")
            if unchecked:
                return Decision(
                    "ask", None, f"deny rules cannot be checked: {'; '.join(unchecked)}"
                )
            return Decision("allow", None, "bypassPermissions mode allows what no rule denies")
        if rule := command_rule(bash["ask"], command, shell):
            return self._ask(rule, f"permission rule {rule} asks first")
        if found := write_rule(edit["ask"], writes):
            return self._ask(found[0], f"permission rule {found[0]} asks first ({found[1]})")
        problems = []
        for path, forms in writes:
            covered = path_rule(edit["allow"], forms, False)
            if self._protected(forms) and (covered is None or "(" not in covered):
                return self._ask(None, _PROTECTED_REASON.format(f"Bash (writing {path})"))
            if covered is None and not any(self._inside(f) for f in forms):
                problems.append(f"it writes {path}, outside the workspace")
        if None in shell.writes:
            problems.append("it writes a file whose name is not known statically")
        rule = allow_rule(bash["allow"], command, shell)
        if rule is not None and not problems:
            return Decision("allow", rule, f"allowed by permission rule {rule}")
        problems = [*shell.dynamic, *problems]
        why = f" ({'; '.join(problems)})" if problems else ""
        return self._ask(None, f"Bash needs permission in {self.mode} mode{why}")

    def _all(self) -> list[tuple[str, list[Rule]]]:
        return [("deny", self.deny), ("ask", self.ask), ("allow", self.allow)]

    def _ask(self, rule: str | None, reason: str) -> Decision:
        if self.mode == "dontAsk":
            return Decision("deny", rule, f"dontAsk mode denies what would ask ({reason})")
        return Decision("ask", rule, reason)

    def _match(
        self, rules: list[Rule], tool: Tool[Any], inp: Mapping[str, Any], *, every: bool
    ) -> str | None:
        """The first rule matching the call; with `every`, all of its commands or path forms."""
        rules = [r for r in rules if applies(r.tool, tool.name, tool.edits_files)]
        if bare := next((r for r in rules if r.spec is None), None):
            return bare.text
        if tool.name == "Bash":
            command = str(inp.get("command", "")).strip()
            shell = _analysis(command)
            return (allow_rule if every else command_rule)(rules, command, shell)
        target = self._target(tool, inp)
        for rule in rules:
            if rule.paths is None:
                if generic_hit(rule.spec or "", tool.name, inp):
                    return rule.text
            elif target is not None:
                hits = [path_hit(rule, form, target[1]) for form in target[0]]
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
        return self._forms(raw)

    def _forms(self, raw: str) -> tuple[list[str], bool]:
        """A path as written (made absolute as the tools do) and resolved; whether a dir."""
        path = absolute_path(self.workspace, raw)
        real = os.path.realpath(path)
        return list(dict.fromkeys((os.path.abspath(path), real))), os.path.isdir(real)

    def _inside(self, path: str) -> bool:
        return any(path == d or relative(path, d) is not None for d in self._workdirs)

    def _protected(self, forms: list[str]) -> bool:
        """Whether a form of the path lies in a protected folder of a workspace dir."""
        rels = [relative(form, d) for form in forms for d in self._workdirs]
        return any(rel is not None and PROTECTED_DIRS & set(rel.split("/")) for rel in rels)

    def _edit_inside(self, tool: Tool[Any], inp: Mapping[str, Any]) -> bool:
        if not (tool.edits_files or tool.name in EDIT_TOOLS):
            return False
        target = self._target(tool, inp)
        return target is not None and self._inside(target[0][-1])


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


@lru_cache(maxsize=256)
def _analysis(command: str) -> CommandAnalysis:
    return analyze_command(command)
