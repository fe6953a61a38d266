"""The stream-json host: covey behind the Claude Agent SDK (`--input-format stream-json`).

stdin carries the SDK's lines: `control_request`s and `user` messages, read as they come (the
reader never waits for a turn). Each user message is one turn of ONE session, run in order
through the session plan and a `SessionHost`, exactly as `covey -p` runs its one turn: the
session is stored, resumable, and has its hooks and permissions. stdout carries the turn's
messages (the `TurnOutput`) and covey's own control requests. At the end of stdin the turns
already sent run to their end, then `serve` returns.

Control requests from the SDK: `initialize` (its hook callbacks join the session's hooks, its
agents the definitions), `interrupt` (the running turn is cancelled; the session stays, the
next prompt continues it), `set_permission_mode`, `set_model` (checked like the flags, for the
next turns; a mode also at once), `mcp_status` (no servers); anything else is refused with an
error answer, never left unanswered. Towards the SDK: `can_use_tool` when a permission decision
is "ask" and the SDK answers permissions (`--permission-prompt-tool stdio`), `hook_callback`
for its hooks, `control_cancel_request` for an ask an interrupt withdrew.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from covey.agent import AgentEvent, RunResult
from covey.agent.tool_runner import Approval
from covey.errors import CoveyError, MaxTurnsExceeded, ToolError, UserError
from covey.hooks import HooksConfig, callback_hooks, merge_hooks
from covey.messages import ToolUseBlock
from covey.models.retry import RetryNotice
from covey.sessions.fork import fork_session
from covey.sessions.hooks_bridge import CommandHooks
from covey.sessions.host import SessionHost
from covey.sessions.permission_updates import over_layer, take_updates
from covey.sessions.plan import SessionOptions, SessionPlan, plan_session
from covey.sessions.stream_channel import ControlChannel, ControlError
from covey.store import Store
from covey.store.sessions import SessionRow, get_session
from covey.tools.ask import NO_USER
from covey.tools.permissions import Decision

__all__ = ["StreamHost", "TurnOutput", "prompt_text"]


class TurnOutput(Protocol):
    """What a turn shows on stdout (covey.cli.print_output.PrintOutput in stream-json)."""

    def start(self, session: SessionHost) -> None: ...

    def event(self, event: AgentEvent) -> None: ...

    def retry(self, notice: RetryNotice) -> None: ...

    def finish(
        self,
        session: SessionHost,
        result: RunResult | None,
        error: str | None = None,
        subtype: str = "success",
    ) -> None: ...

    def interrupted(self, session: SessionHost) -> None: ...

    def line(self, obj: dict[str, Any]) -> None: ...


def prompt_text(content: object) -> str:
    """A user message's content as covey's prompt: a string, or the text of its blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [b.get("text", "") for b in content if isinstance(b, dict)]
        if any(isinstance(b, dict) and b.get("type") != "text" for b in content):
            raise UserError("only text content blocks are supported in user messages")
        return "\n\n".join(t for t in texts if isinstance(t, str) and t)
    raise UserError("a user message needs message.content (a string or content blocks)")


