"""The Agent tool: hand a task to a subagent, a child loop with a fresh context, and get back
only its final report.

    parent loop ── Agent{description, prompt, subagent_type?, model?, run_in_background?}
                     │  definition (covey.agent.definitions) → tools, model, mode, maxTurns
                     │  queue: at most `maxConcurrent` children run at once; others wait
                     ▼
                   child loop (own transcript, via the `SubagentRecorder`) ── final text
                     │
    ◀── final text + {"agentId", "totalToolUseCount", "totalDurationMs", "usage", "queued_ms"}
        or, in the background: {"status": "async_launched", …} now and a <task-notification>
        before the parent's next model call (`BackgroundTasks`)

Everything one session's subagents share (definitions, limits, the queue, the recorder, the
hooks) is a `SubagentRuntime`; each agent that may spawn holds its own `AgentTool` (its depth,
its agent path, its background tasks). Records are the host's business: this layer sees only
the `SubagentRecorder` protocol (`covey.sessions.subagents` implements it over the store;
`MemoryRecorder` keeps nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from pydantic import Field

from covey.agent.definitions import AgentDefinition, Definitions, resolve_tools
from covey.agent.hooks import AgentHooks, NoHooks
from covey.agent.loop import Approver, RequestGuard
from covey.agent.subagents_inbox import BackgroundTasks
from covey.agent.subagents_records import (
    ChildRecord,
    MemoryRecorder,
    SubagentNotice,
    SubagentRecorder,
)
from covey.agent.subagents_roster import DEFAULT_LIST_BUDGET_CHARS, agent_roster
from covey.agent.subagents_run import Spawn
from covey.errors import ToolError, UserError
from covey.models.base import Model, ToolSpec
from covey.models.registry import resolve_model
from covey.tools import core_tools
from covey.tools.base import Tool, ToolContext, ToolInput
from covey.tools.permissions import PermissionPolicy

__all__ = [
    "SUBAGENT_MODEL_ENV",
    "AgentInput",
    "AgentTool",
    "ChildRecord",
    "MemoryRecorder",
    "SubagentLimits",
    "SubagentNotice",
    "SubagentRecorder",
    "SubagentRuntime",
    "TeamAgentInput",
    "TeamAgentTool",
    "TeammateLauncher",
]

SUBAGENT_MODEL_ENV = "COVEY_SUBAGENT_MODEL"
"""Set, it names the model of every subagent (over the call's and the definition's)."""


@dataclass(frozen=True)
class SubagentLimits:
    max_depth: int = 1
    """1: the main agent may spawn, subagents may not; 0: no Agent tool at all."""
    max_concurrent: int = 10
    """Children running at once in the session; more spawns wait for a slot."""
    list_budget_chars: int = DEFAULT_LIST_BUDGET_CHARS
    """Characters the agent types may take in the Agent tool's description (`agent_roster`)."""


PolicyFactory = Callable[[str, Path], PermissionPolicy]
"""(permission mode, workspace) → the policy a child's tool calls are checked against."""


def _bare_policy(mode: str, workspace: Path) -> PermissionPolicy:
    """No rules but one: launching a subagent never asks (its own calls are checked)."""
    return PermissionPolicy(mode, ["Agent"], [], [], workspace, workspace)


class TeammateLauncher(Protocol):
    """Agent teams behind the Agent tool's `name` (`covey.teams`). `lead`: this session leads
    (a `name` starts a teammate); otherwise it is a teammate and a `name` is refused."""

    lead: bool

    async def launch(self, args: AgentInput, ctx: ToolContext) -> str: ...

    def agent_spec(self, spec: ToolSpec) -> ToolSpec:
        """The member's Agent tool as the model sees it (a teammate's has no `name`)."""
        ...


