"""A session's plan: everything resolved from its options and files, before anything exists.

`plan_session(options, previous)` reads the settings, the subagent definitions and the hooks
once and decides the model (the one precedence chain: `--model`, the model the session ran
with, the definition's, settings `model`, the default), the permission policy, the system
prompt and the tool set. It raises `UserError` for bad input and writes nothing, so every
entry point checks input the same way before a row is created: `covey -p`, `--bg` dispatch,
the supervisor, the session screen, and the subagents of each (through `subagent_runtime`).

The model itself (its HTTP client) is built only by the host that runs the session
(`SessionPlan.make_model`); a plan checks the model string and its credentials without it.
A plan moves into a worktree with `moved_to` once the host has opened one: the same settings,
with the worktree as workspace and project root.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covey.agent.definitions import (
    MODE_RANK,
    PROJECT_SCOPES,
    AgentDefinition,
    Definitions,
    load_definitions,
    resolve_tools,
)
from covey.agent.prompt import build_system_prompt, definition_system_prompt
from covey.config import LoadedSettings, Settings, effective_env, load_settings
from covey.errors import UserError
from covey.hooks.config import HooksConfig, merge_hooks, validate_hooks
from covey.models.registry import DEFAULT_MODEL, check_model, resolve_model
from covey.store import Store
from covey.store.sessions import SessionKind, SessionRow, find_session, list_sessions
from covey.teams import TEAM_TOOL_NAMES
from covey.tools import CORE_TOOL_NAMES
from covey.tools.permissions import PERMISSION_MODES, PermissionPolicy

if TYPE_CHECKING:  # a dispatch plans without the messages, the retry loop or the limiter
    from covey.models.base import Model
    from covey.models.ratelimit import RateLimiter
    from covey.models.retry import RetryNotice, RetryPolicy

__all__ = ["MODE_ALIASES", "SessionOptions", "SessionPlan", "find_previous", "plan_session"]

MODE_ALIASES = {"auto": "acceptEdits"}
"""Permission modes of Claude Code that covey runs as its closest own: `auto` (a classifier
decides) is `acceptEdits` with covey's permission checker (rules, protected paths)."""
_TOOL_ALIASES = {"Task": "Agent"}


@dataclass(frozen=True)
class SessionOptions:
    """What a person (or the row of a queued session) asks for."""

    cwd: Path
    model: str | None = None
    max_turns: int | None = None
    permission_mode: str | None = None
    allowed_tools: Sequence[str] = ()
    disallowed_tools: Sequence[str] = ()
    append_system_prompt: str | None = None
    resume: str | None = None
    """A session id, id prefix or name to continue."""
    continue_last: bool = False
    """Continue the most recent session started in `cwd`."""
    name: str | None = None
    worktree: str | None = None
    """Run in `.covey/worktrees/NAME` (created or reopened); "" = a generated name."""
    kind: SessionKind = "print"
    parent_id: str | None = None
    """The session that started this one (a teammate's lead)."""
    agent: str | None = None
    """Run the main agent as this subagent definition (its prompt, tools, model, mode)."""
    agents_json: str | None = None
    """`--agents JSON`: extra definitions for this session, over every other scope."""
    environ: Mapping[str, str] | None = None
    """The environment credentials come from (merged under the settings `env` block);
    None: this process's."""
    max_budget_usd: float | None = None
    """`--max-budget-usd`: the session's spend limit, over settings `budget.sessionUsd`."""
    # the flags the Claude Agent SDK passes (covey --input-format stream-json)
    system_prompt: str | None = None
    """`--system-prompt`: replaces covey's system prompt ("" = none); the append still applies."""
    tools: tuple[str, ...] | None = None
    """`--tools`: the only tools offered (None: all of them)."""
    session_id: str | None = None
    """`--session-id`: the id of the new session, chosen by the caller."""
    settings_overrides: dict[str, Any] | None = None
    """`--settings` (and `--add-dir`): a settings layer over the files."""
    setting_sources: tuple[str, ...] | None = None
    """`--setting-sources`: the settings files read (user, project, local; None: all)."""
    fallback_model: str | None = None
    """`--fallback-model`: the model a turn goes on with when the main one fails."""


