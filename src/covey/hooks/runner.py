"""Run the command hooks of an event: select by matcher and `if`, run them in parallel, read
their answers.

Each handler runs as `/bin/sh -c <command>` in the session's working directory, with the event
JSON on stdin and `COVEY_PROJECT_DIR` / `CLAUDE_PROJECT_DIR` in its environment, without covey's
provider credentials unless `pass_credentials` (settings `tools.passCredentials`). A handler is
killed (its whole process group) at its timeout; that is a non-blocking error, so a hanging
hook never hangs the session.

A `callback` handler (an SDK hook callback) gets the same JSON through `callback`, the host's
`HookCallback`, and its answer is read as a command hook's JSON output; no answer within the
timeout, or an error answer, is a non-blocking error.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from covey.errors import UserError
from covey.hooks.config import (
    TOOL_EVENTS,
    CallbackHook,
    CommandHook,
    Handler,
    HooksConfig,
    matcher_matches,
)
from covey.hooks.result import HookResult, combine, failed, from_json, interpret
from covey.proc import ProcessStartError, run_process, without_credentials
from covey.tools.permissions import rule_matches

__all__ = ["HookCallback", "HookRunner", "HookStatistics"]

HookCallback = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""Calls a hook callback by its id with the event's input; the callback's JSON answer."""

_CAPTURE_BYTES = 1_000_000
"""How much of each stream is read from a hook (head and tail); strings are capped later."""


@dataclass(frozen=True)
class HookStatistics:
    events: int = 0
    """`run` calls that started at least one handler."""
    handlers: int = 0
    """Handlers started."""
    blocked: int = 0
    """Events whose result blocked the action."""
    errors: int = 0
    """Non-blocking errors (including timeouts)."""
    timeouts: int = 0
    """Handlers killed at their timeout."""


