"""Edit: replace an exact string in a file, once (it must be unique) or everywhere."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import Field

from covey.errors import ToolError
from covey.tools._common import optional, read_text, write_text
from covey.tools._fs import open_regular
from covey.tools.base import Tool, ToolContext, ToolInput
from covey.tools.paths import check_denied, resolve_in_workspace

__all__ = ["EditInput", "EditTool"]


class EditInput(ToolInput):
    file_path: str = Field(description="Absolute path, or relative to the workspace")
    old_string: str = Field(description="Exact text to replace, whitespace included")
    new_string: str = Field(description="Replacement text (must differ from old_string)")
    replace_all: bool | None = optional("Replace every occurrence (default false)")


class EditTool(Tool[EditInput]):
    name = "Edit"
    description = (
        "Replace old_string with new_string in a file. old_string must match exactly "
        "(Read the file first) and be unique unless replace_all is true; include surrounding "
        "lines to make it unique."
    )
    input_model = EditInput
    edits_files = True

    def validate(self, args: EditInput, ctx: ToolContext) -> None:
        resolve_in_workspace(ctx, args.file_path, must_exist=False)

    async def run(self, args: EditInput, ctx: ToolContext) -> str:
        real = resolve_in_workspace(ctx, args.file_path, must_exist=True)
        check_denied(ctx, "Edit", real, args.file_path)
        if args.old_string == args.new_string:
            raise ToolError("old_string and new_string are the same; there is nothing to change")
        if not args.old_string:
            raise ToolError("old_string is empty; use Write to create or overwrite a whole file")
        count = await asyncio.to_thread(_edit, ctx, real, args)
        return f"Edited {real}: {count} replacement{'s' if count != 1 else ''}"


def _edit(ctx: ToolContext, real: Path, args: EditInput) -> int:
    fd = open_regular(ctx, real, args.file_path, write=True)
    try:
        return _replace(fd, args)
    finally:
        os.close(fd)


def _replace(fd: int, args: EditInput) -> int:
    path = args.file_path
    text = read_text(fd, path)
    old, new = args.old_string, args.new_string
    count = text.count(old)
    if count == 0 and "\r\n" in text and "\n" in old:
        # The model usually writes \n; keep the file's CRLF line endings.
        old, new = _crlf(old), _crlf(new)
        count = text.count(old)
    if count == 0:
        raise ToolError(
            f"old_string was not found in {path}; Read the file and copy the exact text, "
            "including indentation"
        )
    if count > 1 and not args.replace_all:
        raise ToolError(
            f"old_string occurs {count} times in {path}; include more surrounding lines to make "
            "it unique, or set replace_all to true to replace every occurrence"
        )
    write_text(fd, path, text.replace(old, new) if args.replace_all else text.replace(old, new, 1))
    return count if args.replace_all else 1


def _crlf(s: str) -> str:
    return s.replace("\r\n", "\n").replace("\n", "\r\n")