@dataclass(frozen=True)
class SessionPlan:
    options: SessionOptions
    previous: SessionRow | None
    """The session this continues (None: a new one)."""
    cwd: Path
    """Where the session works."""
    loaded: LoadedSettings
    definitions: Definitions
    definition: AgentDefinition | None
    """The main agent's definition (`--agent`, or the one the session ran with)."""
    env: dict[str, str]
    """Provider and tool environment: `environ` with the settings `env` block on top."""
    model_spec: str
    model_name: str
    """`provider:id`, as recorded with the session."""
    policy: PermissionPolicy
    hooks: HooksConfig
    system_prompt: str
    tool_names: tuple[str, ...] | None
    """The tools the main agent keeps (None: all of them)."""
    max_turns: int | None
    warnings: list[str] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    @property
    def session_id(self) -> str | None:
        return self.previous.id if self.previous else None

    @property
    def retry(self) -> RetryPolicy:
        from covey.models.retry import RetryPolicy

        r = self.settings.retries
        return RetryPolicy(
            max_retries=r.maxRetries, initial_delay=r.initialDelay, max_delay=r.maxDelay
        )

    def resolver(
        self,
        on_retry: Callable[[RetryNotice], None] | None = None,
        limiter: RateLimiter | None = None,
    ) -> Callable[[str], Model]:
        """Builds a model from a model string with this session's credentials, retries and
        rate limiter (the session's own, and its subagents')."""
        env, aliases, retry = self.env, self.settings.modelAliases, self.retry

        def resolve(spec: str) -> Model:
            return resolve_model(
                spec, env=env, aliases=aliases, retry=retry, on_retry=on_retry, limiter=limiter
            )

        return resolve

    def make_model(
        self,
        on_retry: Callable[[RetryNotice], None] | None = None,
        limiter: RateLimiter | None = None,
    ) -> Model:
        model = self.resolver(on_retry, limiter)(self.model_spec)
        fallback = self.options.fallback_model
        if fallback and fallback != self.model_spec:
            from covey.models.fallback import FallbackModel

            return FallbackModel(model, lambda: self.resolver(on_retry, limiter)(fallback))
        return model

    def moved_to(self, workspace: Path, *, warning: str | None = None) -> SessionPlan:
        """This plan for a session working in `workspace` (a worktree the host opened):
        rules, memory and prompt are read relative to it; nothing is resolved again."""
        loaded = dataclasses.replace(
            self.loaded,
            project_root=workspace,
            warnings=[*self.loaded.warnings, *([warning] if warning else [])],
        )
        return dataclasses.replace(
            self,
            cwd=workspace,
            loaded=loaded,
            policy=_policy(self.options, loaded, self.definition, workspace),
            system_prompt=_system_prompt(self.options, loaded, self.definition, workspace),
            warnings=[*self.warnings, *([warning] if warning else [])],
        )


def find_previous(store: Store, options: SessionOptions) -> SessionRow | None:
    """The session `--resume` or `--continue` names, or None for a new one."""
    with store.read() as conn:
        if options.resume is not None:
            row = find_session(conn, options.resume)
            if row is None:
                raise UserError(
                    f"--resume {options.resume!r}: no such session (see covey sessions)"
                )
            return row
        if options.continue_last:
            cwd = str(options.cwd.resolve())
            rows = list_sessions(conn, cwd=cwd, kinds=["print", "interactive"])
            if not rows:
                raise UserError(f"--continue: no earlier session in {cwd}")
            return rows[0]
    return None


def plan_session(options: SessionOptions, previous: SessionRow | None = None) -> SessionPlan:
    """Resolve `options` (continuing `previous`, if given) into a plan; `UserError` for bad
    input. Reads files, writes nothing."""
    mode = options.permission_mode
    if mode in MODE_ALIASES:
        options = dataclasses.replace(options, permission_mode=MODE_ALIASES[mode])
    _check_options(options)
    cwd = Path(previous.cwd) if previous else options.cwd.resolve()
    if not cwd.is_dir():
        raise UserError(f"the session's directory {cwd} no longer exists")
    loaded = load_settings(
        cwd, overrides=options.settings_overrides, sources=options.setting_sources
    )
    aliases = loaded.settings.modelAliases  # (read once: not again by load_definitions)
    definitions = load_definitions(cwd, cli_json=options.agents_json, model_aliases=aliases)
    defn = _main_definition(definitions, options.agent or (previous.agent if previous else None))
    settings = loaded.settings
    env = effective_env(settings, os.environ if options.environ is None else options.environ)
    own_model = defn.model if defn and defn.model != "inherit" else None
    spec = (
        options.model
        or (previous.model if previous else None)
        or own_model
        or settings.model
        or DEFAULT_MODEL
    )
    model_name = check_model(spec, env=env, aliases=settings.modelAliases)
    if options.fallback_model:
        check_model(options.fallback_model, env=env, aliases=settings.modelAliases)
    tool_names, tool_warnings = _tool_names(defn, options.tools)
    hooks, hook_warnings = _load_hooks(loaded)
    options, clamped = _clamp_definition_mode(options, loaded, defn)
    return SessionPlan(
        options=options,
        previous=previous,
        cwd=cwd,
        loaded=loaded,
        definitions=definitions,
        definition=defn,
        env=env,
        model_spec=spec,
        model_name=model_name,
        policy=_policy(options, loaded, defn, cwd),
        hooks=hooks,
        system_prompt=_system_prompt(options, loaded, defn, cwd),
        tool_names=tool_names,
        max_turns=options.max_turns or (defn.max_turns if defn else None),
        warnings=[
            *loaded.warnings,
            *hook_warnings,
            *definitions.run_warnings(defn),
            *([clamped] if clamped else []),
            *tool_warnings,
        ],
    )


