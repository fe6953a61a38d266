"""Write: create or overwrite a file with the given content."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import Field

from covey.tools._common import write_text
from covey.tools._fs import create_or_truncate
from covey.tools.base import Tool, ToolContext, ToolInput
from covey.tools.paths import check_denied, resolve_in_workspace

__all__ = ["WriteInput", "WriteTool"]


class WriteInput(ToolInput):
    file_path: str = Field(description="Absolute path, or relative to the workspace")
    content: str = Field(description="The complete new content of the file")


class WriteTool(Tool[WriteInput]):
    name = "Write"
    description = (
        "Create a file, or overwrite it with the complete content given; creates missing "
        "parent directories. Prefer Edit to change part of an existing file."
    )
    input_model = WriteInput
    edits_files = True

    def validate(self, args: WriteInput, ctx: ToolContext) -> None:
        resolve_in_workspace(ctx, args.file_path, must_exist=False)

    async def run(self, args: WriteInput, ctx: ToolContext) -> str:
        real = resolve_in_workspace(ctx, args.file_path, must_exist=False)
        check_denied(ctx, "Edit", real, args.file_path)
        existed = await asyncio.to_thread(_write, ctx, real, args.file_path, args.content)
        lines = args.content.count("\n") + (not args.content.endswith("\n") and bool(args.content))
        return f"{'Overwrote' if existed else 'Created'} {real} ({lines} lines)"


def _write(ctx: ToolContext, real: Path, path: str, content: str) -> bool:
    fd, existed = create_or_truncate(ctx, real, path)
    try:
        write_text(fd, path, content)
    finally:
        os.close(fd)
    return existed
