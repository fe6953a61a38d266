"""The agent view's peek panel: a session's latest output, or the question it waits on with
its options, above a reply box (Enter sends the reply; a number picks an option). A team's
lead shows its task board first."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static

from covey.sessions.listing import AgentRow
from covey.store.team_tasks import TaskRow
from covey.tui.rows import state_icon

__all__ = ["BOARD_TASKS", "PEEK_LINES", "PeekPanel", "board_lines", "peek_body"]

PEEK_LINES = 8
BOARD_TASKS = 10
"""Tasks the peek shows before `… N more` (all of them: `covey team ID`)."""


def board_lines(tasks: Sequence[TaskRow], lead_id: str) -> list[str]:
    """The task board: id, status, owner, subject, open blockers; one line a task."""
    lines = [f"tasks ({len(tasks)}):" if tasks else "tasks: none yet"]
    for t in tasks[:BOARD_TASKS]:
        blocked = f"  blocked by {', '.join('#' + b for b in t.blocked_by)}" if t.blocked_by else ""
        lines.append(f"  #{t.id:<3} {t.status:<11} {t.owner or '-':<12} {t.subject}{blocked}")
    if len(tasks) > BOARD_TASKS:
        lines.append(f"  … {len(tasks) - BOARD_TASKS} more (covey team {lead_id})")
    return lines


def peek_body(row: AgentRow, latest: list[str], board: Sequence[TaskRow] | None = None) -> str:
    """The pending question and its options, else the latest transcript lines; a lead's task
    `board` first."""
    head = [*board_lines(board, row.id), ""] if board is not None else []
    return "\n".join([*head, _peek_text(row, latest)])


def _peek_text(row: AgentRow, latest: list[str]) -> str:
    if row.state == "needs_input" and row.pending is not None:
        lines = [f"{row.waiting_for}: {row.pending.text}"]
        lines += [f"  {i}. {option}" for i, option in enumerate(row.pending.options, 1)]
        return "\n".join(lines)
    waiting = [f"waiting for {row.waiting_for}"] if row.waiting_for else []
    return "\n".join([*waiting, *latest]) if waiting or latest else "(no output yet)"


class PeekPanel(Vertical):
    DEFAULT_CSS = """
    PeekPanel { height: auto; max-height: 22; border: round $accent; padding: 0 1; }
    PeekPanel #peek-title { text-style: bold; }
    PeekPanel #peek-body { height: auto; max-height: 16; }
    """

    def __init__(self) -> None:
        super().__init__(id="peek")
        self.session_id: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="peek-title")
        yield Static("", id="peek-body")
        yield Input(placeholder="reply, then Enter  (Esc closes)", id="reply")

    def show_row(
        self, row: AgentRow, latest: list[str], board: Sequence[TaskRow] | None = None
    ) -> None:
        self.session_id = row.id
        title = f"{state_icon(row.state)} {row.label} · {row.state}"
        self.query_one("#peek-title", Static).update(title)
        self.query_one("#peek-body", Static).update(peek_body(row, latest, board))
