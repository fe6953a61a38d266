"""Print-mode output in Claude Code's shapes: text, json (one result), stream-json (a line each).

init       {"type":"system","subtype":"init","session_id","cwd","model","tools","permissionMode"}
assistant  {"type":"assistant","message":{…Anthropic message…},"session_id",…}
user       {"type":"user","message":{"role":"user","content":[tool_result…]},"session_id",…}
compacted  {"type":"system","subtype":"compact_boundary","session_id",
            "compact_metadata":{"trigger":"auto"|"manual","pre_tokens"}}
budget     {"type":"system","subtype":"budget_warning","budget":"session"|"daily",
            "spent_usd","limit_usd","session_id"}   (80% of a limit, once per budget)
result     {"type":"result","subtype","is_error","result","session_id","num_turns",
            "duration_ms","total_cost_usd","usage","permission_denials"}
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # `covey --help` and `--version` read OUTPUT_FORMATS without the agent stack
    from covey.agent import AgentEvent, RunResult
    from covey.models.retry import RetryNotice
    from covey.sessions.host import SessionHost

__all__ = ["OUTPUT_FORMATS", "PrintOutput"]

OUTPUT_FORMATS = ("text", "json", "stream-json")


class PrintOutput:
    def __init__(self, fmt: str, out: TextIO | None = None, err: TextIO | None = None):
        self.fmt = fmt
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.session_id = ""

    def _line(self, obj: dict[str, Any]) -> None:
        self.out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.out.flush()

    def start(self, session: SessionHost) -> None:
        self.session_id = session.session_id
        for warning in session.warnings:
            self.err.write(f"covey: warning: {warning}\n")
        if self.fmt == "stream-json":
            self._line(
                {
                    "type": "system",
                    "subtype": "init",
                    "session_id": session.session_id,
                    "cwd": str(session.cwd),
                    "model": session.model_name,
                    "tools": session.tool_names,
                    "permissionMode": session.permission_mode,
                }
            )

    def event(self, event: AgentEvent) -> None:
        from covey.agent.events import BudgetWarning, Compacted, MessageAdded
        from covey.messages import Usage, dump_message

        if self.fmt != "stream-json":
            return
        if isinstance(event, Compacted):
            metadata = {"trigger": event.trigger, "pre_tokens": event.pre_tokens}
            self._line(
                {
                    "type": "system",
                    "subtype": "compact_boundary",
                    "session_id": self.session_id,
                    "compact_metadata": metadata,
                }
            )
        if isinstance(event, BudgetWarning):
            self._line(
                {
                    "type": "system",
                    "subtype": "budget_warning",
                    "budget": event.budget,
                    "spent_usd": round(event.spent_usd, 6),
                    "limit_usd": event.limit_usd,
                    "session_id": self.session_id,
                }
            )
        if not isinstance(event, MessageAdded):
            return
        body = dump_message(event.message)
        if event.message.role == "assistant":
            body.update(
                type="message",
                model=event.model,
                stop_reason=event.stop_reason,
                usage=(event.usage or Usage()).to_anthropic(),
            )
        elif not event.message.tool_results:
            return  # the prompt itself is not echoed, as in Claude Code
        self._line(
            {
                "type": event.message.role,
                "message": body,
                "parent_tool_use_id": None,
                "session_id": self.session_id,
            }
        )

    def retry(self, notice: RetryNotice) -> None:
        if self.fmt == "stream-json":
            self._line(
                {
                    "type": "system",
                    "subtype": "api_retry",
                    "attempt": notice.attempt,
                    "max_retries": notice.max_retries,
                    "retry_delay_ms": int(notice.delay_s * 1000),
                    "error": notice.reason,
                    "session_id": self.session_id,
                }
            )
        else:
            self.err.write(
                f"covey: retrying in {notice.delay_s:.1f}s · attempt "
                f"{notice.attempt}/{notice.max_retries} ({notice.reason})\n"
            )

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
        self._line(
            {
                "type": "result",
                "subtype": subtype,
                "is_error": error is not None,
                "result": text,
                "session_id": session.session_id,
                "num_turns": agent.num_turns,
                "duration_ms": result.duration_ms if result else None,
                "total_cost_usd": round(cost, 6),
                "usage": usage.to_anthropic(),
                "permission_denials": agent.permission_denials,
            }
        )
