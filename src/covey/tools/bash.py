"""Bash: run a shell command in the workspace, optionally inside a bubblewrap sandbox."""

from __future__ import annotations

import os
import shutil
import uuid

from pydantic import Field

from covey.errors import ToolError
from covey.proc import run_process
from covey.tools._common import optional
from covey.tools.base import Tool, ToolContext, ToolInput
from covey.tools.paths import allowed_roots

__all__ = ["BashInput", "BashTool", "sandbox_argv"]

DEFAULT_TIMEOUT_MS = 120_000
MAX_TIMEOUT_MS = 600_000
MAX_OUTPUT = 30_000
"""Output beyond this (in bytes, so at most as many characters) keeps its head and tail."""

BWRAP_MISSING = (
    "sandbox.enabled is true but bubblewrap (bwrap) is not installed: "
    "apt-get install bubblewrap, or set sandbox.enabled to false"
)


class BashInput(ToolInput):
    command: str = Field(description="The command, run by bash -c")
    timeout: int | None = optional(
        f"Timeout in milliseconds (default {DEFAULT_TIMEOUT_MS}, max {MAX_TIMEOUT_MS})",
        ge=1,
        le=MAX_TIMEOUT_MS,
    )
    description: str | None = optional("What the command does, in 5-10 words")


class BashTool(Tool[BashInput]):
    name = "Bash"
    description = (
        "Run a bash command in the workspace directory and return its combined stdout and "
        "stderr. Each call starts a fresh shell: cd and variables do not persist. The whole "
        "process group is killed on timeout; long output keeps its head and tail. Use Read, "
        "Edit, Write, Glob and Grep for files instead of cat, sed, find and grep."
    )
    input_model = BashInput

    async def run(self, args: BashInput, ctx: ToolContext) -> str:
        timeout_s = (args.timeout or DEFAULT_TIMEOUT_MS) / 1000
        argv = ["bash", "-c", args.command]
        if ctx.sandbox.enabled:
            argv = sandbox_argv(ctx, argv)
        tag = uuid.uuid4().hex  # marks this run's processes, for a host taking over
        runs = ctx.tool_runs
        try:
            result = await run_process(
                argv,
                cwd=ctx.workspace,
                timeout_s=timeout_s,
                env={"COVEY_TOOL_RUN": tag},
                output_limit=MAX_OUTPUT,
                merge_stderr=True,
                die_with_parent=True,
                on_start=(lambda pgid: runs.started(pgid, tag)) if runs else None,
            )
        finally:
            if runs is not None:
                runs.ended(0, tag)
        out = result.stdout.rstrip("\n")
        if result.timed_out:
            note = f"Command timed out: killed after {timeout_s:g} s"
            return f"{out}\n{note}" if out else note
        if result.exit_code != 0:
            note = f"Exit code {result.exit_code}"
            return f"{out}\n{note}" if out else note
        return out or "(no output)"


def sandbox_argv(ctx: ToolContext, argv: list[str]) -> list[str]:
    """`argv` wrapped in bubblewrap: the root read-only, the workspace (and added dirs) and a
    private /tmp writable, no network when `ctx.sandbox.network` is False."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise ToolError(BWRAP_MISSING)
    wrapped = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    wrapped += ["--tmpfs", "/tmp"]
    for root in allowed_roots(ctx):  # after /tmp, so a workspace under /tmp stays visible
        wrapped += ["--bind", str(root), str(root)]
    wrapped += ["--die-with-parent"]
    if not ctx.sandbox.network:
        wrapped.append("--unshare-net")
    wrapped += ["--chdir", os.path.realpath(ctx.workspace), "--", *argv]
    return wrapped
