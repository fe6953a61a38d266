"""What the agent view shows, as pure functions of `AgentRow`s: the grouped lines, and each
row's icon, summary, age, cost and marks. No Textual here, so it is tested without a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from covey.git.overlaps import Overlap
from covey.sessions.listing import GROUPS, AgentRow, Group
from covey.teams.view import Teammate

__all__ = [
    "COMPLETED_SHOWN",
    "GroupHeader",
    "MoreLine",
    "RowLine",
    "TeammateLine",
    "ViewLine",
    "age_text",
    "awaiting_input",
    "cost_text",
    "group_lines",
    "overlaps_by_worktree",
    "state_icon",
    "summary_text",
    "teammate_text",
    "terminal_title",
]

STATE_ICONS = {
    "queued": "·",
    "working": "✻",
    "needs_input": "?",
    "idle": "◌",
    "interrupted": "∙",
    "completed": "✓",
    "failed": "✗",
    "stopped": "■",
}
OVERLAP_MARK = "⚠"
COMPLETED_SHOWN = 5
"""Finished rows shown before the rest of Completed folds into `… N more` (failures, and
the row under the cursor, always show)."""


@dataclass(frozen=True)
class GroupHeader:
    group: Group
    count: int

    @property
    def text(self) -> str:
        return f"{self.group} ({self.count})"


@dataclass(frozen=True)
class RowLine:
    row: AgentRow


@dataclass(frozen=True)
class MoreLine:
    """Where the Completed group's older finished rows are folded away."""

    group: Group
    hidden: int

    @property
    def text(self) -> str:
        return f"… {self.hidden} more"


@dataclass(frozen=True)
class TeammateLine:
    """A lead's teammate, beneath the lead's row (the cursor rests on it as on a session's)."""

    teammate: Teammate
    last: bool
    """The lead's last teammate (drawn `└`, the others `├`)."""


ViewLine = GroupHeader | RowLine | MoreLine | TeammateLine


def group_lines(
    rows: Iterable[AgentRow],
    *,
    unfolded: bool = False,
    keep: str | None = None,
    teammates: Mapping[str, Sequence[Teammate]] | None = None,
) -> list[ViewLine]:
    """Every group, top to bottom, as a header then its rows (in the order given, newest
    first), a lead's row followed by its `teammates`. Past `COMPLETED_SHOWN` finished rows,
    Completed folds the rest into one `… N more` line unless `unfolded`; failed rows and the
    row `keep` (the cursor's) always show."""
    grouped: dict[Group, list[AgentRow]] = {g: [] for g in GROUPS}
    for row in rows:
        grouped[row.group].append(row)
    lines: list[ViewLine] = []
    for group in GROUPS:
        members = grouped[group]
        lines.append(GroupHeader(group, len(members)))
        shown = members if unfolded or group != "Completed" else _shown_when_folded(members, keep)
        for row in shown:
            lines.append(RowLine(row))
            mates = (teammates or {}).get(row.id, ())
            lines.extend(TeammateLine(t, i == len(mates) - 1) for i, t in enumerate(mates))
        if len(shown) < len(members):
            lines.append(MoreLine(group, len(members) - len(shown)))
    return lines


def _shown_when_folded(rows: list[AgentRow], keep: str | None) -> list[AgentRow]:
    shown: list[AgentRow] = []
    finished = 0
    for row in rows:
        if row.state == "failed" or row.id == keep:
            shown.append(row)
        elif finished < COMPLETED_SHOWN:
            shown.append(row)
            finished += 1
    return shown


def state_icon(state: str) -> str:
    return STATE_ICONS.get(state, "•")


def summary_text(row: AgentRow) -> str:
    """One line: the session's summary, else what it waits for, else why it is in its state;
    led by its Ray node (`node 1a2b3c4d ·`) when it runs on a cluster."""
    if row.state == "working" and row.waiting_for:
        text = f"waiting for {row.waiting_for}"
    else:
        text = row.summary or (row.pending.text if row.pending else None) or row.reason or ""
    if row.node != "local":
        return " · ".join(p for p in (f"node {row.node[:8]}", " ".join(text.split())) if p)
    return " ".join(text.split())


def teammate_text(teammate: Teammate) -> str:
    """`state · #2 subject` (the task it works on now), else its state."""
    task = teammate.task
    return f"{teammate.state} · #{task.id} {task.subject}" if task else teammate.state


def age_text(row: AgentRow, now: float) -> str:
    """Time since creation; a finished session's age is frozen at how long it ran."""
    end = row.updated if row.group == "Completed" else now
    seconds = max(0, int(end - row.created))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def cost_text(cost_usd: float) -> str:
    return f"${cost_usd:.2f}"


def awaiting_input(rows: Iterable[AgentRow]) -> int:
    return sum(1 for r in rows if r.state == "needs_input")


def terminal_title(rows: Sequence[AgentRow]) -> str:
    return f"{awaiting_input(rows)} awaiting input · covey agents"


def overlaps_by_worktree(
    overlaps: Iterable[Overlap], worktrees: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """Worktree path → the files it shares with another live worktree (matched by the
    worktree's name, the last component of its path)."""
    files_by_name: dict[str, list[str]] = {}
    for overlap in overlaps:
        for name in overlap.worktrees:
            files_by_name.setdefault(name, []).append(overlap.path)
    found: dict[str, tuple[str, ...]] = {}
    for path in worktrees:
        files = files_by_name.get(Path(path).name)
        if files:
            found[path] = tuple(sorted(files))
    return found
