"""Hook settings in Claude Code's shape, validated into typed models.

    {"hooks": {"PreToolUse": [{"matcher": "Bash|Edit",
                               "hooks": [{"type": "command", "command": "./check.sh",
                                          "timeout": 600, "if": "Bash(git *)"}]}]}}

Only `command` handlers run from settings files; other handler types and unknown events are
warned about and skipped. A `callback` handler (`CallbackHook`) is never read from a file: a host
that speaks the Claude Agent SDK's control protocol registers the SDK's hook callbacks with
`callback_hooks` (the `hooks` of its `initialize` request). Problems that make a hook unusable
raise a one-line `UserError` naming the file and the dotted key.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from typing import Annotated, Literal

import msgspec

from covey.config.rules import split_permission_rule
from covey.errors import UserError

__all__ = [
    "EVENTS",
    "TOOL_EVENTS",
    "CallbackHook",
    "CommandHook",
    "Handler",
    "HooksConfig",
    "MatcherGroup",
    "callback_hooks",
    "matcher_matches",
    "merge_hooks",
    "validate_hooks",
]

EVENTS = frozenset(
    {
        "SessionStart",
        "UserPromptSubmit",
        "PreToolUse",
        "PostToolUse",
        "Stop",
        "PreCompact",
        "PostCompact",
        "Notification",
        "SubagentStart",
        "SubagentStop",
        "TeammateIdle",
        "TaskCreated",
        "TaskCompleted",
        "WorktreeCreate",
        "WorktreeRemove",
    }
)
"""The events covey accepts in settings."""
TOOL_EVENTS = frozenset({"PreToolUse", "PostToolUse"})
"""The events whose handlers may have an `if` rule."""
_OTHER_TYPES = ("http", "mcp_tool", "prompt", "agent")
_UNSUPPORTED_FIELDS = ("args", "async", "asyncRewake", "shell")
_SIMPLE = re.compile(r"[A-Za-z0-9_, |-]*")


class CommandHook(msgspec.Struct, frozen=True, kw_only=True):
    """One `{"type": "command", ...}` handler. The hook models are msgspec Structs (no
    pydantic on a dispatch), frozen so that `merge_hooks` can drop a repeated handler."""

    type: Literal["command"] = "command"
    command: str
    """Run by `/bin/sh -c` in the session's working directory; the event JSON on stdin."""
    timeout: Annotated[float, msgspec.Meta(gt=0)] | None = None
    """Seconds before the hook is killed; None: the runner's default (600)."""
    if_: str | None = msgspec.field(default=None, name="if")
    """A permission rule (`Bash(git *)`) the tool call must match; tool events only."""
    statusMessage: str | None = None
    """What a UI may show while the hook runs."""
    once: bool = False
    """Run at most once per session."""

    def __post_init__(self) -> None:
        if not self.command.strip():
            raise ValueError("command: must not be empty")
        if self.if_ is not None:
            try:
                split_permission_rule(self.if_)
            except ValueError as e:
                raise ValueError(f"if: {e}") from None

    @property
    def key(self) -> str:
        """What makes two handlers of an event the same one (each runs once per event)."""
        return self.command


class CallbackHook(msgspec.Struct, frozen=True, kw_only=True):
    """A hook callback of the Claude Agent SDK: the event's input goes to the SDK as a
    `hook_callback` control request, and its answer is read as a command hook's JSON output."""

    type: Literal["callback"] = "callback"
    callback_id: str
    timeout: float | None = None
    """Seconds to wait for the answer; None: the runner's default."""
    if_: None = None
    once: bool = False

    @property
    def key(self) -> str:
        return f"callback:{self.callback_id}"


Handler = CommandHook | CallbackHook


class MatcherGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Handlers that run when `matcher` matches the event's value (tool name, trigger...)."""

    matcher: str = ""
    """`*`, "" → everything; `A|B` or `A,B` → exact names; anything else → a regex search."""
    hooks: tuple[Handler, ...] = ()


class HooksConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Matcher groups by event name."""

    events: dict[str, tuple[MatcherGroup, ...]] = {}

    def groups(self, event: str) -> tuple[MatcherGroup, ...]:
        return self.events.get(event, ())

    def handler_count(self) -> int:
        return sum(len(g.hooks) for groups in self.events.values() for g in groups)


def matcher_matches(matcher: str | None, value: str) -> bool:
    """Claude Code's matcher rules: all, an exact list split on `|`/`,`, or a regex search."""
    if matcher is None or matcher.strip() in ("", "*"):
        return True
    if _SIMPLE.fullmatch(matcher):
        return value in {part.strip() for part in re.split(r"[|,]", matcher)}
    return re.search(matcher, value) is not None


def callback_hooks(raw: object) -> tuple[HooksConfig, list[str]]:
    """The hooks of an SDK `initialize` request (`{"PreToolUse": [{"matcher": "Bash",
    "hookCallbackIds": ["hook_0"], "timeout": 30}]}`) as callback handlers; warnings for the
    events covey does not have (their callbacks are never called)."""
    if not isinstance(raw, dict):
        return HooksConfig(), []
    events: dict[str, tuple[MatcherGroup, ...]] = {}
    warnings: list[str] = []
    for event, matchers in raw.items():
        if event not in EVENTS:
            warnings.append(f"initialize: covey has no {event} hook event; its callbacks never run")
            continue
        groups = []
        for m in matchers if isinstance(matchers, list) else []:
            ids = m.get("hookCallbackIds") if isinstance(m, dict) else None
            if not isinstance(ids, list):
                continue
            timeout = _positive_seconds(m.get("timeout"))
            handlers = tuple(CallbackHook(callback_id=str(i), timeout=timeout) for i in ids)
            groups.append(MatcherGroup(matcher=str(m.get("matcher") or ""), hooks=handlers))
        if groups:
            events[event] = tuple(groups)
    return HooksConfig(events=events), warnings


