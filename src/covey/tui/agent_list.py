"""The grouped session list of the agent view: a Line API widget that draws only the visible
lines, so a store of thousands of sessions costs one pass over the rows per reload and a
screenful of lines per repaint. The cursor follows a session id across reloads."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from covey.sessions.listing import AgentRow
from covey.teams.view import Teammate
from covey.tui.rows import (
    OVERLAP_MARK,
    GroupHeader,
    MoreLine,
    RowLine,
    TeammateLine,
    ViewLine,
    age_text,
    cost_text,
    group_lines,
    state_icon,
    summary_text,
    teammate_text,
)

__all__ = ["AgentList"]

NAME_WIDTH = 18
AGE_WIDTH = 4
COST_WIDTH = 7
BRANCH_WIDTH = 22

STATE_STYLES = {
    "needs_input": Style(color="yellow", bold=True),
    "working": Style(color="cyan"),
    "queued": Style(color="cyan", dim=True),
    "idle": Style(dim=True),
    "interrupted": Style(dim=True),
    "completed": Style(color="green"),
    "failed": Style(color="red"),
    "stopped": Style(color="grey50"),
}
HEADER_STYLE = Style(bold=True, underline=True)
DIM = Style(dim=True)
PLAIN = Style()
MARK_STYLE = Style(color="yellow", bold=True)
CURSOR_STYLE = Style(reverse=True)
MORE_ID = "… more"
"""The cursor's id for the `… N more` line (session ids are 8 letters and digits)."""


def _line_id(line: ViewLine) -> str:
    """What the cursor can rest on: a session row or a teammate's (its id), or the fold line;
    "" otherwise."""
    if isinstance(line, RowLine):
        return line.row.id
    if isinstance(line, TeammateLine):
        return line.teammate.row.id if line.teammate.row is not None else ""
    return MORE_ID if isinstance(line, MoreLine) else ""


def _cell(text: str, width: int) -> str:
    """`text` cut or padded to exactly `width` cells (an ellipsis marks a cut)."""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…"
    return set_cell_size(text, width)


