"""Bash: real shells, timeouts that take the whole group, capped output, the bwrap sandbox."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from covey.errors import ToolError
from covey.proc import group_alive
from covey.tools import BashTool, ToolContext
from covey.tools.base import SandboxOptions


def bash(ctx: ToolContext, **raw: Any) -> str:
    tool = BashTool()
    return asyncio.run(tool.run(tool.parse(raw), ctx))


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return stat.rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")


def _bwrap_works() -> bool:
    if shutil.which("bwrap") is None:
        return False
    probe = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


needs_bwrap = pytest.mark.skipif(not _bwrap_works(), reason="bubblewrap missing or not allowed")


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=tmp_path)


def test_runs_in_the_workspace_with_merged_output(ctx: ToolContext, tmp_path: Path) -> None:
    out = bash(ctx, command="pwd; echo to-stderr >&2; echo done", description="show cwd")
    assert out == f"{tmp_path}\nto-stderr\ndone"
    assert bash(ctx, command="true") == "(no output)"


def test_non_zero_exit_is_reported(ctx: ToolContext) -> None:
    assert bash(ctx, command="echo partial; exit 7") == "partial\nExit code 7"
    assert bash(ctx, command="exit 1") == "Exit code 1"


def test_timeout_in_milliseconds_kills_the_process_group(ctx: ToolContext) -> None:
    out = bash(ctx, command="sleep 1000 & echo $!; wait", timeout=1000)
    child_line, note = out.splitlines()
    assert note == "Command timed out: killed after 1 s"
    assert not alive(int(child_line))
    assert not group_alive(int(child_line))


def test_timeout_above_the_maximum_is_an_error(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="timeout: Input should be less than or equal to 600000"):
        BashTool().parse({"command": "true", "timeout": 600_001})
    assert BashTool().parse({"command": "true", "timeout": None}).timeout is None


def test_output_is_capped_with_head_and_tail(ctx: ToolContext) -> None:
    script = "print('FIRST'); print('x' * 200_000); print('LAST')"
    out = bash(ctx, command=f'{sys.executable} -c "{script}"')
    assert out.startswith("FIRST\n") and out.endswith("LAST")
    assert "bytes elided] ..." in out
    assert len(out) < 30_100


@needs_bwrap
def test_sandbox_root_is_read_only_and_the_workspace_writable(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    ctx = ToolContext(workspace=ws, sandbox=SandboxOptions(enabled=True))
    with tempfile.TemporaryDirectory(dir="/var/tmp") as outside:
        out = bash(ctx, command=f"touch {outside}/pwned")
        assert "Read-only file system" in out and out.endswith("Exit code 1")
        assert not (Path(outside) / "pwned").exists()
    assert bash(ctx, command="echo hi > made.txt && cat made.txt") == "hi"
    assert (ws / "made.txt").read_text() == "hi\n"
    # /tmp is private: a file written there is gone afterwards, the real /tmp untouched.
    assert bash(ctx, command="echo t > /tmp/covey-sandbox-probe && cat /tmp/covey-*") == "t"
    assert not Path("/tmp/covey-sandbox-probe").exists()
    # The rest of the real /tmp (here: a sibling of the workspace) is not visible.
    (tmp_path / "sibling.txt").write_text("s")
    assert bash(ctx, command="ls ..") == "ws"
    assert "No such file" in bash(ctx, command=f"cat {tmp_path}/sibling.txt")


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


@needs_bwrap
@pytest.mark.parametrize("network", [True, False])
def test_sandbox_network_switch(tmp_path: Path, listener: int, network: bool) -> None:
    ctx = ToolContext(workspace=tmp_path, sandbox=SandboxOptions(enabled=True, network=network))
    # bash's own /dev/tcp: no interpreter from outside the sandbox is needed (the checkout,
    # and so sys.executable, may live under the /tmp that the sandbox replaces).
    out = bash(ctx, command=f"exec 3<>/dev/tcp/127.0.0.1/{listener} && echo ok")
    if network:
        assert out == "ok"
    else:
        assert "ok" not in out and "Exit code 1" in out


def test_sandbox_without_bubblewrap_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    ctx = ToolContext(workspace=tmp_path, sandbox=SandboxOptions(enabled=True))
    with pytest.raises(ToolError) as e:
        bash(ctx, command="true")
    assert str(e.value) == (
        "sandbox.enabled is true but bubblewrap (bwrap) is not installed: "
        "apt-get install bubblewrap, or set sandbox.enabled to false"
    )
