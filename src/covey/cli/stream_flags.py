"""The flags the Claude Agent SDK passes to its command line, on `covey`'s root command.

Implemented: `--input-format`, `--verbose` (a no-op: stream-json is always complete),
`--system-prompt`, `--system-prompt-file`, `--tools`, `--session-id`, `--add-dir`,
`--settings`, `--setting-sources`, `--fallback-model`, `--include-partial-messages`,
`--permission-prompt-tool stdio`, `--fork-session`. Ignored (cosmetic, or nothing to do
without MCP): thinking and effort flags, `--betas`, `--include-hook-events`,
`--strict-mcp-config`. Refused with one line (exit 2): MCP servers, plugins, JSON schemas and
the other flags covey has no counterpart for yet.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import click

from covey.errors import UserError

__all__ = ["SdkFlags", "sdk_flag_options"]

F = TypeVar("F", bound=Callable[..., Any])

_IGNORED_VALUES = ("thinking", "thinking-display", "max-thinking-tokens", "effort", "betas")
_IGNORED_SWITCHES = ("include-hook-events", "strict-mcp-config")
_REFUSED_VALUES = {
    "mcp-config": "MCP servers are not supported by covey yet",
    "plugin-dir": "plugins are not supported by covey yet",
    "json-schema": "structured output (a JSON schema) is not supported by covey yet",
    "task-budget": "task budgets are not supported by covey yet",
    "resume-session-at": "resuming at a message is not supported by covey yet",
    "resume-drops-turn": "resuming without a turn is not supported by covey yet",
}
_REFUSED_SWITCHES = {"session-mirror": "session mirroring is not supported by covey yet"}


@dataclass
class SdkFlags:
    input_format: str = "text"
    verbose: bool = False
    system_prompt: str | None = None
    system_prompt_file: str | None = None
    tools: str | None = None
    session_id: str | None = None
    add_dir: tuple[str, ...] = ()
    settings: str | None = None
    setting_sources: str | None = None
    fallback_model: str | None = None
    include_partial_messages: bool = False
    permission_prompt_tool: str | None = None
    fork_session: bool = False
    ignored: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def take(cls, kwargs: dict[str, Any]) -> SdkFlags:
        """The SDK flags among a command's keyword arguments (removed from them); the first
        refused flag given is a UserError."""
        names = {f.name for f in fields(cls)} - {"ignored"}
        flags = cls(**{k: kwargs.pop(k) for k in list(kwargs) if k in names})
        for name in list(kwargs):
            flag = "--" + name.replace("_", "-")
            value = kwargs.pop(name)
            if flag[2:] in _REFUSED_VALUES and value not in (None, ()):
                raise UserError(f"{flag}: {_REFUSED_VALUES[flag[2:]]}")
            if flag[2:] in _REFUSED_SWITCHES and value:
                raise UserError(f"{flag}: {_REFUSED_SWITCHES[flag[2:]]}")
            flags.ignored[flag] = value
        if flags.permission_prompt_tool not in (None, "stdio"):
            raise UserError(
                f"--permission-prompt-tool {flags.permission_prompt_tool!r}: only stdio is "
                "supported (MCP tools are not supported by covey yet)"
            )
        return flags

    @property
    def streaming(self) -> bool:
        return self.input_format == "stream-json"

    def given(self) -> list[str]:
        """The session-shaping flags given (they need -p or stream-json input)."""
        used = {
            "--system-prompt": self.system_prompt is not None,
            "--system-prompt-file": self.system_prompt_file is not None,
            "--tools": self.tools is not None,
            "--session-id": self.session_id is not None,
            "--add-dir": bool(self.add_dir),
            "--settings": self.settings is not None,
            "--setting-sources": self.setting_sources is not None,
            "--fallback-model": self.fallback_model is not None,
            "--permission-prompt-tool": self.permission_prompt_tool is not None,
            "--fork-session": self.fork_session,
        }
        return [flag for flag, on in used.items() if on]

    def session_fields(self, cwd: Path) -> dict[str, Any]:
        """`SessionOptions` fields from these flags (checked: UserError naming the flag)."""
        if self.system_prompt is not None and self.system_prompt_file is not None:
            raise UserError("use either --system-prompt or --system-prompt-file, not both")
        overrides = _settings(self.settings, cwd) if self.settings is not None else {}
        if self.add_dir:
            dirs = [_directory(d, cwd) for d in self.add_dir]
            perms = overrides.setdefault("permissions", {})
            if not isinstance(perms, dict):
                raise UserError("--settings: key permissions must be an object")
            perms["additionalDirectories"] = [*perms.get("additionalDirectories", []), *dirs]
        return {
            "system_prompt": self._system_prompt(cwd),
            "tools": _tools(self.tools),
            "session_id": _session_id(self.session_id),
            "settings_overrides": overrides or None,
            "setting_sources": _sources(self.setting_sources),
            "fallback_model": self.fallback_model,
        }

    def _system_prompt(self, cwd: Path) -> str | None:
        if self.system_prompt_file is None:
            return self.system_prompt
        path = cwd / Path(self.system_prompt_file).expanduser()
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"--system-prompt-file {self.system_prompt_file}: {e}") from None


def sdk_flag_options(command: F) -> F:
    """Add the SDK's flags to a click command (the root command)."""
    options = [
        click.option(
            "--input-format",
            type=click.Choice(["text", "stream-json"]),
            default="text",
            help="stream-json: read user messages and control requests on stdin (the Claude "
            "Agent SDK's protocol); needs --output-format stream-json.",
        ),
        click.option("--verbose", is_flag=True, help="Accepted; stream-json is always complete."),
        click.option("--system-prompt", help="Replace covey's system prompt (empty: none)."),
        click.option("--system-prompt-file", metavar="PATH", help="--system-prompt from a file."),
        click.option("--tools", metavar="LIST", help="Tools offered (default: all)."),
        click.option("--session-id", metavar="UUID", help="The id of the new session."),
        click.option("--add-dir", multiple=True, metavar="DIR", help="Let tools use DIR too."),
        click.option("--settings", metavar="JSON|PATH", help="A settings layer over the files."),
        click.option("--setting-sources", metavar="LIST", help="Files read: user,project,local."),
        click.option("--fallback-model", metavar="MODEL", help="Used when the model fails."),
        click.option("--include-partial-messages", is_flag=True, help="Stream text deltas."),
        click.option("--permission-prompt-tool", metavar="stdio", help="Ask the SDK (stdio)."),
        click.option("--fork-session", is_flag=True, help="Resume into a new session."),
    ]  # fmt: skip
    for name in _IGNORED_VALUES + tuple(_REFUSED_VALUES):
        options.append(click.option(f"--{name}", hidden=True, multiple=name == "plugin-dir"))
    for name in _IGNORED_SWITCHES + tuple(_REFUSED_SWITCHES):
        options.append(click.option(f"--{name}", is_flag=True, hidden=True))
    for option in reversed(options):
        command = option(command)
    return command


def _settings(value: str, cwd: Path) -> dict[str, Any]:
    text = value
    if not value.lstrip().startswith("{"):
        try:
            text = (cwd / Path(value).expanduser()).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"--settings {value}: {e}") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise UserError(f"--settings: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise UserError("--settings must be a JSON object")
    return data


def _directory(value: str, cwd: Path) -> str:
    path = (cwd / Path(value).expanduser()).resolve()
    if not path.is_dir():
        raise UserError(f"--add-dir {value}: no such directory")
    return str(path)


def _tools(value: str | None) -> tuple[str, ...] | None:
    if value is None or value.strip() == "default":
        return None
    return tuple(t.strip() for t in value.replace(" ", ",").split(",") if t.strip())


def _session_id(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise UserError(f"--session-id {value!r} is not a UUID") from None


def _sources(value: str | None) -> tuple[str, ...] | None:
    from covey.config import SETTING_SOURCES

    if value is None:
        return None
    names = tuple(s.strip() for s in value.split(",") if s.strip())
    for name in names:
        if name not in SETTING_SOURCES:
            raise UserError(
                f"--setting-sources: {name!r} is not one of {', '.join(SETTING_SOURCES)}"
            )
    return names