class StreamHost:
    def __init__(
        self,
        store: Store,
        options: SessionOptions,
        previous: SessionRow | None,
        output: TurnOutput,
        *,
        ask_sdk: bool = False,
        fork: bool = False,
        state_frames: str | None = None,
        warn: Callable[[str], None] = lambda _m: None,
        wake_supervisor: Callable[[], object] | None = None,
    ) -> None:
        """`ask_sdk`: permission asks go to the SDK (`can_use_tool`), else they are denied as
        in `covey -p`. `fork`: the first turn starts a fork of `previous`. `state_frames`:
        None, or "host" / "all" for `session_state_changed` lines (only the SDK reads them /
        the caller sees them too)."""
        self.store = store
        self.options = options
        self.previous = previous
        self.output = output
        self.ask_sdk = ask_sdk
        self.fork = fork and previous is not None
        self.state_frames = state_frames
        self.warn = warn
        self.wake_supervisor = wake_supervisor
        self.channel = ControlChannel(output.line)
        self.sdk_hooks = HooksConfig()
        self.session: SessionHost | None = None
        self._turn: asyncio.Task[RunResult] | None = None
        self._prompts: asyncio.Queue[str | UserError | None] = asyncio.Queue()
        self._started = False
        self.base_overrides = options.settings_overrides
        self.permission_layer: dict[str, Any] = {}
        """The SDK's `updatedPermissions` for this session, over `base_overrides`."""

    def check(self) -> SessionPlan:
        """Plan the session once before any input is read: bad flags are a UserError here."""
        return self._plan()

    async def serve(self, lines: AsyncIterator[str]) -> None:
        """Read stdin's lines to the end while the turns run; return after the last turn."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._run_prompts())
            async for line in lines:
                if line.strip():
                    self._dispatch(line, group)
            self.channel.close()
            self._prompts.put_nowait(None)

    # --- reading ---------------------------------------------------------------------------

    def _dispatch(self, line: str, group: asyncio.TaskGroup) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            self.warn(f"stdin: a line that is not JSON was ignored: {line[:80]!r}")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "user":
            body = message.get("message")
            try:
                prompt: str | UserError = prompt_text(
                    body.get("content") if isinstance(body, dict) else None
                )
            except UserError as e:
                prompt = e  # its turn ends at once with an error result
            self._prompts.put_nowait(prompt)
        elif kind == "control_request":
            group.create_task(self._control(message))
        elif kind == "control_response":
            self.channel.resolve(message.get("response"))
        elif kind not in ("control_cancel_request", "keep_alive"):
            self.warn(f"stdin: a line of type {kind!r} was ignored")

    async def _control(self, message: dict[str, Any]) -> None:
        request_id = str(message.get("request_id", ""))
        request = message.get("request")
        if not isinstance(request, dict):
            request = {}
        subtype = request.get("subtype")
        try:
            if subtype == "initialize":
                payload = self._initialize(request)
            elif subtype == "interrupt":
                payload = self._interrupt()
            elif subtype == "set_permission_mode":
                payload = self._set_mode(str(request.get("mode", "")))
            elif subtype == "set_model":
                payload = self._set_model(request.get("model"))
            elif subtype == "mcp_status":
                payload = {"mcpServers": []}
            else:
                raise UserError(f"Unsupported control request subtype: {subtype}")
        except Exception as e:  # every request is answered; a failure is its answer
            self.channel.refuse(request_id, str(e) or type(e).__name__)
            return
        self.channel.answer(request_id, payload)

    # --- control requests from the SDK -----------------------------------------------------

    def _initialize(self, request: dict[str, Any]) -> dict[str, Any]:
        hooks, warnings = callback_hooks(request.get("hooks"))
        agents = request.get("agents")
        if agents:
            self._replan(agents_json=json.dumps(agents))
        self.sdk_hooks = hooks
        for warning in warnings:
            self.warn(warning)
        return {"commands": [], "agents": [], "output_style": "default", "models": []}

    def _interrupt(self) -> dict[str, Any]:
        self._cancel_turn()
        return {}

    def _cancel_turn(self) -> None:
        if self._turn is not None and not self._turn.done():
            if self.session is not None:
                self.session.cancel_cause = "interrupt"
            self._turn.cancel()

    def _set_mode(self, mode: str) -> dict[str, Any]:
        plan = self._replan(permission_mode=mode)
        if self.session is not None and self._turn is not None and not self._turn.done():
            self.session.agent.runner.policy.mode = plan.policy.mode  # the running turn too
        return {"mode": mode}

    def _set_model(self, model: object) -> dict[str, Any]:
        self._replan(model=str(model) if model else None)
        return {"model": model}

    def _replan(self, **changes: Any) -> SessionPlan:
        """Change the options of the next turns, checked first (a bad value changes nothing)."""
        before = self.options
        self.options = dataclasses.replace(self.options, **changes)
        try:
            return self._plan()
        except Exception:
            self.options = before
            raise

    # --- turns -----------------------------------------------------------------------------

    def _plan(self) -> SessionPlan:
        """The plan of the next turn: the first one's options, then the session it made."""
        options, previous = self.options, self.previous
        if self._started or self.fork:
            options = dataclasses.replace(
                options, resume=None, continue_last=False, session_id=None
            )
        plan = plan_session(options, previous)
        return dataclasses.replace(plan, hooks=merge_hooks([plan.hooks, self.sdk_hooks]))

    async def _run_prompts(self) -> None:
        while (prompt := await self._prompts.get()) is not None:
            await self._run_turn(prompt)
            if self._prompts.empty():
                self._state("idle")

    async def _run_turn(self, prompt: str | UserError) -> None:
        if isinstance(prompt, UserError):
            self._early_end(f"user message refused: {prompt}")
            return
        if self.fork and self.previous is not None:
            self.previous = fork_session(self.store, self.previous, self.options.session_id)
            self.fork = False
        try:
            session = SessionHost.open(
                self.store,
                self._plan(),
                observers=[self.output.event],
                asker=self,
                on_retry=self.output.retry,
                wake_supervisor=self.wake_supervisor,
                hook_callback=self._hook_callback,
            )
        except CoveyError as e:  # a setting file broken since the last turn, a key gone...
            self._early_end(str(e))
            return
        first, self._started = not self._started, True
        self.session = session
        with self.store.read() as conn:
            self.previous = get_session(conn, session.session_id)
        self.output.start(session)
        self._state("running")
        self._turn = asyncio.create_task(session.run_turn(prompt, start_hooks=first))
        try:
            await asyncio.wait([self._turn])
        except asyncio.CancelledError:
            self._turn.cancel()
            with contextlib.suppress(BaseException):
                await self._turn
            raise
        finally:
            session.close()
        self._report(session, self._turn)

    def _early_end(self, error: str) -> None:
        """A turn that cannot start: a warning and its error result."""
        self._state("running")
        self.warn(error)
        session_id = self.session.session_id if self.session else self.options.session_id
        self.output.line(_early_result(error, session_id or ""))

    def _report(self, session: SessionHost, turn: asyncio.Task[RunResult]) -> None:
        if turn.cancelled():
            self.output.interrupted(session)
            return
        error = turn.exception()
        if error is None:
            self.output.finish(session, turn.result())
        elif isinstance(error, MaxTurnsExceeded):
            self.output.finish(session, None, str(error), subtype="error_max_turns")
        elif isinstance(error, Exception):
            self.output.finish(session, None, str(error), subtype="error_during_execution")
        else:
            raise error

    def _state(self, state: str) -> None:
        if self.state_frames is None:
            return
        frame: dict[str, Any] = {
            "type": "system",
            "subtype": "session_state_changed",
            "state": state,
        }
        if self.state_frames == "host":
            frame["sdk_host_only"] = True
        self.output.line(frame)

    # --- towards the SDK: the Asker and the hook callbacks ---------------------------------

    def bind(self, session_id: str, epoch: int, hooks: CommandHooks) -> None:
        """`Asker`: the SDK is asked only while a turn runs; nothing to keep."""

    async def ask_user(self, question: str, options: list[str]) -> str:
        raise ToolError(NO_USER)

    async def approve(self, call: ToolUseBlock, decision: Decision) -> bool | Approval:
        """A permission "ask": the SDK's `can_use_tool` decides (else denied, as in -p)."""
        if not self.ask_sdk:
            return False
        request = {
            "subtype": "can_use_tool",
            "tool_name": call.name,
            "input": call.input,
            "tool_use_id": call.id,
            "permission_suggestions": [],
            "description": decision.reason,
        }
        self._state("requires_action")
        try:
            answer = await self.channel.request(request)
        except ControlError as e:
            return Approval(False, message=f"Permission to use {call.name} was denied ({e})")
        finally:
            self._state("running")
        if answer.get("behavior") == "allow":
            self._update_permissions(answer.get("updatedPermissions"))
            updated = answer.get("updatedInput")
            return Approval(True, updated if isinstance(updated, dict) else None)
        if answer.get("interrupt"):
            asyncio.get_running_loop().call_soon(self._cancel_turn)
        message = answer.get("message")
        return Approval(False, message=str(message or f"Permission to use {call.name} denied"))

    def _update_permissions(self, raw: object) -> None:
        """An allow's `updatedPermissions`: for this session (its running turn included) and
        the settings files they name (`covey.sessions.permission_updates`)."""
        if not raw:
            return
        try:
            layer, updates = take_updates(raw, self.permission_layer, self.options.cwd)
            modes = [u.mode for u in updates if u.mode is not None]
            mode = modes[-1] if modes else self.options.permission_mode
            overrides = over_layer(self.base_overrides, layer)
            plan = self._replan(settings_overrides=overrides, permission_mode=mode)
        except (ValueError, CoveyError) as e:
            self.warn(f"can_use_tool: updatedPermissions not applied: {e}")
            return
        self.permission_layer = layer
        if self.session is not None:
            self.session.agent.runner.policy.adopt(plan.policy)

    async def _hook_callback(self, callback_id: str, data: dict[str, Any]) -> dict[str, Any]:
        request = {
            "subtype": "hook_callback",
            "callback_id": callback_id,
            "input": data,
            "tool_use_id": data.get("tool_use_id"),
        }
        return await self.channel.request(request)


def _early_result(error: str, session_id: str) -> dict[str, Any]:
    """The result of a turn that could not start."""
    return {
        "uuid": str(uuid.uuid4()),
        "type": "result",
        "subtype": "error_during_execution",
        "is_error": True,
        "result": error,
        "session_id": session_id,
        "num_turns": 0,
        "duration_ms": 0,
        "duration_api_ms": 0,
        "total_cost_usd": 0,
        "usage": {"input_tokens": 0, "output_tokens": 0},
        "permission_denials": [],
    }
