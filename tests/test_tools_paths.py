"""Paths a tool may touch: inside the workspace (or an added dir), symlinks resolved."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from covey.errors import ToolError
from covey.tools import EditTool, ReadTool, Tool, ToolContext, WriteTool
from covey.tools.paths import resolve_in_workspace


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace next to an `outside` directory holding a secret."""
    (tmp_path / "ws" / "src").mkdir(parents=True)
    (tmp_path / "ws" / "src" / "a.py").write_text("inside\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("secret\n")
    return tmp_path / "ws"


def call(tool: Tool[Any], ctx: ToolContext, **raw: Any) -> str:
    return asyncio.run(tool.run(tool.parse(raw), ctx))


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_relative_and_absolute_paths_inside_resolve(ws: Path) -> None:
    ctx = ToolContext(workspace=ws)
    real = (ws / "src" / "a.py").resolve()
    assert resolve_in_workspace(ctx, "src/a.py", must_exist=True) == real
    assert resolve_in_workspace(ctx, str(ws / "src" / "a.py"), must_exist=True) == real
    assert resolve_in_workspace(ctx, "src/../src/a.py", must_exist=True) == real
    assert resolve_in_workspace(ctx, ".", must_exist=True) == ws.resolve()
    new = resolve_in_workspace(ctx, "new/deep/file.txt", must_exist=False)
    assert new == ws.resolve() / "new" / "deep" / "file.txt"


def test_dotdot_is_refused_with_a_clear_message(ws: Path) -> None:
    ctx = ToolContext(workspace=ws)
    with pytest.raises(ToolError) as e:
        resolve_in_workspace(ctx, "../x", must_exist=False)
    assert str(e.value) == (
        f"path ../x resolves outside the workspace {ws.resolve()}; only files under it can be used"
    )


def test_absolute_outside_is_refused(ws: Path, tmp_path: Path) -> None:
    ctx = ToolContext(workspace=ws)
    for path in (str(tmp_path / "outside" / "secret.txt"), "/etc/passwd", str(tmp_path)):
        with pytest.raises(ToolError, match="resolves outside the workspace"):
            resolve_in_workspace(ctx, path, must_exist=False)


def test_a_sibling_with_a_common_prefix_is_outside(ws: Path, tmp_path: Path) -> None:
    (tmp_path / "ws2").mkdir()
    with pytest.raises(ToolError, match="outside"):
        resolve_in_workspace(ToolContext(workspace=ws), "../ws2/f", must_exist=False)


def test_symlinks_pointing_outside_are_refused(ws: Path, tmp_path: Path) -> None:
    (ws / "file-link").symlink_to(tmp_path / "outside" / "secret.txt")
    (ws / "dir-link").symlink_to(tmp_path / "outside")
    (ws / "dangling").symlink_to(tmp_path / "outside" / "new.txt")
    ctx = ToolContext(workspace=ws)
    for path in ("file-link", "dir-link/secret.txt", "dir-link/new.txt", "dangling"):
        with pytest.raises(ToolError, match="resolves outside"):
            resolve_in_workspace(ctx, path, must_exist=False)


def test_symlinks_inside_and_a_symlinked_workspace_are_fine(ws: Path, tmp_path: Path) -> None:
    (ws / "link.py").symlink_to(ws / "src" / "a.py")
    (tmp_path / "ws-link").symlink_to(ws)
    ctx = ToolContext(workspace=tmp_path / "ws-link")
    assert resolve_in_workspace(ctx, "link.py", must_exist=True) == (ws / "src/a.py").resolve()
    assert resolve_in_workspace(ctx, str(ws / "src" / "a.py"), must_exist=True).exists()


def test_extra_dirs_are_allowed(ws: Path, tmp_path: Path) -> None:
    ctx = ToolContext(workspace=ws, extra_dirs=[tmp_path / "outside"])
    secret = str(tmp_path / "outside" / "secret.txt")
    assert resolve_in_workspace(ctx, secret, must_exist=True).read_text() == "secret\n"
    with pytest.raises(ToolError, match="or the added dirs"):
        resolve_in_workspace(ctx, "/etc/passwd", must_exist=True)


def test_must_exist(ws: Path) -> None:
    with pytest.raises(ToolError, match=r"missing\.txt does not exist"):
        resolve_in_workspace(ToolContext(workspace=ws), "missing.txt", must_exist=True)
    with pytest.raises(ToolError, match="invalid path"):
        resolve_in_workspace(ToolContext(workspace=ws), "", must_exist=False)


def test_file_tools_refuse_every_escape_and_change_nothing_outside(
    ws: Path, tmp_path: Path
) -> None:
    (ws / "file-link").symlink_to(tmp_path / "outside" / "secret.txt")
    (ws / "dir-link").symlink_to(tmp_path / "outside")
    (ws / "dangling").symlink_to(tmp_path / "outside" / "created.txt")
    ctx = ToolContext(workspace=ws)
    before = snapshot(tmp_path / "outside")
    escapes = [
        "../outside/secret.txt",
        "../outside/new.txt",
        "../outside/newdir/new.txt",
        str(tmp_path / "outside" / "secret.txt"),
        "file-link",
        "dir-link/secret.txt",
        "dir-link/new.txt",
        "dangling",
    ]
    for path in escapes:
        with pytest.raises(ToolError, match="resolves outside"):
            call(WriteTool(), ctx, file_path=path, content="pwned\n")
        with pytest.raises(ToolError, match="resolves outside"):
            call(EditTool(), ctx, file_path=path, old_string="secret", new_string="pwned")
        with pytest.raises(ToolError, match="resolves outside"):
            call(ReadTool(), ctx, file_path=path)
    assert snapshot(tmp_path / "outside") == before
    assert sorted(os.listdir(tmp_path / "outside")) == ["secret.txt"]
