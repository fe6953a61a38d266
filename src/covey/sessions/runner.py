"""Assemble and run one session in this process: settings → model → tools → agent.

This is the foreground host of ARCHITECTURE.md in its first form; the store (next issue)
hangs off the agent's events here.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from covey.agent import Agent, AgentEvent, MessageAdded, RunResult
from covey.agent.loop import Approver, Observer
from covey.agent.prompt import build_system_prompt
from covey.config import effective_env, load_settings
from covey.errors import UserError
from covey.models.pricing import cost_usd
from covey.models.registry import DEFAULT_MODEL, resolve_model
from covey.models.retry import RetryNotice, RetryPolicy
from covey.tools import core_tools
from covey.tools.base import AskUser, SandboxOptions, ToolContext
from covey.tools.permissions import PERMISSION_MODES, PermissionPolicy

__all__ = ["CostMeter", "PreparedSession", "SessionOptions", "prepare_session"]


@dataclass
class SessionOptions:
    cwd: Path
    model: str | None = None
    max_turns: int | None = None
    permission_mode: str | None = None
    allowed_tools: Sequence[str] = ()
    disallowed_tools: Sequence[str] = ()
    append_system_prompt: str | None = None


class CostMeter:
    """Adds up the USD cost of every model response, each priced by the model that made it."""

    def __init__(self) -> None:
        self.total_usd = 0.0

    def __call__(self, event: AgentEvent) -> None:
        if isinstance(event, MessageAdded) and event.usage is not None and event.model:
            self.total_usd += cost_usd(event.model, event.usage)


@dataclass
class PreparedSession:
    session_id: str
    agent: Agent
    model_name: str
    permission_mode: str
    cwd: Path
    warnings: list[str]
    cost: CostMeter = field(default_factory=CostMeter)

    @property
    def tool_names(self) -> list[str]:
        return list(self.agent.tools)

    async def run(self, prompt: str) -> RunResult:
        return await self.agent.run(prompt)


def prepare_session(
    opts: SessionOptions,
    *,
    observers: Sequence[Observer] = (),
    approver: Approver | None = None,
    ask_user: AskUser | None = None,
    on_retry: Callable[[RetryNotice], None] | None = None,
) -> PreparedSession:
    """Everything that can be wrong with the input fails here, as a `UserError`."""
    if opts.max_turns is not None and opts.max_turns < 1:
        raise UserError(f"--max-turns must be at least 1 (got {opts.max_turns})")
    if opts.permission_mode is not None and opts.permission_mode not in PERMISSION_MODES:
        modes = ", ".join(PERMISSION_MODES)
        raise UserError(f"--permission-mode {opts.permission_mode!r} is not one of: {modes}")
    cwd = opts.cwd.resolve()
    loaded = load_settings(cwd)
    settings = loaded.settings
    env = effective_env(settings, os.environ)
    r = settings.retries
    model = resolve_model(
        opts.model or settings.model or DEFAULT_MODEL,
        env=env,
        aliases=settings.modelAliases,
        retry=RetryPolicy(
            max_retries=r.maxRetries, initial_delay=r.initialDelay, max_delay=r.maxDelay
        ),
        on_retry=on_retry,
    )
    policy = PermissionPolicy.from_settings(
        settings,
        mode_override=opts.permission_mode,
        allowed_tools=list(opts.allowed_tools),
        disallowed_tools=list(opts.disallowed_tools),
        project_root=loaded.project_root,
        workspace=cwd,
    )
    ctx = ToolContext(
        workspace=cwd,
        extra_dirs=[Path(d).expanduser() for d in settings.permissions.additionalDirectories],
        session_id=uuid.uuid4().hex,
        sandbox=SandboxOptions(enabled=settings.sandbox.enabled, network=settings.sandbox.network),
        ask_user=ask_user,
    )
    system = build_system_prompt(
        cwd, project_root=loaded.project_root, append=opts.append_system_prompt
    )
    cost = CostMeter()
    agent = Agent(
        model,
        core_tools(),
        system,
        ctx,
        policy,
        approver=approver,
        max_turns=opts.max_turns,
        observers=[cost, *observers],
    )
    return PreparedSession(
        session_id=ctx.session_id,
        agent=agent,
        model_name=model.name,
        permission_mode=policy.mode,
        cwd=cwd,
        warnings=loaded.warnings,
        cost=cost,
    )
