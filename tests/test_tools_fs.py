"""The file tools against a hostile file system: symlink races, FIFOs and sockets, over-long
names, `~`. Each one is an error the model sees, never a hang, a traceback or a write outside."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from covey.errors import ToolError
from covey.tools import EditTool, GlobTool, GrepTool, ReadTool, Tool, ToolContext, WriteTool


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "ws" / "d").mkdir(parents=True)
    (tmp_path / "ws" / "d" / "f.txt").write_text("inside\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "f.txt").write_text("SECRET outside\n")
    return tmp_path / "ws"


def call(tool: Tool[Any], ctx: ToolContext, **raw: Any) -> str:
    return asyncio.run(tool.run(tool.parse(raw), ctx))


@pytest.fixture
def swapping(ws: Path, tmp_path: Path) -> Iterator[threading.Event]:
    """A thread that keeps swapping `ws/d` between a folder and a symlink to `outside`, as a
    Bash command running at the same time could; it stops when the test does."""
    stop = threading.Event()
    link, parked = ws / "d", ws / "d.parked"

    def place(make: Callable[[], None]) -> None:
        while True:
            try:
                return make()
            except OSError:  # Write made the missing folder meanwhile
                shutil.rmtree(link, ignore_errors=True)

    def swap() -> None:
        while not stop.is_set():
            os.rename(link, parked)
            place(lambda: os.symlink(tmp_path / "outside", link))
            os.unlink(link)
            place(lambda: os.rename(parked, link))

    thread = threading.Thread(target=swap)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join()


def _runs(tool: Tool[Any], ctx: ToolContext, times: int, **raw: Any) -> list[str]:
    async def many() -> list[str]:
        outputs = []
        for i in range(times):
            try:
                args = {k: v.format(i=i) for k, v in raw.items()}
                outputs.append(await tool.run(tool.parse(args), ctx))
            except ToolError as e:
                outputs.append(f"error: {e}")
        return outputs

    return asyncio.run(many())


def test_write_never_lands_outside_while_a_folder_is_swapped_for_a_symlink(
    ws: Path, tmp_path: Path, swapping: threading.Event
) -> None:
    ctx = ToolContext(workspace=ws)
    outputs = _runs(WriteTool(), ctx, 400, file_path="d/new{i}.txt", content="pwned\n")
    outputs += _runs(WriteTool(), ctx, 400, file_path="d/f.txt", content="pwned\n")
    swapping.set()
    assert sorted(os.listdir(tmp_path / "outside")) == ["f.txt"]
    assert (tmp_path / "outside" / "f.txt").read_text() == "SECRET outside\n"
    assert any(o.startswith("Created") for o in outputs)  # the race did not stop all work


def test_read_and_edit_never_touch_outside_while_a_folder_is_swapped(
    ws: Path, tmp_path: Path, swapping: threading.Event
) -> None:
    ctx = ToolContext(workspace=ws)
    reads = _runs(ReadTool(), ctx, 400, file_path="d/f.txt")
    edits = _runs(EditTool(), ctx, 400, file_path="d/f.txt", old_string="SECRET", new_string="x")
    swapping.set()
    assert not any("SECRET" in out for out in reads)
    assert (tmp_path / "outside" / "f.txt").read_text() == "SECRET outside\n"
    assert all(o.startswith("error:") for o in edits)  # inside, the file has no SECRET


def test_a_symlink_in_the_checked_path_is_not_followed(ws: Path, tmp_path: Path) -> None:
    """What the race above does, made deterministic: the path was checked while `d` was a
    folder; by the time the file is opened `d` is a symlink."""
    from covey.tools._fs import create_or_truncate, open_regular

    ctx = ToolContext(workspace=ws)
    real = ws.resolve() / "d" / "f.txt"
    os.rename(ws / "d", ws / "d.parked")
    os.symlink(tmp_path / "outside", ws / "d")
    with pytest.raises(ToolError, match="became a symbolic link"):
        create_or_truncate(ctx, real, "d/f.txt")
    with pytest.raises(ToolError, match="became a symbolic link"):
        open_regular(ctx, real, "d/f.txt")
    with pytest.raises(ToolError, match="became a symbolic link"):
        create_or_truncate(ctx, ws.resolve() / "d" / "new" / "x.txt", "d/new/x.txt")
    os.unlink(ws / "d")
    os.symlink(tmp_path / "outside" / "f.txt", ws / "d")  # the file itself became a link
    with pytest.raises(ToolError, match="became a symbolic link"):
        open_regular(ctx, ws.resolve() / "d", "d", write=True)
    assert sorted(os.listdir(tmp_path / "outside")) == ["f.txt"]
    assert (tmp_path / "outside" / "f.txt").read_text() == "SECRET outside\n"


def test_write_still_follows_symlinks_that_stay_inside(ws: Path) -> None:
    (ws / "alias").symlink_to(ws / "d")
    ctx = ToolContext(workspace=ws)
    assert call(WriteTool(), ctx, file_path="alias/g.txt", content="x\n").startswith("Created")
    assert (ws / "d" / "g.txt").read_text() == "x\n"
    assert call(WriteTool(), ctx, file_path="a/b/c.txt", content="y").startswith("Created")
    assert call(WriteTool(), ctx, file_path="a/b/c.txt", content="z").startswith("Overwrote")
    assert (ws / "a" / "b" / "c.txt").read_text() == "z"


# --- FIFOs, sockets ----------------------------------------------------------------------


@pytest.fixture
def odd_files(ws: Path) -> Iterator[dict[str, str]]:
    os.mkfifo(ws / "fifo")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(ws / "sock"))
    try:
        yield {"fifo": "a FIFO", "sock": "a socket"}
    finally:
        server.close()


@pytest.mark.timeout(20)
def test_fifos_and_sockets_are_refused_not_waited_on(ws: Path, odd_files: dict[str, str]) -> None:
    ctx = ToolContext(workspace=ws)
    for name, kind in odd_files.items():
        with pytest.raises(ToolError, match=f"not a regular file \\({kind}\\)"):
            call(ReadTool(), ctx, file_path=name)
        with pytest.raises(ToolError, match="not a regular file"):
            call(EditTool(), ctx, file_path=name, old_string="a", new_string="b")
        with pytest.raises(ToolError, match="not a regular file"):
            call(GrepTool(use_ripgrep=False), ctx, pattern="x", path=name)
    with pytest.raises(ToolError, match="not a regular file"):
        call(WriteTool(), ctx, file_path="fifo", content="x")  # no reader: refused, not blocked
    assert call(GrepTool(use_ripgrep=False), ctx, pattern="inside") == (
        f"Found 1 file\n{ws.resolve() / 'd' / 'f.txt'}"
    )


@pytest.mark.timeout(20)
def test_a_device_is_refused(ws: Path) -> None:
    ctx = ToolContext(workspace=ws)
    os.symlink("/dev/zero", ws / "zero")  # resolves outside: refused before any open
    with pytest.raises(ToolError, match="resolves outside"):
        call(ReadTool(), ctx, file_path="zero")
    try:  # a device node inside the workspace needs root (CI runs as root)
        os.mknod(ws / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        return
    with pytest.raises(ToolError, match="not a regular file \\(a device\\)"):
        call(ReadTool(), ctx, file_path="null")
    with pytest.raises(ToolError, match="not a regular file \\(a device\\)"):
        call(WriteTool(), ctx, file_path="null", content="x")


# --- names -------------------------------------------------------------------------------

LONG = "x" * 256


@pytest.mark.parametrize(
    ("tool", "raw"),
    [
        (ReadTool(), {"file_path": f"d/{LONG}"}),
        (WriteTool(), {"file_path": f"{LONG}/a.txt", "content": "x"}),
        (EditTool(), {"file_path": f"d/{LONG}", "old_string": "a", "new_string": "b"}),
        (GlobTool(), {"pattern": "*", "path": LONG}),
        (GrepTool(use_ripgrep=False), {"pattern": "x", "path": f"d/{LONG}"}),
        (ReadTool(), {"file_path": "é" * 128}),  # 256 bytes in UTF-8
    ],
)
def test_a_name_over_255_bytes_is_a_tool_error(
    ws: Path, tool: Tool[Any], raw: dict[str, Any]
) -> None:
    ctx = ToolContext(workspace=ws)
    with pytest.raises(ToolError, match="256 bytes long; file names are limited to 255"):
        tool.validate(tool.parse(raw), ctx)
    with pytest.raises(ToolError, match="limited to 255 bytes"):
        call(tool, ctx, **raw)


def test_tilde_is_the_home_directory_for_the_tools_too(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`~/../.env` once named `<workspace>/.env` for the tools (a folder called `~`) and
    `$HOME/../.env` for the permission checker."""
    monkeypatch.setenv("HOME", str(ws / "home"))
    (ws / "home").mkdir()
    (ws / ".env").write_text("KEY=1\n")
    ctx = ToolContext(workspace=ws)
    assert "KEY=1" in call(ReadTool(), ctx, file_path="~/../.env")
    monkeypatch.setenv("HOME", str(tmp_path / "elsewhere"))
    with pytest.raises(ToolError, match="resolves outside"):
        call(ReadTool(), ctx, file_path="~/../.env")
    with pytest.raises(ToolError, match="resolves outside"):
        call(WriteTool(), ctx, file_path="~/../x", content="x")
    assert not (ws / "x").exists() and not (tmp_path / "x").exists()
