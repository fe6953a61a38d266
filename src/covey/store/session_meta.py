"""The typed `meta` JSON object of a session row, and the values it holds.

Every key a host or a face reads is a field here; nothing is looked up by a string. Older
rows carry the same keys (they were written untyped before), so they read as they are; keys
this version does not know are kept when a row is rewritten (`SessionMeta.extras`).

msgspec Structs, not pydantic models: listing and dispatching read and write rows without
importing pydantic. Values are converted leniently (`strict=False`: a row written by hand
with `"5"` for 5 still reads), and `SessionMeta` keeps the names `model_validate` and
`model_copy` the pydantic model had.
"""

from __future__ import annotations

import json
from typing import Any, Self

import msgspec
import msgspec.json

__all__ = ["Grant", "Pending", "SessionMeta", "StoredOptions", "call_text", "with_meta"]

_EXTRAS = "(covey: unknown keys)"
"""Where `SessionMeta` holds unknown keys while converting (no JSON key of a row is this)."""


def call_text(tool: str, tool_input: dict[str, Any]) -> str:
    """A tool call in one short line: `Bash(npm test)`, `Write(src/a.py)`."""
    arg = tool_input.get("command") or tool_input.get("file_path") or tool_input.get("pattern")
    shown = str(arg) if arg else json.dumps(tool_input, sort_keys=True)
    return f"{tool}({shown[:200]})"


class Pending(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a `needs_input` session waits for (`meta.pending`)."""

    kind: str = "question"
    """question | permission | credentials | budget"""
    text: str
    options: list[str] = []
    tool: str | None = None
    """A permission: the tool call waiting for the person's yes or no."""
    input: dict[str, Any] | None = None
    """A permission: the input of that tool call (also read as `tool_input`)."""
    budget: str | None = None
    """A budget stop: the limit reached (`session` or `daily`), which a reply raises."""

    @property
    def tool_input(self) -> dict[str, Any] | None:
        return self.input

    @classmethod
    def permission(cls, tool: str, tool_input: dict[str, Any], reason: str) -> Pending:
        """A tool call waiting for the person's yes or no."""
        text = f"Allow {call_text(tool, tool_input)}? ({reason})"
        return cls(kind="permission", text=text, options=["yes", "no"], tool=tool, input=tool_input)

    def choose(self, text: str) -> str:
        """What the person's answer means: a number picks that option (`2` → the second)."""
        text = text.strip()
        if text.isdigit() and 1 <= int(text) <= len(self.options):
            return self.options[int(text) - 1]
        return text


class Grant(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A tool call the person allowed after its host went away: it runs once, unasked; or
    (`always`, a reply of "always") whenever the session makes it again."""

    tool: str
    input: dict[str, Any] = {}
    always: bool = False


class StoredOptions(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The command-line options a background session was dispatched with; the supervisor
    applies them (safety flags are never dropped on the way)."""

    allowed_tools: tuple[str, ...] = ()
    disallowed_tools: tuple[str, ...] = ()
    max_turns: int | None = None
    append_system_prompt: str | None = None
    max_budget_usd: float | None = None


class SessionMeta(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The `meta` JSON object of a session."""

    worktree: str | None = None
    """The worktree directory the session works in, if any."""
    branch: str | None = None
    """The session branch, if any."""
    provider: str | None = None
    """The model provider (`anthropic`, `openai`…)."""
    base_url: str | None = None
    """The provider endpoint, when not the default."""
    agent_path: str | None = None
    """A subagent's path inside its root session (`main/reviewer-1`)."""
    prompt: str | None = None
    """A queued background session's prompt, until the supervisor starts it."""
    base: str | None = None
    """The commit a background session's worktree starts from (resolved at dispatch)."""
    repo: str | None = None
    """The repository root of a background session (recorded at dispatch)."""
    options: StoredOptions | None = None
    """A background session's dispatch options."""
    pending: Pending | None = None
    """What a `needs_input` session waits for."""
    waiting: str | None = None
    """What a `working` session waits for meanwhile (`rate limit`: the shared limiter)."""
    grants: tuple[Grant, ...] = ()
    """Allowed tool calls not yet run (see `Grant`)."""
    node: str | None = None
    """The Ray node a background session runs on (`background.executor: ray`); none: local."""
    budget_raises: dict[str, float] = {}
    """Limits the person raised by reply (`covey reply ID "raise to 5"`), by budget
    (`session`, `daily`); each counts when above the configured limit."""
    extras: dict[str, Any] = msgspec.field(default_factory=dict, name=_EXTRAS)
    """The keys this version does not know, kept as they were."""

    @classmethod
    def model_validate(cls, data: dict[str, Any]) -> Self:
        """The stored JSON object as meta; `msgspec.ValidationError` when a value does not
        fit its field (the message names it: `... - at `$.pending.text``)."""
        known = {k: v for k, v in data.items() if k in _FIELDS}
        extras = {k: v for k, v in data.items() if k not in _FIELDS}
        return msgspec.convert({**known, _EXTRAS: extras}, cls, strict=False)

    def model_copy(self, *, update: dict[str, Any]) -> Self:
        """A copy with some fields replaced (not validated again)."""
        return msgspec.structs.replace(self, **update)

    def dump(self) -> dict[str, Any]:
        """The JSON object stored in the row (unset keys left out; tuples as lists, as JSON
        reads them back)."""
        data: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(self))
        return {**data.pop(_EXTRAS, {}), **data}


_FIELDS = frozenset(f for f in SessionMeta.__struct_fields__ if f != "extras")


def with_meta(meta: SessionMeta, **changes: Any) -> SessionMeta:
    """A copy of `meta` with fields set (None removes a key), validated again."""
    data = meta.dump()
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = msgspec.to_builtins(value)
    return SessionMeta.model_validate(data)