def _positive_seconds(value: object) -> float | None:
    """An SDK matcher's `timeout` when it is a positive number of seconds; else None (the
    runner's default): 0, a negative number or `true` would time out at once."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def merge_hooks(configs: Iterable[HooksConfig]) -> HooksConfig:
    """Lists concatenate in order; a handler equal to one already under the same event and
    matcher is dropped (and a group left with none)."""
    merged: dict[str, list[MatcherGroup]] = {}
    for config in configs:
        for event, groups in config.events.items():
            out = merged.setdefault(event, [])
            for group in groups:
                seen = {h for g in out if g.matcher == group.matcher for h in g.hooks}
                fresh = tuple(dict.fromkeys(h for h in group.hooks if h not in seen))
                if fresh:
                    out.append(MatcherGroup(matcher=group.matcher, hooks=fresh))
    return HooksConfig(events={e: tuple(gs) for e, gs in merged.items() if gs})


def validate_hooks(raw: object, source: str) -> tuple[HooksConfig, list[str]]:
    """Validate the value of a settings file's `hooks` key.

    Raises a one-line UserError (`<source>: key hooks.X[0].hooks[1].command must be ...`);
    returns the config and warnings (unknown events and keys, unsupported handler types).
    """
    reader = _Reader(source)
    return reader.config(raw), reader.warnings


class _Reader:
    """Walks raw hook settings; collects warnings, raises the first error."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.warnings: list[str] = []

    def fail(self, problem: str) -> UserError:
        return UserError(f"{self.source}: {problem}")

    def warn(self, problem: str) -> None:
        self.warnings.append(f"{self.source}: {problem}")

    def unknown(self, key: str, keys: Iterable[str]) -> None:
        for extra in sorted(keys):
            self.warn(f"unknown key {key}.{extra}; it is ignored")

    def config(self, raw: object) -> HooksConfig:
        if not isinstance(raw, dict):
            raise self.fail(f"key hooks must be an object (got {_kind(raw)})")
        events: dict[str, tuple[MatcherGroup, ...]] = {}
        for event, groups in raw.items():
            key = f"hooks.{event}"
            if event not in EVENTS:
                close = difflib.get_close_matches(str(event), sorted(EVENTS), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.warn(f"unknown hook event {key}{hint}; it is ignored")
                continue
            if not isinstance(groups, list):
                raise self.fail(f"key {key} must be a list of matcher groups (got {_kind(groups)})")
            parsed = [self.group(event, g, f"{key}[{i}]") for i, g in enumerate(groups)]
            if kept := tuple(g for g in parsed if g.hooks):
                events[event] = kept
        return HooksConfig(events=events)

    def group(self, event: str, raw: object, key: str) -> MatcherGroup:
        if not isinstance(raw, dict):
            raise self.fail(f"key {key} must be an object (got {_kind(raw)})")
        self.unknown(key, raw.keys() - {"matcher", "hooks"})
        matcher = raw.get("matcher")
        if matcher is not None and not isinstance(matcher, str):
            raise self.fail(f"key {key}.matcher must be a string (got {_kind(matcher)})")
        if matcher and matcher.strip() != "*" and not _SIMPLE.fullmatch(matcher):
            try:
                re.compile(matcher)
            except re.error as e:
                raise self.fail(
                    f"key {key}.matcher is not a valid regular expression: {e}"
                ) from None
        handlers = raw.get("hooks")
        if not isinstance(handlers, list):
            got = "nothing" if handlers is None else _kind(handlers)
            raise self.fail(f"key {key}.hooks must be a list of handlers (got {got})")
        found = [self.handler(event, h, f"{key}.hooks[{j}]") for j, h in enumerate(handlers)]
        return MatcherGroup(matcher=matcher or "", hooks=tuple(h for h in found if h))

    def handler(self, event: str, raw: object, key: str) -> CommandHook | None:
        if not isinstance(raw, dict):
            raise self.fail(f"key {key} must be an object (got {_kind(raw)})")
        kind = raw.get("type")
        if kind in _OTHER_TYPES:
            self.warn(f"key {key}.type: {kind} hooks are not supported yet; the handler is skipped")
            return None
        if kind != "command":
            got = "nothing" if kind is None else json.dumps(kind)
            types = ", ".join(("command", *_OTHER_TYPES))
            raise self.fail(f"key {key}.type must be one of {types} (got {got})")
        try:
            hook = msgspec.convert(raw, CommandHook)
        except msgspec.ValidationError as e:
            raise self.fail(_describe(str(e), raw, key)) from None
        extras = raw.keys() - {"type", "command", "timeout", "if", "statusMessage", "once"}
        for name in sorted(extras & set(_UNSUPPORTED_FIELDS)):
            self.warn(f"key {key}.{name} is not supported yet; it is ignored")
        self.unknown(key, extras - set(_UNSUPPORTED_FIELDS))
        if hook.if_ is not None and event not in TOOL_EVENTS:
            self.warn(f"key {key}.if applies only to tool events; the handler never runs")
            return None
        return hook


_EXPECTED = {"str": "a string", "bool": "true or false", "float": "a number", "int": "a number"}
_AT = " - at `$"


def _describe(error: str, raw: dict[str, object], key: str) -> str:
    """msgspec's message about one handler (`Expected `str`, got `int` - at `$.command``) as
    `key <key>.command must be a string (got int)`."""
    text, _, path = error.partition(_AT)
    name = path.rstrip("`").lstrip(".")
    where = f"{key}.{name}" if name else key
    if missing := re.match(r"Object missing required field `(\w+)`", text):
        return f"key {key}.{missing[1]} is required"
    if bound := re.match(r"Expected `\w+` > (\S+)$", text):
        return f"key {where} must be a number > {float(bound[1]):g} (got {json.dumps(raw[name])})"
    if wrong := re.match(r"Expected `(\w+)(?: \| null)?`, got", text):
        return f"key {where} must be {_EXPECTED[wrong[1]]} (got {_kind(raw[name])})"
    field, sep, reason = text.partition(": ")  # CommandHook's own checks: "<field>: <reason>"
    return f"key {key}.{field}: {reason}" if sep else f"key {where}: {text}"


def _kind(value: object) -> str:
    if value is None:
        return "null"
    names = {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}
    return names.get(type(value), type(value).__name__)
