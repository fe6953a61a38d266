"""Command hooks (covey.hooks) behind the agent's hook points (covey.agent.hooks).

Hooks come from every settings file that has a `hooks` key; each file is validated on its own
so an error names the file, then the lists merge.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from covey.agent.hooks import PreToolOutcome, PromptOutcome
from covey.config import Settings, credential_names
from covey.errors import UserError
from covey.hooks import HookCallback, HookResult, HookRunner, HooksConfig
from covey.messages import ToolResultBlock, ToolUseBlock

__all__ = ["CommandHooks", "WorktreeCommandHooks", "hook_runner"]


class CommandHooks:
    """`AgentHooks` over a `HookRunner`: Claude Code's events and exit-code contract."""

    def __init__(
        self,
        runner: HookRunner,
        notes: list[str] | None = None,
        agent: dict[str, str] | None = None,
    ):
        self.runner = runner
        self.notes = notes if notes is not None else []
        """Non-blocking hook failures and system messages, for the person."""
        self.agent = agent or {}
        """`agent_id` and `agent_type` when these are a subagent's view (`for_agent`)."""

    def for_agent(self, agent_id: str, agent_type: str) -> CommandHooks:
        agent = {"agent_id": agent_id, "agent_type": agent_type}
        return CommandHooks(self.runner, self.notes, agent)

    async def _run(self, event: str, payload: dict[str, Any], match: str | None) -> HookResult:
        if not self.runner.handles(event):
            return HookResult()
        result = await self.runner.run(event, {**self.agent, **payload}, match=match)
        self.notes += result.errors + result.system_messages
        return result

    async def team_event(self, event: str, payload: dict[str, Any]) -> HookResult:
        """TeammateIdle, TaskCreated, TaskCompleted (no matcher); the caller reads the result."""
        return await self._run(event, payload, None)

    async def session_start(self, source: str) -> str:
        result = await self._run("SessionStart", {"source": source}, source)
        return "\n".join(result.additional_context)

    async def notify(self, notification_type: str, message: str) -> None:
        """Notification hooks (`agent_completed`, `agent_needs_input`); they cannot block."""
        payload = {"notification_type": notification_type, "message": message}
        await self._run("Notification", payload, notification_type)

    async def user_prompt(self, prompt: str) -> PromptOutcome:
        r = await self._run("UserPromptSubmit", {"prompt": prompt}, None)
        return PromptOutcome(r.blocked, r.feedback, "\n".join(r.additional_context))

    async def pre_tool(self, call: ToolUseBlock) -> PreToolOutcome:
        payload = {"tool_name": call.name, "tool_input": call.input, "tool_use_id": call.id}
        r = await self._run("PreToolUse", payload, call.name)
        if r.blocked:
            return PreToolOutcome("deny", r.feedback or r.permission_reason or "blocked")
        if r.permission_decision == "allow":
            return PreToolOutcome("allow", r.permission_reason or "", r.updated_input)
        if r.permission_decision == "ask":
            return PreToolOutcome("ask", r.permission_reason or "", r.updated_input)
        return PreToolOutcome(None, "", r.updated_input)

    async def post_tool(self, call: ToolUseBlock, result: ToolResultBlock) -> str:
        payload = {
            "tool_name": call.name,
            "tool_input": call.input,
            "tool_use_id": call.id,
            "tool_response": result.content,
        }
        r = await self._run("PostToolUse", payload, call.name)
        parts = [r.feedback] if r.blocked and r.feedback else []
        return "\n".join(parts + r.additional_context)

    async def stop(self, final_text: str, stop_hook_active: bool) -> str:
        payload = {"stop_hook_active": stop_hook_active, "last_assistant_message": final_text}
        r = await self._run("Stop", payload, None)
        return (r.feedback or "Continue.") if r.blocked else ""

    async def pre_compact(self, trigger: str) -> bool:
        r = await self._run("PreCompact", {"trigger": trigger, "custom_instructions": ""}, trigger)
        return not r.blocked

    async def post_compact(self, trigger: str, summary: str) -> None:
        await self._run("PostCompact", {"trigger": trigger, "compact_summary": summary}, trigger)

    async def subagent_start(self, agent_id: str, agent_type: str) -> str:
        payload = {"agent_id": agent_id, "agent_type": agent_type}
        r = await self._run("SubagentStart", payload, agent_type)
        return "\n".join(r.additional_context)

    async def subagent_stop(
        self, agent_id: str, agent_type: str, final_text: str, stop_hook_active: bool
    ) -> str:
        payload = {
            "agent_id": agent_id,
            "agent_type": agent_type,
            "stop_hook_active": stop_hook_active,
            "last_assistant_message": final_text,
        }
        r = await self._run("SubagentStop", payload, agent_type)
        return (r.feedback or "Continue.") if r.blocked else ""


def hook_runner(
    config: HooksConfig,
    *,
    session_id: str,
    cwd: Path,
    project_dir: Path,
    mode: str,
    settings: Settings | None = None,
    callback: HookCallback | None = None,
) -> HookRunner:
    """The runner of a session's hooks; `settings` say which credentials they may see;
    `callback` answers SDK hook callbacks."""
    if not config.handler_count():
        return HookRunner.empty()
    return HookRunner(
        config,
        session_id=session_id,
        cwd=cwd,
        project_dir=project_dir,
        permission_mode=mode,
        pass_credentials=settings is not None and settings.tools.passCredentials,
        credential_names=credential_names(settings) if settings else frozenset(),
        callback=callback,
    )


class WorktreeCommandHooks:
    """`covey.git.WorktreeHooks` over command hooks: WorktreeCreate replaces creation and
    prints the worktree's path as its last line; WorktreeRemove cannot block."""

    def __init__(self, runner: HookRunner):
        self.runner = runner

    def create(self, name: str) -> Path | None:
        if not self.runner.handles("WorktreeCreate"):
            return None
        r = asyncio.run(self.runner.run("WorktreeCreate", {"name": name}))
        if r.blocked or not r.last_line:
            raise UserError(f"the WorktreeCreate hook failed: {r.feedback or 'it printed no path'}")
        return Path(r.last_line)

    def remove(self, path: Path) -> None:
        if self.runner.handles("WorktreeRemove"):
            asyncio.run(self.runner.run("WorktreeRemove", {"worktree_path": str(path)}))
