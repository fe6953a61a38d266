"""Print-mode output in Claude Code's shapes: text, json (one result), stream-json (a line each).

init       {"type":"system","subtype":"init","session_id","cwd","model","tools","permissionMode",
            "claude_code_version","mcp_servers","slash_commands","uuid"}
assistant  {"type":"assistant","message":{…Anthropic message, with id…},"session_id","uuid",…}
user       {"type":"user","message":{"role":"user","content":[tool_result…]},"session_id",…}
compacted  {"type":"system","subtype":"compact_boundary","session_id",
            "compact_metadata":{"trigger":"auto"|"manual","pre_tokens"}}
budget     {"type":"system","subtype":"budget_warning","budget":"session"|"daily",
            "spent_usd","limit_usd","session_id"}   (80% of a limit, once per budget)
partial    {"type":"stream_event","event":{…Anthropic stream event…},"session_id",…}
            (with --include-partial-messages: the text of each response as it streams)
result     {"type":"result","subtype","is_error","result","session_id","num_turns",
            "duration_ms","duration_api_ms","total_cost_usd","usage","permission_denials",
            "stop_reason","uuid"}

Every message line has a `uuid`, as the Claude Agent SDK expects.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # `covey --help` and `--version` read OUTPUT_FORMATS without the agent stack
    from covey.agent import AgentEvent, RunResult
    from covey.models.retry import RetryNotice
    from covey.sessions.host import SessionHost

__all__ = ["CLAUDE_CODE_COMPAT", "INTERRUPTED_LINE", "OUTPUT_FORMATS", "PrintOutput"]

OUTPUT_FORMATS = ("text", "json", "stream-json")
CLAUDE_CODE_COMPAT = "2.1.0"
"""The `claude_code_version` covey reports in `system/init`: the level of Claude Code's
command line and stream-json protocol it is compatible with (not covey's own version)."""
INTERRUPTED_LINE = "[Request interrupted by user]"


class PrintOutput:
    def __init__(
        self,
        fmt: str,
        out: TextIO | None = None,
        err: TextIO | None = None,
        *,
        partial: bool = False,
    ):
        self.fmt = fmt
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.partial = partial and fmt == "stream-json"
        self.session_id = ""
        self.model = ""
        self._warned = False
        self._started = time.monotonic()
        self._streaming = False

    def line(self, obj: dict[str, Any]) -> None:
        """One JSON line as it is (control lines of the stream-json host too)."""
        self.out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.out.flush()

    def _message(self, obj: dict[str, Any]) -> None:
        self.line({**obj, "session_id": self.session_id, "uuid": str(uuid.uuid4())})

    def start(self, session: SessionHost) -> None:
        self.session_id = session.session_id
        self.model = session.model_name
        self._started = time.monotonic()
        if not self._warned:  # a stream-json host starts once per turn; warn once
            self._warned = True
            for warning in session.warnings:
                self.err.write(f"covey: warning: {warning}\n")
        if self.fmt == "stream-json":
            self._message(
                {
                    "type": "system",
                    "subtype": "init",
                    "cwd": str(session.cwd),
                    "model": session.model_name,
                    "tools": session.tool_names,
                    "mcp_servers": [],
                    "slash_commands": [],
                    "permissionMode": session.permission_mode,
                    "claude_code_version": CLAUDE_CODE_COMPAT,
                    "output_style": "default",
                }
            )

    def event(self, event: AgentEvent) -> None:
        from covey.agent.events import BudgetWarning, Compacted, MessageAdded, TextDelta
        from covey.messages import Usage, dump_message

        if self.fmt != "stream-json":
            return
        if isinstance(event, TextDelta) and self.partial:
            self._delta(event.text)
        if isinstance(event, Compacted):
            metadata = {"trigger": event.trigger, "pre_tokens": event.pre_tokens}
            self._message(
                {"type": "system", "subtype": "compact_boundary", "compact_metadata": metadata}
            )
        if isinstance(event, BudgetWarning):
            self._message(
                {
                    "type": "system",
                    "subtype": "budget_warning",
                    "budget": event.budget,
                    "spent_usd": round(event.spent_usd, 6),
                    "limit_usd": event.limit_usd,
                }
            )
        if not isinstance(event, MessageAdded):
            return
        body = dump_message(event.message)
        if event.message.role == "assistant":
            usage = (event.usage or Usage()).to_anthropic()
            self._stream_end(event.stop_reason, usage)
            body = {
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "type": "message",
                **body,
                "model": event.model,
                "stop_reason": event.stop_reason,
                "usage": usage,
            }
        elif not event.message.tool_results:
            return  # the prompt itself is not echoed, as in Claude Code
        self._message({"type": event.message.role, "message": body, "parent_tool_use_id": None})

    def _event(self, event: dict[str, Any]) -> None:
        self._message({"type": "stream_event", "event": event, "parent_tool_use_id": None})

    def _delta(self, text: str) -> None:
        """A text delta as Anthropic stream events (a message and a text block start first)."""
        if not self._streaming:
            self._streaming = True
            message: dict[str, Any] = {"id": "", "type": "message", "role": "assistant"}
            message.update(model=self.model, content=[], stop_reason=None, usage={})
            self._event({"type": "message_start", "message": message})
            block = {"type": "text", "text": ""}
            self._event({"type": "content_block_start", "index": 0, "content_block": block})
        delta = {"type": "text_delta", "text": text}
        self._event({"type": "content_block_delta", "index": 0, "delta": delta})

    def _stream_end(self, stop_reason: str | None, usage: dict[str, int]) -> None:
        if not self._streaming:
            return
        self._streaming = False
        self._event({"type": "content_block_stop", "index": 0})
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        self._event({"type": "message_delta", "delta": delta, "usage": usage})
        self._event({"type": "message_stop"})

    def retry(self, notice: RetryNotice) -> None:
        if self.fmt == "stream-json":
            self._message(
                {
                    "type": "system",
                    "subtype": "api_retry",
                    "attempt": notice.attempt,
                    "max_retries": notice.max_retries,
                    "retry_delay_ms": int(notice.delay_s * 1000),
                    "error": notice.reason,
                }
            )
        else:
            self.err.write(
                f"covey: retrying in {notice.delay_s:.1f}s · attempt "
                f"{notice.attempt}/{notice.max_retries} ({notice.reason})\n"
            )

    def interrupted(self, session: SessionHost) -> None:
        """A turn the caller interrupted: Claude Code's user line, then an error result."""
        self._streaming = False
        if self.fmt == "stream-json":
            content = [{"type": "text", "text": INTERRUPTED_LINE}]
            message = {"role": "user", "content": content}
            self._message({"type": "user", "message": message, "parent_tool_use_id": None})
        self.finish(session, None, INTERRUPTED_LINE, subtype="error_during_execution")

    def finish(
        self,
        session: SessionHost,
        result: RunResult | None,
        error: str | None = None,
        subtype: str = "success",
    ) -> None:
        agent = session.agent
        text = result.result if result else (error or "")
        if self.fmt == "text":
            if error:
                self.err.write(f"covey: {error}\n")
            elif text:
                self.out.write(text.rstrip("\n") + "\n")
            return
        usage, cost = session.spend.read()  # the ledger: subagents included
        elapsed = int((time.monotonic() - self._started) * 1000)
        self._message(
            {
                "type": "result",
                "subtype": subtype,
                "is_error": error is not None,
                "result": text,
                "num_turns": agent.num_turns,
                "duration_ms": result.duration_ms if result else elapsed,
                "duration_api_ms": agent.api_ms,
                "stop_reason": "end_turn" if result else None,
                "total_cost_usd": round(cost, 6),
                "usage": usage.to_anthropic(),
                "permission_denials": agent.permission_denials,
            }
        )
