"""Read: a text file with line numbers, like `cat -n`, a window of lines at a time."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import Field

from covey.errors import ToolError
from covey.tools._common import optional, require_text
from covey.tools._fs import open_regular
from covey.tools.base import Tool, ToolContext, ToolInput
from covey.tools.paths import check_denied, resolve_in_workspace

__all__ = ["ReadInput", "ReadTool"]

DEFAULT_LIMIT = 2000
MAX_LINE_CHARS = 2000
MAX_OUTPUT_CHARS = 256_000
"""Stop early (with a note) rather than flood the context with a file of very long lines."""


class ReadInput(ToolInput):
    file_path: str = Field(description="Absolute path, or relative to the workspace")
    offset: int | None = optional("First line to read, 1-based", ge=1)
    limit: int | None = optional(f"Number of lines to read (default {DEFAULT_LIMIT})", ge=1)


class ReadTool(Tool[ReadInput]):
    name = "Read"
    description = (
        "Read a text file. Output is numbered like `cat -n`: line number, tab, line. "
        f"Returns up to {DEFAULT_LIMIT} lines from offset; use offset and limit to page "
        f"through long files. Lines over {MAX_LINE_CHARS} characters are cut."
    )
    input_model = ReadInput
    read_only = True

    def validate(self, args: ReadInput, ctx: ToolContext) -> None:
        resolve_in_workspace(ctx, args.file_path, must_exist=False)

    async def run(self, args: ReadInput, ctx: ToolContext) -> str:
        real = resolve_in_workspace(ctx, args.file_path, must_exist=True)
        check_denied(ctx, "Read", real, args.file_path)
        return await asyncio.to_thread(
            _numbered, ctx, real, args.file_path, args.offset or 1, args.limit or DEFAULT_LIMIT
        )


def _numbered(ctx: ToolContext, real: Path, path: str, first: int, limit: int) -> str:
    fd = open_regular(ctx, real, path)
    try:
        require_text(fd, path)
    except BaseException:
        os.close(fd)
        raise
    out: list[str] = []
    size = 0
    line_no = 0
    next_line: int | None = None
    try:
        with open(fd, encoding="utf-8", errors="replace") as f:
            for line_no, line in enumerate(f, 1):
                if line_no < first:
                    continue
                if len(out) == limit or size > MAX_OUTPUT_CHARS:
                    next_line = line_no
                    break
                text = line.rstrip("\n")
                if len(text) > MAX_LINE_CHARS:
                    text = text[:MAX_LINE_CHARS] + " [line truncated]"
                out.append(f"{line_no:>6}\t{text}")
                size += len(out[-1]) + 1
    except OSError as e:
        raise ToolError(f"cannot read {path}: {e.strerror or e}") from None
    if line_no == 0:
        return f"(the file {path} exists but is empty)"
    if not out:
        return f"(the file has {line_no} lines; offset {first} is past the end)"
    if next_line is not None:
        out.append(f"(more lines follow; continue with offset={next_line})")
    return "\n".join(out)