class SubagentRuntime:
    """What all the Agent tools of one session share."""

    def __init__(
        self,
        definitions: Definitions,
        *,
        recorder: SubagentRecorder | None = None,
        limits: SubagentLimits | None = None,
        resolve: Callable[[str], Model] | None = None,
        env: Mapping[str, str] | None = None,
        make_policy: PolicyFactory = _bare_policy,
        hooks: AgentHooks | None = None,
        approver: Approver | None = None,
        project_root: Path | None = None,
        tools: Callable[[], list[Tool[Any]]] = core_tools,
        request_guard: RequestGuard | None = None,
    ):
        self.definitions = definitions
        self.recorder: SubagentRecorder = recorder or MemoryRecorder()
        self.limits = limits or SubagentLimits()
        self.env = dict(os.environ if env is None else env)
        self.resolve = resolve or (lambda spec: resolve_model(spec, env=self.env))
        self.make_policy = make_policy
        self.hooks: AgentHooks = hooks or NoHooks()
        self.approver = approver
        self.project_root = project_root
        self.tools = tools
        self.teammates: TeammateLauncher | None = None
        """Set when agent teams are on: the main agent's `name` goes there."""
        self.request_guard = request_guard
        """The session's check before each model request, shared by every child."""
        self.slots = asyncio.Semaphore(self.limits.max_concurrent)
        self.waiting = 0
        self.started = 0
        self.queued = 0

    def definition(self, name: str) -> AgentDefinition:
        found = self.definitions.get(name)
        if found is None:
            names = ", ".join(d.name for d in self.definitions.all())
            raise ToolError(f"no subagent type {name!r}; available: {names}")
        return found

    def agent_tool(
        self, *, model: Model, mode: str, agent_path: str = "main", depth: int = 0
    ) -> AgentTool | None:
        """The Agent tool for an agent at `depth`, or None when that depth may not spawn."""
        if depth >= self.limits.max_depth:
            return None
        kind = AgentTool
        if depth == 0 and self.teammates is not None and self.teammates.lead:
            kind = TeamAgentTool
        return kind(self, model=model, mode=mode, agent_path=agent_path, depth=depth)

    def child_model(self, call_model: str | None, defn: AgentDefinition, parent: Model) -> Model:
        """env COVEY_SUBAGENT_MODEL > the call's model > the definition's > the parent's."""
        candidates = (self.env.get(SUBAGENT_MODEL_ENV), call_model, defn.model)
        spec = next((c for c in candidates if c and c != "inherit"), None)
        if spec is None or spec == parent.name:
            return parent
        try:
            model = self.resolve(spec)
        except UserError as e:
            raise ToolError(f"subagent model {spec!r}: {e}") from None
        return parent if model.name == parent.name else model

    @contextlib.asynccontextmanager
    async def slot(self, notice: SubagentNotice) -> AsyncIterator[None]:
        """A place among the `max_concurrent` running children; waits in the queue if full."""
        if self.slots.locked():
            self.queued += 1
            self.waiting += 1
            self.recorder.notice(dataclasses.replace(notice, kind="queued", waiting=self.waiting))
            try:
                await self.slots.acquire()
            finally:
                self.waiting -= 1
        else:
            await self.slots.acquire()
        try:
            self.started += 1
            self.recorder.notice(dataclasses.replace(notice, kind="started"))
            yield
        finally:
            self.slots.release()

    def statistics(self) -> dict[str, int]:
        return {"started": self.started, "queued": self.queued, "waiting": self.waiting}


class AgentInput(ToolInput):
    description: str = Field(description="A short (3-5 words) label for the task.")
    prompt: str = Field(description="The task: everything the subagent needs to know.")
    subagent_type: str | None = Field(
        default=None, description="Which kind of agent (default general-purpose)."
    )
    model: str | None = Field(default=None, description="sonnet, opus, haiku or provider:id.")
    run_in_background: bool | None = Field(
        default=None, description="Return at once; the result arrives later as a notification."
    )
    isolation: Literal["worktree"] | None = Field(
        default=None, description="worktree: work in a temporary git worktree."
    )
    name: str | None = Field(default=None, description="A name for the agent.")


class TeamAgentInput(AgentInput):
    owns: list[str] | None = Field(
        default=None,
        description="With name: gitignore-style globs (from the repository root) only this "
        "teammate may Write/Edit.",
    )


class AgentTool(Tool[AgentInput]):
    name = "Agent"
    description = (
        "Launch a subagent to handle a self-contained task with a fresh context and its own "
        "tools. It returns only its final report (not visible to the user: relay what "
        "matters). Launch several in one message to run them concurrently. With "
        "run_in_background the result arrives later as a <task-notification>; do not guess "
        "it before then."
    )
    input_model = AgentInput
    concurrent: ClassVar[bool] = True

    def __init__(
        self, runtime: SubagentRuntime, *, model: Model, mode: str, agent_path: str, depth: int
    ):
        self.runtime = runtime
        self.model = model
        self.mode = mode
        self.agent_path = agent_path
        self.depth = depth
        self.inbox = BackgroundTasks()
        """Give it to the owning `Agent` (`inbox=`): background results arrive through it."""

    def spec(self) -> ToolSpec:
        base = super().spec()
        roster = agent_roster(self.runtime.definitions.all(), self.runtime.limits.list_budget_chars)
        spec = ToolSpec(
            base.name, f"{base.description}\n\nAgent types:\n{roster}", base.input_schema
        )
        teammates = self.runtime.teammates
        return teammates.agent_spec(spec) if teammates is not None and self.depth == 0 else spec

    def read_only_for(self, tool_input: Mapping[str, Any]) -> bool:
        """A subagent whose tools are all read-only (Explore, Plan) changes nothing, so plan
        mode may launch it."""
        definition = self.runtime.definitions.get(
            str(tool_input.get("subagent_type") or "general-purpose")
        )
        if definition is None or definition.background:
            return False
        read_only = {t.name for t in core_tools() if t.read_only}
        names = resolve_tools(definition, [t.name for t in core_tools()], depth_allows_agent=False)
        return bool(names) and set(names) <= read_only

    async def run(self, args: AgentInput, ctx: ToolContext) -> str:
        teammates = self.runtime.teammates
        if args.name and self.depth == 0 and teammates is not None:
            return await teammates.launch(args, ctx)
        spawn = Spawn.prepare(self, args, ctx)
        if args.run_in_background or spawn.definition.background:
            self.inbox.launch(spawn.run_in_background())
            return spawn.launched()
        return await spawn.run_in_foreground()


class TeamAgentTool(AgentTool):
    """The lead's Agent tool when agent teams are on: `name` starts a teammate."""

    description = (
        f"{AgentTool.description} With a name, it starts a teammate instead: a separate "
        "session that works concurrently with its own context, the shared task list and "
        "SendMessage; it returns at once with the teammate's name and id, and you hear from "
        "it as <teammate-message> and <teammate-idle> messages."
    )
    input_model = TeamAgentInput