class HookRunner:
    """Runs the hooks of one session. `permission_mode` and `transcript_path` may change."""

    def __init__(
        self,
        config: HooksConfig,
        *,
        session_id: str,
        cwd: Path,
        project_dir: Path,
        transcript_path: str | None = None,
        permission_mode: str = "default",
        env: Mapping[str, str] | None = None,
        default_timeout_s: float = 600,
        pass_credentials: bool = False,
        credential_names: frozenset[str] = frozenset(),
        callback: HookCallback | None = None,
    ) -> None:
        self.config = config
        self.callback = callback
        self.session_id = session_id
        self.cwd = cwd
        self.project_dir = project_dir
        self.transcript_path = transcript_path
        self.permission_mode = permission_mode
        self.default_timeout_s = default_timeout_s
        project = str(project_dir)
        self._env = {**(env or {}), "COVEY_PROJECT_DIR": project, "CLAUDE_PROJECT_DIR": project}
        self._hidden = None if pass_credentials else credential_names
        self._spent: set[tuple[str, Handler]] = set()  # `once` handlers that ran
        self._stats = HookStatistics()

    @classmethod
    def empty(cls) -> HookRunner:
        """A runner with no hooks: `run` returns a neutral result at once."""
        return cls(HooksConfig(), session_id="", cwd=Path("."), project_dir=Path("."))

    def handles(self, event: str) -> bool:
        """Whether any handler is configured for `event` (to skip building a payload)."""
        return bool(self.config.groups(event))

    def statistics(self) -> HookStatistics:
        return self._stats

    async def run(
        self, event: str, payload: Mapping[str, Any] | None = None, *, match: str | None = None
    ) -> HookResult:
        """Run every handler of `event` whose matcher matches `match` (None: all), in parallel.

        `payload` is merged into the common input on stdin (tool_name, tool_input, prompt...).
        """
        payload = payload or {}
        hooks, errors = self._select(event, payload, match)
        if not hooks:
            return HookResult(errors=errors)
        common = {
            "session_id": self.session_id,
            "transcript_path": self.transcript_path,
            "cwd": str(self.cwd),
            "permission_mode": self.permission_mode,
        }
        data = json.loads(json.dumps({**common, **payload, "hook_event_name": event}, default=str))
        stdin = json.dumps(data).encode()
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(
                    self._call_back(event, hook, data)
                    if isinstance(hook, CallbackHook)
                    else self._run_one(event, hook, stdin)
                )
                for hook in hooks
            ]
        result = combine(task.result() for task in tasks)
        result.errors[:0] = errors
        s = self._stats
        self._stats = replace(
            s,
            events=s.events + 1,
            handlers=s.handlers + result.ran,
            blocked=s.blocked + result.blocked,
            errors=s.errors + len(result.errors),
        )
        return result

    def _select(
        self, event: str, payload: Mapping[str, Any], match: str | None
    ) -> tuple[list[Handler], list[str]]:
        """The handlers to run (each command once) and problems met while choosing them."""
        chosen: dict[str, Handler] = {}
        errors: list[str] = []
        for group in self.config.groups(event):
            try:
                if match is not None and not matcher_matches(group.matcher, match):
                    continue
            except re.error as e:
                errors.append(f"{event} matcher {group.matcher!r} is not a valid regex: {e}")
                continue
            for hook in group.hooks:
                if hook.key in chosen or (event, hook) in self._spent:
                    continue
                if hook.if_ and not self._if_matches(event, hook, payload, match, errors):
                    continue
                chosen[hook.key] = hook
        self._spent |= {(event, hook) for hook in chosen.values() if hook.once}
        return list(chosen.values()), errors

    def _if_matches(
        self,
        event: str,
        hook: Handler,
        payload: Mapping[str, Any],
        match: str | None,
        errors: list[str],
    ) -> bool:
        if event not in TOOL_EVENTS or hook.if_ is None:
            return False  # `if` only applies to tool calls
        tool_input = payload.get("tool_input")
        try:
            return rule_matches(
                hook.if_,
                str(payload.get("tool_name", match or "")),
                tool_input if isinstance(tool_input, Mapping) else {},
                project_root=self.project_dir,
                workspace=self.cwd,
            )
        except UserError as e:
            errors.append(f"{_label(event, hook)}: {e}")
            return False

    def _environment(self) -> dict[str, str | None]:
        hidden = {} if self._hidden is None else without_credentials(self._hidden)
        return {**hidden, **self._env}

    async def _run_one(self, event: str, hook: CommandHook, stdin: bytes) -> HookResult:
        label = _label(event, hook)
        timeout = hook.timeout or self.default_timeout_s
        try:
            proc = await run_process(
                hook.command,
                cwd=self.cwd,
                timeout_s=timeout,
                env=self._environment(),
                stdin=stdin,
                output_limit=_CAPTURE_BYTES,
            )
        except ProcessStartError as e:
            return failed(event, f"{label} could not start: {e}")
        if proc.timed_out:
            self._stats = replace(self._stats, timeouts=self._stats.timeouts + 1)
        return interpret(event, label, proc, timeout)

    async def _call_back(self, event: str, hook: CallbackHook, data: dict[str, Any]) -> HookResult:
        label = _label(event, hook)
        if self.callback is None:
            return failed(event, f"{label}: no SDK is connected to answer it")
        timeout = hook.timeout or self.default_timeout_s
        try:
            async with asyncio.timeout(timeout):
                answer = await self.callback(hook.callback_id, data)
        except TimeoutError:
            self._stats = replace(self._stats, timeouts=self._stats.timeouts + 1)
            return failed(event, f"{label} gave no answer within {timeout:g}s")
        except Exception as e:  # an error answer, or the SDK went away
            return failed(event, f"{label} failed: {e}")
        return from_json(event, label, answer)


def _label(event: str, hook: Handler) -> str:
    if isinstance(hook, CallbackHook):
        return f"{event} hook callback {hook.callback_id!r}"
    command = hook.command if len(hook.command) <= 80 else hook.command[:77] + "..."
    return f"{event} hook {command!r}"
