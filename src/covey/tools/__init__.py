"""What a model can call. `core_tools()` gives the built-in set in a fixed order.

The tools' modules load on first use (`core_tools()`, or a name imported from here), so what
only needs their names (`CORE_TOOL_NAMES`: a plan, a definition's check) or the permission
rules (`covey.tools.permissions`) does not import every tool."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from covey.tools.ask import AskUserQuestionTool
    from covey.tools.base import Tool, ToolContext
    from covey.tools.bash import BashTool
    from covey.tools.edit import EditTool
    from covey.tools.glob import GlobTool
    from covey.tools.grep import GrepTool
    from covey.tools.read import ReadTool
    from covey.tools.write import WriteTool

__all__ = [
    "CORE_TOOL_NAMES",
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

CORE_TOOL_NAMES = ("Read", "Write", "Edit", "Glob", "Grep", "Bash", "AskUserQuestion")
"""The names of `core_tools()`, in its order (a test checks they agree)."""

_MODULE_OF = {
    "ReadTool": "read",
    "WriteTool": "write",
    "EditTool": "edit",
    "GlobTool": "glob",
    "GrepTool": "grep",
    "BashTool": "bash",
    "AskUserQuestionTool": "ask",
    "Tool": "base",
    "ToolContext": "base",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"covey.tools.{module}"), name)


def core_tools() -> list[Tool[Any]]:
    """Fresh instances of Read, Write, Edit, Glob, Grep, Bash and AskUserQuestion."""
    from covey.tools.ask import AskUserQuestionTool
    from covey.tools.bash import BashTool
    from covey.tools.edit import EditTool
    from covey.tools.glob import GlobTool
    from covey.tools.grep import GrepTool
    from covey.tools.read import ReadTool
    from covey.tools.write import WriteTool

    return [
        ReadTool(),
        WriteTool(),
        EditTool(),
        GlobTool(),
        GrepTool(),
        BashTool(),
        AskUserQuestionTool(),
    ]
