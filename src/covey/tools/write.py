"""Write: create or overwrite a file with the given content."""

from __future__ import annotations

import asyncio

from pydantic import Field

from covey.errors import ToolError
from covey.tools._common import write_text
from covey.tools.base import Tool, ToolContext, ToolInput
from covey.tools.paths import resolve_in_workspace

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
        if real.is_dir():
            raise ToolError(f"{args.file_path} is a directory; give a file path")
        existed = real.exists()
        await asyncio.to_thread(write_text, real, args.file_path, args.content)
        lines = args.content.count("\n") + (not args.content.endswith("\n") and bool(args.content))
        return f"{'Overwrote' if existed else 'Created'} {real} ({lines} lines)"
