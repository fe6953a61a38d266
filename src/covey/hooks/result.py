"""What hooks said: one handler's exit code and output read by Claude Code's contract, and the
results of all handlers of an event combined into one `HookResult`.

Exit 0: success, stdout read as JSON when it starts with `{` (else kept as plain `output`).
Exit 2: a blocking error, stderr is the feedback and any JSON is ignored. Any other exit, a
timeout or a failure to start: a non-blocking error, recorded in `errors` (WorktreeCreate is
the exception: any failure blocks it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from covey.proc import ProcessResult

__all__ = ["OUTPUT_CAP", "HookResult", "cap", "combine", "failed", "from_json", "interpret"]

OUTPUT_CAP = 10_000
"""The longest string (feedback, context, message, output) a hook may contribute."""
CONTEXT_EVENTS = frozenset({"UserPromptSubmit", "SessionStart", "PostToolUse", "SubagentStart"})
"""Events whose `hookSpecificOutput.additionalContext` is honoured."""
PLAIN_CONTEXT_EVENTS = frozenset({"UserPromptSubmit", "SessionStart"})
"""Events whose plain stdout (exit 0, not JSON) is also added as context."""
_RANK = {"allow": 0, "ask": 1, "deny": 2}


@dataclass
class HookResult:
    """The combined outcome of the handlers of one event. Neutral when nothing ran."""

    blocked: bool = False
    """The action must not happen: an exit 2, `decision: "block"`, a PreToolUse
    `permissionDecision: "deny"`, or any failure of a WorktreeCreate hook."""
    feedback: str = ""
    """Why it was blocked: stderr of exit-2 handlers and block/deny reasons, one per line."""
    continue_: bool = True
    """False when a handler returned `continue: false`: the session should stop."""
    stop_reason: str | None = None
    """The `stopReason` that came with `continue: false` (for the person, not the model)."""
    system_messages: list[str] = field(default_factory=list)
    """`systemMessage`s, to show to the person."""
    additional_context: list[str] = field(default_factory=list)
    """Text for the model (`additionalContext`; plain stdout of UserPromptSubmit/SessionStart)."""
    permission_decision: str | None = None
    """PreToolUse only: the most restrictive decision among handlers, deny > ask > allow."""
    permission_reason: str | None = None
    """The `permissionDecisionReason` that came with `permission_decision`."""
    updated_input: dict[str, Any] | None = None
    """PreToolUse only: a replacement tool input (the last handler's, in config order); None
    when the call is blocked."""
    errors: list[str] = field(default_factory=list)
    """Non-blocking failures (exit 1, timeouts, bad JSON), for logs."""
    output: str = ""
    """Plain (non-JSON) stdout of the handlers that succeeded, in config order."""
    ran: int = 0
    """How many handlers were started."""

    @property
    def last_line(self) -> str:
        """The last non-empty line of `output`: WorktreeCreate's worktree path."""
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def failed(event: str, problem: str) -> HookResult:
    """A handler that timed out, could not start or exited with a non-blocking code."""
    if event == "WorktreeCreate":
        return HookResult(blocked=True, feedback=cap(problem), errors=[problem], ran=1)
    return HookResult(errors=[problem], ran=1)


def interpret(event: str, label: str, proc: ProcessResult, timeout_s: float) -> HookResult:
    """One handler's result from its exit code and output."""
    stderr = proc.stderr.strip()
    if proc.timed_out:
        return failed(event, f"{label} timed out after {timeout_s:g}s and was killed")
    if proc.exit_code == 2 and event != "WorktreeCreate":
        return HookResult(blocked=True, feedback=cap(stderr or f"{label} exited with 2"), ran=1)
    if proc.exit_code != 0:
        detail = f": {cap(stderr)}" if stderr else ""
        return failed(event, f"{label} exited with {proc.exit_code}{detail}")
    result = HookResult(ran=1)
    stdout = proc.stdout
    if event != "WorktreeCreate" and stdout.lstrip().startswith("{"):
        try:
            data = json.loads(stdout)
        except json.JSONDecodeError as e:
            result.errors.append(f"{label} printed invalid JSON ({e.msg}); read as text")
        else:
            if isinstance(data, dict):
                _apply_json(event, label, data, result)
                return result
    result.output = cap(stdout.rstrip("\n"))
    if event in PLAIN_CONTEXT_EVENTS and stdout.strip():
        result.additional_context.append(cap(stdout.strip()))
    return result


def from_json(event: str, label: str, data: object) -> HookResult:
    """One handler's result from its JSON answer (an SDK hook callback's): read as the JSON
    a command hook prints on stdout with exit code 0."""
    result = HookResult(ran=1)
    if isinstance(data, dict):
        _apply_json(event, label, data, result)
    else:
        result.errors.append(f"{label} answered with {type(data).__name__}, not an object")
    return result


def _apply_json(event: str, label: str, data: dict[str, Any], r: HookResult) -> None:
    if data.get("continue") is False:
        r.continue_ = False
        r.stop_reason = _text(data.get("stopReason"))
    if message := _text(data.get("systemMessage")):
        r.system_messages.append(message)
    decision = data.get("decision")
    if decision == "block":
        r.blocked = True
        r.feedback = _text(data.get("reason")) or f"blocked by {label}"
    elif decision == "approve" and event == "PreToolUse":  # the deprecated form of allow
        r.permission_decision, r.permission_reason = "allow", _text(data.get("reason"))
    specific = data.get("hookSpecificOutput")
    if not isinstance(specific, dict):
        return
    if specific.get("hookEventName", event) != event:
        name = specific.get("hookEventName")
        r.errors.append(f"{label}: hookSpecificOutput is for {name}, not {event}; ignored")
        return
    if event in CONTEXT_EVENTS and (context := _text(specific.get("additionalContext"))):
        r.additional_context.append(context)
    if event != "PreToolUse":
        return
    choice = specific.get("permissionDecision")
    if choice in _RANK:
        r.permission_decision = choice
        r.permission_reason = _text(specific.get("permissionDecisionReason"))
    elif choice not in (None, "defer"):
        r.errors.append(f"{label}: unknown permissionDecision {choice!r}; ignored")
    if choice == "deny":
        r.blocked = True
        r.feedback = r.permission_reason or f"denied by {label}"
    if isinstance(updated := specific.get("updatedInput"), dict):
        r.updated_input = updated


def combine(results: Iterable[HookResult]) -> HookResult:
    """All handlers' results as one, in config order."""
    out = HookResult()
    outputs: list[str] = []
    for r in results:
        out.ran += r.ran
        out.blocked |= r.blocked
        out.feedback = "\n".join(f for f in (out.feedback, r.feedback) if f)
        if not r.continue_:
            out.continue_ = False
            out.stop_reason = out.stop_reason or r.stop_reason
        out.system_messages += r.system_messages
        out.additional_context += r.additional_context
        out.errors += r.errors
        outputs += [r.output] if r.output else []
        if r.permission_decision is not None and (
            out.permission_decision is None
            or _RANK[r.permission_decision] > _RANK[out.permission_decision]
        ):
            out.permission_decision = r.permission_decision
            out.permission_reason = r.permission_reason
        out.updated_input = r.updated_input if r.updated_input is not None else out.updated_input
    out.output = "\n".join(outputs)
    if out.blocked or out.permission_decision == "deny":
        out.updated_input = None
    return out


def cap(text: str) -> str:
    """`text`, cut to OUTPUT_CAP characters with a note saying how much was cut."""
    if len(text) <= OUTPUT_CAP:
        return text
    note = f"\n... [hook output cut: {len(text):,} characters]"
    return text[: OUTPUT_CAP - len(note)] + note


def _text(value: object) -> str | None:
    return cap(value) if isinstance(value, str) and value else None