class AgentList(ScrollView, can_focus=False):
    """Sessions in their groups; `set_rows` replaces them, ↑/↓ (`move`) moves the cursor."""

    DEFAULT_CSS = """
    AgentList { height: 1fr; overflow-x: hidden; }
    """

    def __init__(self, clock: Callable[[], float] = time.time, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.lines: list[ViewLine] = group_lines(())
        self.rows: list[AgentRow] = []
        self.teammates: Mapping[str, Sequence[Teammate]] = {}
        self._line_of: dict[str, int] = {}
        self.cursor_id: str | None = None
        self.unfolded = False

    @property
    def selected(self) -> AgentRow | None:
        index = self._line_of.get(self.cursor_id or "")
        if index is None:
            return None
        line = self.lines[index]
        if isinstance(line, TeammateLine):
            return line.teammate.row
        return line.row if isinstance(line, RowLine) else None

    @property
    def on_more(self) -> bool:
        """The cursor is on the `… N more` line."""
        return self.cursor_id == MORE_ID

    def unfold(self) -> None:
        """Show every row of Completed; the cursor goes to the first one that was hidden."""
        index = self._line_of.get(MORE_ID)
        self.unfolded = True
        self.set_rows(self.rows)
        if index is not None:
            self.cursor_id = self._nearest_row(index)
            self._scroll_to_cursor()

    def set_rows(
        self, rows: Sequence[AgentRow], teammates: Mapping[str, Sequence[Teammate]] | None = None
    ) -> None:
        """Show these rows, each lead's `teammates` beneath it (None: the ones shown); the
        cursor stays on its session, or on the line where it was."""
        old_index = self._line_of.get(self.cursor_id or "", 0)
        self.rows = list(rows)
        if teammates is not None:
            self.teammates = teammates
        self.lines = group_lines(
            rows, unfolded=self.unfolded, keep=self.cursor_id, teammates=self.teammates
        )
        self._line_of = {_line_id(line): i for i, line in enumerate(self.lines) if _line_id(line)}
        if self.cursor_id not in self._line_of:
            self.cursor_id = self._nearest_row(old_index)
        self.virtual_size = Size(0, len(self.lines))
        self.refresh()

    def move(self, delta: int) -> None:
        """Move the cursor to the next (+1) or previous (-1) session or teammate row."""
        index = self._line_of.get(self.cursor_id or "")
        if index is None:
            self.cursor_id = self._nearest_row(0)
        else:
            i = index + delta
            while 0 <= i < len(self.lines):
                if line_id := _line_id(self.lines[i]):
                    self.cursor_id = line_id
                    break
                i += delta
        self._scroll_to_cursor()
        self.refresh()

    def _nearest_row(self, index: int) -> str | None:
        after = [i for i in self._line_of.values() if i >= index]
        before = [i for i in self._line_of.values() if i < index]
        if not after and not before:
            return None
        target = min(after) if after else max(before)
        return _line_id(self.lines[target]) or None

    def _scroll_to_cursor(self) -> None:
        index = self._line_of.get(self.cursor_id or "")
        if index is not None:
            self.scroll_to_region(Region(0, index, 1, 1), animate=False, x_axis=False)

    def render_line(self, y: int) -> Strip:
        index = y + self.scroll_offset.y
        width = self.size.width
        if index >= len(self.lines) or width <= 0:
            return Strip.blank(width)
        line = self.lines[index]
        if isinstance(line, GroupHeader):
            segments = [Segment(_cell(line.text, width), HEADER_STYLE)]
        elif isinstance(line, TeammateLine):
            segments = self._teammate_segments(line, width)
            if line.teammate.id == self.cursor_id:
                segments = list(Segment.apply_style(segments, post_style=CURSOR_STYLE))
        elif isinstance(line, MoreLine):
            segments = [Segment(_cell(f"   {line.text} (Enter shows them)", width), DIM)]
            if self.cursor_id == MORE_ID:
                segments = list(Segment.apply_style(segments, post_style=CURSOR_STYLE))
        else:
            segments = self._row_segments(line.row, width)
            if line.row.id == self.cursor_id:
                segments = list(Segment.apply_style(segments, post_style=CURSOR_STYLE))
        return Strip(segments).adjust_cell_length(width)

    def _row_segments(self, row: AgentRow, width: int) -> list[Segment]:
        state_style = STATE_STYLES.get(row.state, PLAIN)
        fixed = 3 + NAME_WIDTH + 1 + 1 + AGE_WIDTH + 1 + COST_WIDTH + 1 + BRANCH_WIDTH + 2
        summary_width = max(8, width - fixed)
        mark = OVERLAP_MARK if row.overlaps else " "
        segments = [
            Segment(f" {state_icon(row.state)} ", state_style),
            Segment(_cell(row.label, NAME_WIDTH), state_style),
            Segment(" "),
            Segment(_cell(summary_text(row), summary_width), PLAIN),
            Segment(" "),
            Segment(age_text(row, self.clock()).rjust(AGE_WIDTH), DIM),
            Segment(" "),
            Segment(cost_text(row.cost_usd).rjust(COST_WIDTH), DIM),
            Segment(" "),
            Segment(_cell(row.branch or "", BRANCH_WIDTH), DIM),
            Segment(" "),
            Segment(mark, MARK_STYLE),
            Segment(" "),
        ]
        return segments

    def _teammate_segments(self, line: TeammateLine, width: int) -> list[Segment]:
        mate = line.teammate
        style = STATE_STYLES.get(mate.state, PLAIN)
        branch = "└" if line.last else "├"
        return [
            Segment(f"   {branch} "),
            Segment(f"{state_icon(mate.state)} ", style),
            Segment(_cell(mate.name, NAME_WIDTH - 4), style),
            Segment(" "),
            Segment(_cell(teammate_text(mate), max(8, width - NAME_WIDTH - 6)), DIM),
        ]
