"""A hosted session's agent, wired: what `SessionHost.open` hands the loop once the session
row, its lease and its budget exist.

    hooks = command_hooks(plan, session_id, callback)
    agent = wire_agent(store, plan, session_id, epoch, model, resolve, messages, hooks,
                       asker, observers, budget)

The tools the plan allows (core tools; the Agent tool, whose subagents are recorded in the
store; a team member's tools and `ToolContext.file_owners`), the tool context (workspace,
sandbox, the asker's questions, tool runs kept in the store), the name requests are tagged
with. The host builds the budget and the rate limiter; this module only passes them on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from covey.agent.loop import Agent, Observer
from covey.agent.tool_runner import Approval
from covey.budget.spend_limits import SessionBudget
from covey.config import credential_names
from covey.hooks import HookCallback
from covey.messages import Message, ToolUseBlock
from covey.models.base import Model
from covey.sessions.hooks_bridge import CommandHooks, hook_runner
from covey.sessions.plan import SessionPlan
from covey.sessions.subagents import subagent_runtime
from covey.sessions.tool_runs import StoreToolRuns
from covey.store import Store
from covey.teams.join import join_team
from covey.tools import core_tools
from covey.tools.base import SandboxOptions, Tool, ToolContext
from covey.tools.permissions import Decision

__all__ = ["Asker", "command_hooks", "wire_agent"]


class Asker(Protocol):
    """How a hosted session asks its person (AskUserQuestion, a permission to grant)."""

    def bind(self, session_id: str, epoch: int, hooks: CommandHooks) -> None: ...

    async def ask_user(self, question: str, options: list[str]) -> str: ...

    async def approve(self, call: ToolUseBlock, decision: Decision) -> bool | Approval: ...


def command_hooks(
    plan: SessionPlan, session_id: str, callback: HookCallback | None
) -> CommandHooks:
    """The session's command hooks (`callback`: the SDK's hook callbacks, when it has some)."""
    return CommandHooks(
        hook_runner(
            plan.hooks,
            session_id=session_id,
            cwd=plan.cwd,
            project_dir=plan.loaded.project_root,
            mode=plan.policy.mode,
            settings=plan.settings,
            callback=callback,
        )
    )


def wire_agent(
    store: Store,
    plan: SessionPlan,
    session_id: str,
    epoch: int,
    model: Model,
    resolve: Callable[[str], Model],
    messages: list[Message],
    hooks: CommandHooks,
    asker: Asker | None,
    observers: list[Observer],
    budget: SessionBudget,
) -> Agent:
    """The session's agent: its tools (the plan's core tools, the Agent tool with its
    subagent runtime, the team's tools and file owners), `observers` (the persister first),
    `budget` guarding every model request of the session and its subagents."""
    settings = plan.settings
    ctx = _tool_context(store, plan, session_id, asker)
    approver = asker.approve if asker else None
    runtime = subagent_runtime(
        store,
        plan.loaded,
        plan.definitions,
        env=plan.env,
        resolve=resolve,
        allowed_tools=plan.options.allowed_tools,
        disallowed_tools=plan.options.disallowed_tools,
        hooks=hooks,
        approver=approver,
        request_guard=budget,
    )
    team = join_team(store, plan, session_id, epoch, hooks)  # None unless teams are on
    if team is not None:
        runtime.teammates, ctx.file_owners = team.launcher, team.owners
    spawner = runtime.agent_tool(model=model, mode=plan.policy.mode)
    tools: list[Tool[Any]] = [*core_tools(), *([spawner] if spawner else [])]
    if plan.tool_names is not None:
        tools = [t for t in tools if t.name in plan.tool_names]
    tools += team.tools if team is not None else []
    return Agent(
        model,
        tools,
        plan.system_prompt,
        ctx,
        plan.policy,
        approver=approver,
        hooks=hooks,
        max_turns=plan.max_turns,
        auto_compact_tokens=settings.autoCompactWindow or int(model.context_window * 0.9),
        agent_name=_agent_name(plan),
        observers=observers,
        messages=messages,
        inbox=spawner.inbox if spawner else None,
        mailbox=team.mailbox if team else None,
        request_guard=budget,
    )


def _tool_context(
    store: Store, plan: SessionPlan, session_id: str, asker: Asker | None
) -> ToolContext:
    settings = plan.settings
    return ToolContext(
        workspace=plan.cwd,
        extra_dirs=[Path(d).expanduser() for d in settings.permissions.additionalDirectories],
        session_id=session_id,
        sandbox=SandboxOptions(
            enabled=settings.sandbox.enabled,
            network=settings.sandbox.network,
            pass_credentials=settings.tools.passCredentials,
            credential_names=credential_names(settings),
        ),
        ask_user=asker.ask_user if asker else None,
        tool_runs=StoreToolRuns(store, session_id),
    )


def _agent_name(plan: SessionPlan) -> str | None:
    """What requests are tagged with: a teammate's own name (each has its own route in the
    fake provider), else the main agent's definition."""
    if plan.options.kind == "teammate":
        return plan.options.name
    return plan.definition.name if plan.definition else None
