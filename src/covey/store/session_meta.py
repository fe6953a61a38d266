"""The typed `meta` JSON object of a session row, and the values it holds.

Every key a host or a face reads is a field here; nothing is looked up by a string. Older
rows carry the same keys (they were written untyped before), so they read as they are; keys
this version does not know are kept when a row is rewritten (`extra="allow"`).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Grant", "Pending", "SessionMeta", "StoredOptions", "call_text", "with_meta"]


def call_text(tool: str, tool_input: dict[str, Any]) -> str:
    """A tool call in one short line: `Bash(npm test)`, `Write(src/a.py)`."""
    arg = tool_input.get("command") or tool_input.get("file_path") or tool_input.get("pattern")
    shown = str(arg) if arg else json.dumps(tool_input, sort_keys=True)
    return f"{tool}({shown[:200]})"


class Pending(BaseModel):
    """What a `needs_input` session waits for (`meta.pending`)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    kind: str = "question"
    """question | permission | credentials | budget"""
    text: str
    options: list[str] = Field(default_factory=list)
    tool: str | None = None
    """A permission: the tool call waiting for the person's yes or no."""
    tool_input: dict[str, Any] | None = Field(default=None, alias="input")
    budget: str | None = None
    """A budget stop: the limit reached (`session` or `daily`), which a reply raises."""

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


class Grant(BaseModel):
    """A tool call the person allowed after its host went away: it runs once, unasked; or
    (`always`, a reply of "always") whenever the session makes it again."""

    model_config = ConfigDict(frozen=True)

    tool: str
    input: dict[str, Any] = Field(default_factory=dict)
    always: bool = False


class StoredOptions(BaseModel):
    """The command-line options a background session was dispatched with; the supervisor
    applies them (safety flags are never dropped on the way)."""

    model_config = ConfigDict(frozen=True)

    allowed_tools: tuple[str, ...] = ()
    disallowed_tools: tuple[str, ...] = ()
    max_turns: int | None = None
    append_system_prompt: str | None = None
    max_budget_usd: float | None = None


class SessionMeta(BaseModel):
    """The `meta` JSON object of a session."""

    model_config = ConfigDict(frozen=True, extra="allow")

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
    budget_raises: dict[str, float] = Field(default_factory=dict)
    """Limits the person raised by reply (`covey reply ID "raise to 5"`), by budget
    (`session`, `daily`); each counts when above the configured limit."""

    def dump(self) -> dict[str, Any]:
        """The JSON object stored in the row (unset keys left out)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True, by_alias=True)


def with_meta(meta: SessionMeta, **changes: Any) -> SessionMeta:
    """A copy of `meta` with fields set (None removes a key), validated again."""
    data = meta.dump()
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        elif isinstance(value, BaseModel):
            data[key] = value.model_dump(mode="json", by_alias=True)
        elif isinstance(value, (list, tuple)):
            data[key] = [
                v.model_dump(mode="json", by_alias=True) if isinstance(v, BaseModel) else v
                for v in value
            ]
        else:
            data[key] = value
    return SessionMeta.model_validate(data)
