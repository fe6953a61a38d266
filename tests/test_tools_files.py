"""Read, Write, Edit, Glob, AskUserQuestion and the core tool set, on real temp directories."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

import covey.tools
from covey.errors import ToolError
from covey.tools import (
    AskUserQuestionTool,
    EditTool,
    GlobTool,
    ReadTool,
    Tool,
    ToolContext,
    WriteTool,
    core_tools,
)


def call(tool: Tool[Any], ctx: ToolContext, **raw: Any) -> str:
    return asyncio.run(tool.run(tool.parse(raw), ctx))


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=tmp_path)


def test_core_tools_order_names_and_budget() -> None:
    tools = core_tools()
    assert [t.name for t in tools] == [
        "Read",
        "Write",
        "Edit",
        "Glob",
        "Grep",
        "Bash",
        "AskUserQuestion",
    ]
    assert core_tools()[0] is not tools[0]
    assert [t.read_only for t in tools] == [True, False, False, True, True, False, True]
    assert [t.edits_files for t in tools] == [False, True, True, False, False, False, False]
    specs = [t.spec() for t in tools]
    size = len(json.dumps([[s.name, s.description, s.input_schema] for s in specs]))
    assert size < 15_000
    grep = specs[4].input_schema["properties"]
    assert "-i" in grep and "-n" in grep
    assert "core_tools" in covey.tools.__all__


def test_read_numbers_lines_like_cat_n(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("one\ntwo\r\nthree")
    assert call(ReadTool(), ctx, file_path="f.txt") == "     1\tone\n     2\ttwo\n     3\tthree"


def test_read_offset_and_limit(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("".join(f"line {i}\n" for i in range(1, 3001)))
    out = call(ReadTool(), ctx, file_path=str(tmp_path / "f.txt"), offset=10, limit=3)
    assert out == (
        "    10\tline 10\n    11\tline 11\n    12\tline 12\n"
        "(more lines follow; continue with offset=13)"
    )
    default = call(ReadTool(), ctx, file_path="f.txt").splitlines()
    assert default[0] == "     1\tline 1"
    assert default[1999] == "  2000\tline 2000"
    assert default[2000] == "(more lines follow; continue with offset=2001)"
    tail = call(ReadTool(), ctx, file_path="f.txt", offset=2999, limit=None)
    assert tail == "  2999\tline 2999\n  3000\tline 3000"
    assert "past the end" in call(ReadTool(), ctx, file_path="f.txt", offset=4000)
    with pytest.raises(ToolError, match="offset"):
        call(ReadTool(), ctx, file_path="f.txt", offset=0)


def test_read_cuts_long_lines_and_notes_empty_files(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "long.txt").write_text("x" * 5000 + "\n")
    assert call(ReadTool(), ctx, file_path="long.txt") == (
        "     1\t" + "x" * 2000 + " [line truncated]"
    )
    (tmp_path / "empty.txt").write_text("")
    assert "exists but is empty" in call(ReadTool(), ctx, file_path="empty.txt")


def test_read_refuses_directories_binaries_and_missing_files(
    ctx: ToolContext, tmp_path: Path
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "b.bin").write_bytes(b"\x89PNG\x00\x01")
    with pytest.raises(ToolError, match="is a directory"):
        call(ReadTool(), ctx, file_path="d")
    with pytest.raises(ToolError, match="binary"):
        call(ReadTool(), ctx, file_path="b.bin")
    with pytest.raises(ToolError, match="does not exist"):
        call(ReadTool(), ctx, file_path="nope.txt")


def test_write_creates_parents_and_overwrites(ctx: ToolContext, tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.txt"
    out = call(WriteTool(), ctx, file_path="a/b/c.txt", content="x\ny\n")
    assert out == f"Created {target} (2 lines)"
    assert target.read_text() == "x\ny\n"
    out = call(WriteTool(), ctx, file_path=str(target), content="z\r\n")
    assert out.startswith("Overwrote") and target.read_bytes() == b"z\r\n"
    with pytest.raises(ToolError, match="is a directory"):
        call(WriteTool(), ctx, file_path="a", content="")


def test_edit_replaces_a_unique_string(ctx: ToolContext, tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def f():\n    return 1\n")
    out = call(EditTool(), ctx, file_path="m.py", old_string="return 1", new_string="return 2")
    assert out == f"Edited {f}: 1 replacement"
    assert f.read_text() == "def f():\n    return 2\n"


def test_edit_requires_uniqueness_unless_replace_all(ctx: ToolContext, tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("a = 1\nb = 1\nc = 1\n")
    with pytest.raises(ToolError, match="occurs 3 times"):
        call(EditTool(), ctx, file_path="m.py", old_string="= 1", new_string="= 2")
    assert f.read_text() == "a = 1\nb = 1\nc = 1\n"
    out = call(
        EditTool(), ctx, file_path="m.py", old_string="= 1", new_string="= 2", replace_all=True
    )
    assert out.endswith(": 3 replacements")
    assert f.read_text() == "a = 2\nb = 2\nc = 2\n"


def test_edit_errors(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("x = 1\n")
    with pytest.raises(ToolError, match="are the same"):
        call(EditTool(), ctx, file_path="m.py", old_string="x", new_string="x")
    with pytest.raises(ToolError, match="was not found"):
        call(EditTool(), ctx, file_path="m.py", old_string="y = 1", new_string="y = 2")
    with pytest.raises(ToolError, match="empty"):
        call(EditTool(), ctx, file_path="m.py", old_string="", new_string="z")
    with pytest.raises(ToolError, match="does not exist"):
        call(EditTool(), ctx, file_path="new.py", old_string="a", new_string="b")


def test_edit_keeps_crlf_line_endings(ctx: ToolContext, tmp_path: Path) -> None:
    f = tmp_path / "w.txt"
    f.write_bytes(b"one\r\ntwo\r\nthree\r\n")
    call(EditTool(), ctx, file_path="w.txt", old_string="one\ntwo", new_string="1\n2")
    assert f.read_bytes() == b"1\r\n2\r\nthree\r\n"


def _touch(path: Path, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    os.utime(path, (mtime, mtime))


def test_glob_matches_newest_first_and_skips_git(ctx: ToolContext, tmp_path: Path) -> None:
    _touch(tmp_path / "old.py", 1_000)
    _touch(tmp_path / "pkg" / "new.py", 3_000)
    _touch(tmp_path / "pkg" / "deep" / "mid.py", 2_000)
    _touch(tmp_path / "pkg" / "x.ts", 4_000)
    _touch(tmp_path / ".git" / "hooks" / "h.py", 5_000)
    out = call(GlobTool(), ctx, pattern="**/*.py")
    assert out.splitlines() == [
        str(tmp_path / "pkg" / "new.py"),
        str(tmp_path / "pkg" / "deep" / "mid.py"),
        str(tmp_path / "old.py"),
    ]
    assert call(GlobTool(), ctx, pattern="*.py") == str(tmp_path / "old.py")
    assert call(GlobTool(), ctx, pattern="*.py", path="pkg") == str(tmp_path / "pkg" / "new.py")
    braces = call(GlobTool(), ctx, pattern="pkg/*.{ts,py}").splitlines()
    assert braces == [str(tmp_path / "pkg" / "x.ts"), str(tmp_path / "pkg" / "new.py")]
    assert call(GlobTool(), ctx, pattern=str(tmp_path / "pkg" / "?.ts")).endswith("x.ts")
    assert call(GlobTool(), ctx, pattern="**/*.rs") == "No files found"


def test_glob_caps_results(ctx: ToolContext, tmp_path: Path) -> None:
    for i in range(120):
        _touch(tmp_path / f"f{i:03}.txt", 1_000 + i)
    lines = call(GlobTool(), ctx, pattern="*.txt").splitlines()
    assert len(lines) == 101
    assert lines[0] == str(tmp_path / "f119.txt")
    assert lines[-1] == (
        "(showing the 100 most recently modified of 120 files; use a narrower pattern or path)"
    )


def test_glob_refuses_paths_outside(ctx: ToolContext, tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="resolves outside"):
        call(GlobTool(), ctx, pattern="*", path="..")
    with pytest.raises(ToolError, match="unclosed"):
        call(GlobTool(), ctx, pattern="*.{py")


def test_ask_user_without_a_user(ctx: ToolContext) -> None:
    with pytest.raises(ToolError) as e:
        call(AskUserQuestionTool(), ctx, question="Which DB?")
    assert str(e.value) == (
        "No user is available to answer (non-interactive run); proceed with your best "
        "judgement and state your assumptions."
    )


def test_ask_user_passes_question_and_options(tmp_path: Path) -> None:
    asked: list[tuple[str, list[str]]] = []

    async def answer(question: str, options: list[str]) -> str:
        asked.append((question, options))
        return "Postgres"

    ctx = ToolContext(workspace=tmp_path, ask_user=answer)
    out = call(AskUserQuestionTool(), ctx, question="Which DB?", options=["Postgres", "SQLite"])
    assert out == "The user answered: Postgres"
    assert asked == [("Which DB?", ["Postgres", "SQLite"])]
