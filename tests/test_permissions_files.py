"""Path rules as the tools apply them, through the real tool runner: one reading of `~`, a Read
deny that also hides files from Glob and Grep, protected folders that always ask."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from covey.agent.hooks import NoHooks
from covey.agent.tool_runner import ToolRunner
from covey.errors import ToolError
from covey.messages import ToolResultBlock, ToolUseBlock
from covey.tools import GlobTool, GrepTool, ReadTool, ToolContext, WriteTool, core_tools
from covey.tools.permissions import PermissionPolicy

HAS_RG = shutil.which("rg") is not None


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / ".env").write_text("API_KEY=sk-secret\n")
    (root / "src" / ".env").write_text("NESTED_KEY=sk-nested\n")
    (root / "src" / "app.py").write_text("KEY = read('API_KEY')\n")
    (root / "protected").mkdir()
    return root.resolve()


def run(
    ws: Path,
    name: str,
    mode: str = "default",
    *,
    deny: list[str] = (),
    allow: list[str] = (),
    **inp: Any,
) -> ToolResultBlock:
    policy = PermissionPolicy(mode, list(allow), [], list(deny), ws, ws)
    tools = {t.name: t for t in core_tools()}
    runner = ToolRunner(tools, ToolContext(workspace=ws), policy, NoHooks(), lambda e: None)
    return asyncio.run(runner.run_one(ToolUseBlock(id="t1", name=name, input=inp)))


@pytest.mark.parametrize(
    "engine", [pytest.param("rg", marks=pytest.mark.skipif(not HAS_RG, reason="no rg")), "python"]
)
def test_a_read_deny_hides_files_from_grep(
    ws: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine == "python":
        monkeypatch.setenv("PATH", "/nonexistent")
    for mode in ("content", "files_with_matches", "count"):
        out = run(ws, "Grep", deny=["Read(.env)"], pattern="KEY", output_mode=mode)
        assert not out.is_error
        assert "sk-secret" not in out.content and "sk-nested" not in out.content
        assert ".env" not in out.content
        assert "app.py" in out.content
    both = run(ws, "Grep", deny=["Read(/.env)"], pattern="KEY", output_mode="content").content
    assert "sk-nested" in both and "sk-secret" not in both  # `/.env`: only the root one


def test_a_read_deny_hides_files_from_glob(ws: Path) -> None:
    out = run(ws, "Glob", deny=["Read(.env)"], pattern="**/.env*").content
    assert out == "No files found"
    listed = run(ws, "Glob", deny=["Read(src/**)"], pattern="**/*").content.splitlines()
    assert listed == [str(ws / ".env")]


def test_a_read_deny_cannot_be_dodged_with_tilde(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(ws / "src"))
    out = run(ws, "Read", deny=["Read(.env)"], file_path="~/../.env")
    assert out.is_error and "denied by permission rule Read(.env)" in out.content
    monkeypatch.setenv("HOME", "/nonexistent/home")
    out = run(ws, "Read", deny=["Read(.env)"], file_path="~/../.env")
    assert out.is_error and "sk-secret" not in out.content
    out = run(
        ws,
        "Write",
        "bypassPermissions",
        deny=["Edit(protected/**)"],
        file_path="~/../protected/x",
        content="x",
    )
    assert out.is_error and not (ws / "protected" / "x").exists()


def test_tools_check_deny_rules_on_the_path_they_open(ws: Path) -> None:
    """A symlink that changed between the permission check and the open cannot carry a Read
    or a Write into a denied file: the tool checks the path it resolved itself."""
    policy = PermissionPolicy("default", [], [], ["Read(.env)", "Edit(protected/**)"], ws, ws)
    ctx = ToolContext(workspace=ws, rules=policy)
    (ws / "innocent").symlink_to(ws / ".env")
    with pytest.raises(ToolError, match="denied by permission rule Read"):
        asyncio.run(ReadTool().run(ReadTool().parse({"file_path": "innocent"}), ctx))
    (ws / "out").symlink_to(ws / "protected")
    write = WriteTool()
    with pytest.raises(ToolError, match="denied by permission rule Edit"):
        asyncio.run(write.run(write.parse({"file_path": "out/x", "content": "x"}), ctx))
    grep, glob = GrepTool(use_ripgrep=False), GlobTool()
    with pytest.raises(ToolError, match="denied by permission rule Read"):
        asyncio.run(grep.run(grep.parse({"pattern": "K", "path": "innocent"}), ctx))
    assert asyncio.run(glob.run(glob.parse({"pattern": ".env"}), ctx)) == "No files found"


@pytest.mark.parametrize(
    "target", [".claude/agents/helper.md", ".covey/settings.json", ".git/config"]
)
def test_writes_into_protected_folders_ask_in_every_mode_but_bypass(ws: Path, target: str) -> None:
    for mode, allow in (("acceptEdits", []), ("default", ["Edit"]), ("default", ["Write"])):
        out = run(ws, "Write", mode, allow=allow, file_path=target, content="x")
        assert out.is_error and "asks in every mode but bypassPermissions" in out.content
    out = run(ws, "Write", "dontAsk", allow=["Edit"], file_path=target, content="x")
    assert out.is_error and "dontAsk" in out.content
    assert not (ws / target).exists()
    folder = target.split("/")[0]
    out = run(ws, "Write", "default", allow=[f"Edit({folder}/**)"], file_path=target, content="x")
    assert not out.is_error
    out = run(ws, "Write", "bypassPermissions", file_path=target, content="y")
    assert not out.is_error and (ws / target).read_text() == "y"
