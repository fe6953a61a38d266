"""Bash: run a shell command in the workspace, optionally inside a bubblewrap sandbox."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from pydantic import Field

from covey.errors import ToolError
from covey.git.guarded import GitGuard, guard_repositories
from covey.proc import run_process, without_credentials
from covey.tools._common import optional
from covey.tools.base import Tool, ToolContext, ToolInput
from covey.tools.paths import allowed_roots

__all__ = ["BashInput", "BashTool", "command_env", "sandbox_argv"]

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
        guard = GitGuard()
        if ctx.sandbox.enabled:
            guard = guard_repositories(allowed_roots(ctx))
            argv = sandbox_argv(ctx, argv, guard)
        tag = uuid.uuid4().hex  # marks this run's processes, for a host taking over
        runs = ctx.tool_runs
        try:
            result = await run_process(
                argv,
                cwd=ctx.workspace,
                timeout_s=timeout_s,
                env={**command_env(ctx), "COVEY_TOOL_RUN": tag},
                output_limit=MAX_OUTPUT,
                merge_stderr=True,
                die_with_parent=True,
                on_start=(lambda pgid: runs.started(pgid, tag)) if runs else None,
            )
        finally:
            removed = _remove_appeared(guard)  # also when the call is cancelled
            if runs is not None:
                runs.ended(0, tag)
        out = result.stdout.rstrip("\n")
        if removed:
            note = f"(covey removed {', '.join(removed)}: it would redirect git's configuration)"
            out = f"{out}\n{note}" if out else note
        if result.timed_out:
            note = f"Command timed out: killed after {timeout_s:g} s"
            return f"{out}\n{note}" if out else note
        if result.exit_code != 0:
            note = f"Exit code {result.exit_code}"
            return f"{out}\n{note}" if out else note
        return out or "(no output)"


def command_env(ctx: ToolContext) -> dict[str, None]:
    """What is removed from the inherited environment for a command: covey's provider
    credentials, unless the settings pass them (`tools.passCredentials`)."""
    if ctx.sandbox.pass_credentials:
        return {}
    return without_credentials(ctx.sandbox.credential_names)


def sandbox_argv(ctx: ToolContext, argv: list[str], guard: GitGuard | None = None) -> list[str]:
    """`argv` wrapped in bubblewrap: the root read-only, the workspace (and added dirs) and a
    private /tmp writable, no network when `ctx.sandbox.network` is False; in the writable
    directories, what `guard` names of their repositories read-only (`covey.git.guarded`)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise ToolError(BWRAP_MISSING)
    wrapped = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    wrapped += ["--tmpfs", "/tmp"]
    owned = ctx.file_owners.writable() if ctx.file_owners is not None else None
    workspace = Path(os.path.realpath(ctx.workspace))
    for root in allowed_roots(ctx):  # after /tmp, so a workspace under /tmp stays visible
        if owned is not None and root == workspace:  # a team member: its own dirs only
            wrapped += ["--ro-bind", str(root), str(root)]
            for path in owned:
                wrapped += ["--bind", str(path), str(path)]
        else:
            wrapped += ["--bind", str(root), str(root)]
    guard = guard or GitGuard()
    for pinned in guard.pinned:  # before the read-only binds inside them
        wrapped += ["--bind", str(pinned), str(pinned)]
    for path in guard.read_only:
        wrapped += ["--ro-bind", str(path), str(path)]
    wrapped += ["--die-with-parent"]
    if not ctx.sandbox.network:
        wrapped.append("--unshare-net")
    wrapped += ["--chdir", os.path.realpath(ctx.workspace), "--", *argv]
    return wrapped


def _remove_appeared(guard: GitGuard) -> list[str]:
    """Delete what a sandboxed command made where nothing may appear; the paths removed."""
    removed = []
    for path in guard.must_not_appear:
        if os.path.lexists(path):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(str(path))
    return removed
