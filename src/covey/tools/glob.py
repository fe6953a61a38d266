"""Glob: files whose path matches a pattern, newest first."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import Field

from covey.errors import ToolError
from covey.tools._common import optional
from covey.tools._walk import glob_regex, walk_files
from covey.tools.base import PathRules, Tool, ToolContext, ToolInput
from covey.tools.paths import resolve_in_workspace

__all__ = ["GlobInput", "GlobTool"]

MAX_RESULTS = 100


class GlobInput(ToolInput):
    pattern: str = Field(description='Glob such as "**/*.py" or "src/**/*.{ts,tsx}"')
    path: str | None = optional("Directory to search in (default: the workspace)")


class GlobTool(Tool[GlobInput]):
    name = "Glob"
    description = (
        "Find files by path pattern, matched relative to path. `*` stays within one directory, "
        f"`**/` spans any depth. Returns absolute paths, newest first, at most {MAX_RESULTS}."
    )
    input_model = GlobInput
    read_only = True

    def validate(self, args: GlobInput, ctx: ToolContext) -> None:
        resolve_in_workspace(ctx, args.path or ".", must_exist=False)

    async def run(self, args: GlobInput, ctx: ToolContext) -> str:
        root = resolve_in_workspace(ctx, args.path or ".", must_exist=True)
        if not root.is_dir():
            raise ToolError(f"{args.path} is not a directory")
        pattern = _relative_pattern(args.pattern, args.path or str(ctx.workspace), root)
        return await asyncio.to_thread(_glob, root, pattern, ctx.rules)


def _relative_pattern(pattern: str, given_root: str, root: Path) -> str:
    """Patterns are relative to the search root; an absolute one under it is made relative."""
    if not os.path.isabs(pattern):
        return pattern
    for prefix in (str(root), os.path.abspath(given_root)):
        if pattern.startswith(prefix.rstrip("/") + "/"):
            return pattern[len(prefix.rstrip("/")) + 1 :]
    raise ToolError(f"pattern {pattern} is absolute; give it relative to path ({root})")


def _glob(root: Path, pattern: str, rules: PathRules | None) -> str:
    """Matching files, newest first, without those a Read deny rule covers."""
    regex = glob_regex(pattern)
    found: list[tuple[float, str]] = []
    for path in walk_files(root, respect_ignores=False):
        if not regex.fullmatch(path.relative_to(root).as_posix()):
            continue
        if rules is None or rules.denied("Read", str(path)) is None:
            try:
                found.append((-path.stat().st_mtime, str(path)))
            except OSError:
                continue
    if not found:
        return "No files found"
    found.sort()
    lines = [p for _, p in found[:MAX_RESULTS]]
    if len(found) > MAX_RESULTS:
        lines.append(
            f"(showing the {MAX_RESULTS} most recently modified of {len(found)} files; "
            "use a narrower pattern or path)"
        )
    return "\n".join(lines)