def _check_options(options: SessionOptions) -> None:
    if options.max_turns is not None and options.max_turns < 1:
        raise UserError(f"--max-turns must be at least 1 (got {options.max_turns})")
    budget = options.max_budget_usd
    if budget is not None and not (math.isfinite(budget) and budget > 0):
        raise UserError(f"--max-budget-usd must be a number of dollars above 0 (got {budget})")
    mode = options.permission_mode
    if mode is not None and mode not in PERMISSION_MODES:
        raise UserError(f"--permission-mode {mode!r} is not one of: {', '.join(PERMISSION_MODES)}")


def _clamp_definition_mode(
    options: SessionOptions, loaded: LoadedSettings, defn: AgentDefinition | None
) -> tuple[SessionOptions, str | None]:
    """A main agent's definition found in the project (which an agent or a cloned repository
    may have written) cannot raise the session's permission mode; `--permission-mode` can."""
    wanted = defn.permission_mode if defn else None
    if defn is None or wanted is None or options.permission_mode is not None:
        return options, None
    base = loaded.settings.permissions.defaultMode or "default"
    if defn.scope not in PROJECT_SCOPES or MODE_RANK.get(wanted, 4) <= MODE_RANK.get(base, 4):
        return options, None
    warning = (
        f"--agent {defn.name} runs in {base} mode, not {wanted}: a definition from the project "
        f"({defn.path or defn.scope}) cannot raise the permission mode; pass "
        f"--permission-mode {wanted} to allow it"
    )
    return dataclasses.replace(options, permission_mode=base), warning


def _main_definition(definitions: Definitions, name: str | None) -> AgentDefinition | None:
    if name is None:
        return None
    found = definitions.get(name)
    if found is None:
        raise UserError(f"--agent {name!r}: {definitions.why_missing(name)}")
    return found


def _policy(
    options: SessionOptions, loaded: LoadedSettings, defn: AgentDefinition | None, cwd: Path
) -> PermissionPolicy:
    return PermissionPolicy.from_settings(
        loaded.settings,
        mode_override=options.permission_mode or (defn.permission_mode if defn else None),
        allowed_tools=[*options.allowed_tools, "Agent", *TEAM_TOOL_NAMES],
        disallowed_tools=list(options.disallowed_tools),
        project_root=loaded.project_root,
        workspace=cwd,
    )


def _system_prompt(
    options: SessionOptions, loaded: LoadedSettings, defn: AgentDefinition | None, cwd: Path
) -> str:
    append = options.append_system_prompt
    if options.system_prompt is not None:
        return "\n\n".join(p for p in (options.system_prompt, append) if p)
    if defn is not None:
        return definition_system_prompt(defn, cwd, loaded.project_root, append)
    return build_system_prompt(cwd, project_root=loaded.project_root, append=append)


def _tool_names(
    defn: AgentDefinition | None, offered: tuple[str, ...] | None
) -> tuple[tuple[str, ...] | None, list[str]]:
    """The main agent's tools (None: all) and a warning per `--tools` name covey lacks."""
    available = [*CORE_TOOL_NAMES, "Agent"]
    names = None
    if defn is not None:
        names = tuple(resolve_tools(defn, available, depth_allows_agent=True, main_agent=True))
    if offered is None:
        return names, []
    wanted = [_TOOL_ALIASES.get(n, n) for n in offered]
    missing = [n for n in wanted if n not in available]
    warnings = [f"--tools: covey has no {n} tool; it is left out" for n in missing]
    kept = tuple(n for n in (names if names is not None else available) if n in wanted)
    return kept, warnings


def _load_hooks(loaded: LoadedSettings) -> tuple[HooksConfig, list[str]]:
    configs: list[HooksConfig] = []
    warnings: list[str] = []
    for path in loaded.files:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # load_settings already reported an unreadable file
        if isinstance(raw, dict) and raw.get("hooks"):
            config, found = validate_hooks(raw["hooks"], str(path))
            configs.append(config)
            warnings += found
    if loaded.overrides and loaded.overrides.get("hooks"):
        config, found = validate_hooks(loaded.overrides["hooks"], "--settings")
        configs.append(config)
        warnings += found
    return merge_hooks(configs), warnings
