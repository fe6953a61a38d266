"""The agent view's peek panel: a session's latest output, or the question it waits on with
its options, above a reply box (Enter sends the reply; a number picks an option)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static

from covey.sessions.listing import AgentRow
from covey.tui.rows import state_icon

__all__ = ["PEEK_LINES", "PeekPanel", "peek_body"]

PEEK_LINES = 8


def peek_body(row: AgentRow, latest: list[str]) -> str:
    """The pending question and its options, else the latest transcript lines."""
    if row.state == "needs_input" and row.pending is not None:
        lines = [f"{row.waiting_for}: {row.pending.text}"]
        lines += [f"  {i}. {option}" for i, option in enumerate(row.pending.options, 1)]
        return "\n".join(lines)
    waiting = [f"waiting for {row.waiting_for}"] if row.waiting_for else []
    return "\n".join([*waiting, *latest]) if waiting or latest else "(no output yet)"


class PeekPanel(Vertical):
    DEFAULT_CSS = """
    PeekPanel { height: auto; max-height: 16; border: round $accent; padding: 0 1; }
    PeekPanel #peek-title { text-style: bold; }
    PeekPanel #peek-body { height: auto; max-height: 10; }
    """

    def __init__(self) -> None:
        super().__init__(id="peek")
        self.session_id: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="peek-title")
        yield Static("", id="peek-body")
        yield Input(placeholder="reply, then Enter  (Esc closes)", id="reply")

    def show_row(self, row: AgentRow, latest: list[str]) -> None:
        self.session_id = row.id
        title = f"{state_icon(row.state)} {row.label} · {row.state}"
        self.query_one("#peek-title", Static).update(title)
        self.query_one("#peek-body", Static).update(peek_body(row, latest))
