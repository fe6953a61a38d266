"""What a model can call. `core_tools()` gives the built-in set in a fixed order."""

from __future__ import annotations

from typing import Any

from covey.tools.ask import AskUserQuestionTool
from covey.tools.base import Tool, ToolContext
from covey.tools.bash import BashTool
from covey.tools.edit import EditTool
from covey.tools.glob import GlobTool
from covey.tools.grep import GrepTool
from covey.tools.read import ReadTool
from covey.tools.write import WriteTool

__all__ = [
    "AskUserQuestionTool",
    "BashTool",
    "EditTool",
    "GlobTool",
    "GrepTool",
    "ReadTool",
    "Tool",
    "ToolContext",
    "WriteTool",
    "core_tools",
]


def core_tools() -> list[Tool[Any]]:
    """Fresh instances of Read, Write, Edit, Glob, Grep, Bash and AskUserQuestion."""
    return [
        ReadTool(),
        WriteTool(),
        EditTool(),
        GlobTool(),
        GrepTool(),
        BashTool(),
        AskUserQuestionTool(),
    ]
