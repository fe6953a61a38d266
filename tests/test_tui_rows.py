"""The pure part of the TUI: rows → lines, ages, summaries, titles, overlaps, folded
transcript lines, and what an answer means."""

from __future__ import annotations

from covey.git.overlaps import Overlap
from covey.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock, dump_message
from covey.sessions.listing import AgentRow
from covey.sessions.pending import Pending
from covey.store.transcript import TranscriptEntry
from covey.tui.peek import peek_body
from covey.tui.rows import (
    GroupHeader,
    MoreLine,
    RowLine,
    age_text,
    cost_text,
    group_lines,
    overlaps_by_worktree,
    summary_text,
    terminal_title,
)
from covey.tui.transcript import entry_lines, fold_result

T0 = 1_800_000_000.0


def row(state: str, **fields: object) -> AgentRow:
    values: dict[str, object] = {
        "id": f"id-{state}", "name": None, "kind": "background", "state": state,
        "reason": None, "summary": None, "cwd": "/w", "worktree": None, "branch": None,
        "agent": None, "created": T0, "updated": T0, "cost_usd": 0.0,
    }  # fmt: skip
    values.update(fields)
    return AgentRow(**values)  # type: ignore[arg-type]


def test_every_group_has_a_header_in_order_with_its_count() -> None:
    rows = [row("completed"), row("interrupted"), row("queued"), row("failed")]
    lines = group_lines(rows)
    shown = [line.text if isinstance(line, GroupHeader) else line.row.state for line in lines]
    assert shown == [
        "Needs input (0)",
        "Working (1)", "queued",
        "Idle (1)", "interrupted",
        "Completed (2)", "completed", "failed",
    ]  # fmt: skip
    assert all(isinstance(line, RowLine) for line in lines if not isinstance(line, GroupHeader))


def test_completed_folds_past_five_finished_rows_never_failures_nor_the_cursors() -> None:
    rows = [row("completed", id=f"c{i}") for i in range(8)]
    rows[3:3] = [row("failed", id="f1")]
    rows.append(row("stopped", id="s1"))  # newest first: c0 c1 c2 f1 c3 … c7 s1

    def completed(lines: list[object]) -> list[str]:
        start = lines.index(GroupHeader("Completed", 10)) + 1
        return [
            line.row.id if isinstance(line, RowLine) else line.text  # type: ignore[attr-defined]
            for line in lines[start:]
        ]

    assert completed(group_lines(rows)) == ["c0", "c1", "c2", "f1", "c3", "c4", "… 4 more"]
    assert completed(group_lines(rows, keep="s1")) == [
        "c0", "c1", "c2", "f1", "c3", "c4", "s1", "… 3 more",
    ]  # fmt: skip
    assert len(completed(group_lines(rows, unfolded=True))) == 10
    assert not any(isinstance(line, MoreLine) for line in group_lines(rows[:6]))


def test_age_runs_while_live_and_freezes_when_finished() -> None:
    assert age_text(row("working"), T0 + 59) == "59s"
    assert age_text(row("working"), T0 + 3 * 3600 + 5) == "3h"
    assert age_text(row("completed", updated=T0 + 120), T0 + 86400 * 5) == "2m"
    assert age_text(row("working"), T0 - 10) == "0s"  # a clock behind the row


def test_summary_falls_back_to_the_question_then_the_reason() -> None:
    question = Pending(kind="question", text="Which\ndatabase?")
    assert summary_text(row("working", summary="Running  tests")) == "Running tests"
    assert summary_text(row("needs_input", pending=question)) == "Which database?"
    assert summary_text(row("failed", reason="max_turns")) == "max_turns"
    assert summary_text(row("queued")) == ""


def test_cost_and_title() -> None:
    assert cost_text(0) == "$0.00" and cost_text(1.2345) == "$1.23"
    rows = [row("needs_input"), row("needs_input"), row("working")]
    assert terminal_title(rows) == "2 awaiting input · covey agents"


def test_overlaps_match_worktrees_by_name() -> None:
    overlaps = [
        Overlap(path="src/a.py", worktrees=["bg-one", "bg-two"]),
        Overlap(path="README.md", worktrees=["bg-one", "other"]),
    ]
    paths = ["/r/.covey/worktrees/bg-one", "/r/.covey/worktrees/bg-two", "/r/.covey/worktrees/x"]
    assert overlaps_by_worktree(overlaps, paths) == {
        "/r/.covey/worktrees/bg-one": ("README.md", "src/a.py"),
        "/r/.covey/worktrees/bg-two": ("src/a.py",),
    }


def entry(message: Message) -> TranscriptEntry:
    return TranscriptEntry("s", 1, "message", dump_message(message), T0)


def test_tool_calls_and_results_fold_to_one_line_and_text_stays_whole() -> None:
    call = ToolUseBlock(id="t", name="Read", input={"file_path": "a.py"})
    assert entry_lines(
        entry(Message(role="assistant", content=[TextBlock(text="a\nb"), call]))
    ) == [
        "● a",
        "● b",
        '  → Read {"file_path": "a.py"}',
    ]
    result = ToolResultBlock(tool_use_id="t", content="\n".join(f"l{i}" for i in range(40)))
    assert entry_lines(entry(Message(role="user", content=[result]))) == ["    ← l0  (+39 lines)"]
    error = ToolResultBlock(tool_use_id="t", content="boom", is_error=True)
    assert fold_result(error) == "    ✗ boom"
    assert entry_lines(entry(Message.user("hi"))) == ["> hi"]


def test_a_number_picks_an_option() -> None:
    pending = Pending(kind="question", text="?", options=["sqlite", "postgres"])
    assert pending.choose("2") == "postgres"
    assert pending.choose("3") == "3"
    assert pending.choose(" mysql ") == "mysql"


def test_peek_shows_the_question_with_options_else_the_output() -> None:
    pending = Pending(kind="permission", text="Allow Bash?", options=["allow", "deny"])
    assert peek_body(row("needs_input", pending=pending), ["x"]) == (
        "permission prompt: Allow Bash?\n  1. allow\n  2. deny"
    )
    assert peek_body(row("working"), ["● hi"]) == "● hi"
    assert peek_body(row("queued"), []) == "(no output yet)"
