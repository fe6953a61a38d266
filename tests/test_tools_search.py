"""Grep: ripgrep and the pure-Python engine give the same results on a tricky tree."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from covey.errors import ToolError
from covey.tools import GrepTool, ToolContext
from covey.tools._walk import glob_regex

HAS_RG = shutil.which("rg") is not None


def grep(ctx: ToolContext, engine: str, **raw: Any) -> str:
    tool = GrepTool(use_ripgrep=engine == "rg")
    return asyncio.run(tool.run(tool.parse(raw), ctx))


def engines() -> list[Any]:
    return [
        pytest.param("rg", marks=pytest.mark.skipif(not HAS_RG, reason="rg not on PATH")),
        "python",
    ]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    files = {
        "src/app.py": "import os\ndef main():\n    return TODO_fix\n",
        "src/util.py": "# todo: tidy\nx = 1\n",
        "src/web/page.ts": "// TODO make it fast\nexport const a = 1\n",
        "docs/guide.md": "TODO write the guide\r\nmore\r\n",
        ".github/ci.yml": "run: TODO\n",
        "build/out.py": "TODO generated\n",
        "logs/keep.log": "TODO keep this one\n",
        "logs/drop.log": "TODO drop this one\n",
        "nested/.gitignore": "secret.txt\n",
        "nested/secret.txt": "TODO hidden by nested ignore\n",
        "nested/open.txt": "TODO visible\n" + "y" * 900 + " TODO\n",
        ".gitignore": "build/\n*.log\n!keep.log\n",
        ".git/config": "TODO inside git\n",
    }
    for rel, text in files.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_bytes(text.encode())
    (ws / "bin.dat").write_bytes(b"TODO\x00binary")
    (ws / "link.py").symlink_to(ws / "src" / "app.py")
    (tmp_path / "outside.txt").write_text("TODO outside\n")
    (ws / "escape.txt").symlink_to(tmp_path / "outside.txt")
    for i, path in enumerate(sorted(p for p in ws.rglob("*") if p.is_file())):
        os.utime(path, (1_000_000 + i, 1_000_000 + i), follow_symlinks=False)
    return ws


CASES: list[dict[str, Any]] = [
    {"pattern": "TODO"},
    {"pattern": "TODO", "output_mode": "content"},
    {"pattern": "TODO", "output_mode": "content", "-n": False},
    {"pattern": "todo", "-i": True, "output_mode": "count"},
    {"pattern": "TODO", "glob": "*.py", "output_mode": "content"},
    {"pattern": "TODO", "glob": "src/**/*.{ts,py}"},
    {"pattern": "TODO", "glob": "!*.md", "output_mode": "count"},
    {"pattern": "TODO", "path": "src", "output_mode": "content"},
    {"pattern": "TODO", "path": "docs/guide.md", "output_mode": "content"},
    {"pattern": r"^\s+return \w+$", "output_mode": "content"},
    {"pattern": "TODO", "output_mode": "content", "head_limit": 2},
    {"pattern": "TODO", "head_limit": 1},
    {"pattern": "no such text anywhere"},
    {"pattern": "no such text anywhere", "output_mode": "content"},
]


@pytest.mark.skipif(not HAS_RG, reason="rg not on PATH")
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_ripgrep_and_python_agree(tree: Path, case: dict[str, Any]) -> None:
    ctx = ToolContext(workspace=tree)
    assert grep(ctx, "rg", **case) == grep(ctx, "python", **case)


@pytest.mark.parametrize("engine", engines())
def test_files_with_matches(tree: Path, engine: str) -> None:
    out = grep(ToolContext(workspace=tree), engine, pattern="TODO").splitlines()
    expected = [
        "src/web/page.ts",
        "src/app.py",
        "nested/open.txt",
        "logs/keep.log",
        "docs/guide.md",
        ".github/ci.yml",
    ]
    assert out == ["Found 6 files", *(str(tree / p) for p in expected)]


@pytest.mark.parametrize("engine", engines())
def test_content_and_count(tree: Path, engine: str) -> None:
    ctx = ToolContext(workspace=tree)
    out = grep(ctx, engine, pattern="TODO", path="src", output_mode="content")
    assert out == (
        f"{tree}/src/app.py:3:    return TODO_fix\n{tree}/src/web/page.ts:1:// TODO make it fast"
    )
    plain = grep(ctx, engine, pattern="TODO", path="docs", output_mode="content", **{"-n": False})
    assert plain == f"{tree}/docs/guide.md:TODO write the guide"
    count = grep(ctx, engine, pattern="todo", path="src", output_mode="count", **{"-i": True})
    assert count == (
        f"Found 3 matching lines in 3 files\n{tree}/src/app.py:1\n"
        f"{tree}/src/util.py:1\n{tree}/src/web/page.ts:1"
    )
    long = grep(ctx, engine, pattern="y{900}", path="nested", output_mode="content")
    assert long == f"{tree}/nested/open.txt:2:" + "y" * 500 + " [...]"


@pytest.mark.parametrize("engine", engines())
def test_errors_and_escapes(tree: Path, engine: str) -> None:
    ctx = ToolContext(workspace=tree)
    with pytest.raises(ToolError):
        grep(ctx, engine, pattern="(unclosed")
    with pytest.raises(ToolError, match="resolves outside"):
        grep(ctx, engine, pattern="TODO", path="..")
    with pytest.raises(ToolError, match="resolves outside"):
        grep(ctx, engine, pattern="TODO", path="escape.txt")
    assert "outside" not in grep(ctx, engine, pattern="TODO outside")
    with pytest.raises(ToolError, match="binary"):
        grep(ctx, engine, pattern="TODO", path="bin.dat")


@pytest.mark.parametrize("engine", engines())
def test_output_is_capped(tmp_path: Path, engine: str) -> None:
    (tmp_path / "big.txt").write_text("match " + "z" * 100 + "\n" * 1 + ("match\n" * 2000))
    out = grep(ToolContext(workspace=tmp_path), engine, pattern="match", output_mode="content")
    assert len(out) < 31_000
    assert out.endswith("more rows; narrow the search or use head_limit)")


def test_use_ripgrep_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GrepTool(use_ripgrep=False).rg is None
    monkeypatch.setenv("PATH", "/nonexistent")
    assert GrepTool().rg is None
    with pytest.raises(ValueError, match="rg"):
        GrepTool(use_ripgrep=True)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.py", "a.py", True),
        ("*.py", "d/a.py", False),
        ("**/*.py", "a.py", True),
        ("**/*.py", "d/e/a.py", True),
        ("src/**", "src/a/b", True),
        ("a?.[ch]", "ab.c", True),
        ("a?.[!ch]", "ab.c", False),
        ("*.{js,ts}", "x.ts", True),
        ("*.{js,ts}", "x.py", False),
        ("a+b(1).txt", "a+b(1).txt", True),
    ],
)
def test_glob_regex(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_regex(pattern).fullmatch(path)) is matches
