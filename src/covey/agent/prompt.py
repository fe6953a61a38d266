"""The system prompt: short and exact. Every request carries it, so every byte costs."""

from __future__ import annotations

import datetime as dt
import platform
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from covey.agent.definitions import AgentDefinition

__all__ = [
    "MEMORY_FILES",
    "build_system_prompt",
    "definition_system_prompt",
    "environment_block",
    "project_memory",
]

MEMORY_FILES = ("CLAUDE.md", "AGENTS.md")
"""Project memory read from the project root, in this order."""
_NO_MEMORY = ("Explore", "Plan")
"""Built-in definitions that start without project memory."""

_CORE = """\
You are covey, a coding agent working in a software repository on the user's behalf.
- Use the tools to inspect and change files and to run commands; do not guess file contents.
- Read a file before editing it. Keep changes minimal and in the style of the code around them.
- Run the relevant tests or checks after a change when the project has them.
- Never claim something worked without having checked it.
- Be concise. When done, reply with a short summary of what you changed and how you verified it."""


def build_system_prompt(
    workspace: Path,
    *,
    project_root: Path | None = None,
    append: str | None = None,
    today: dt.date | None = None,
) -> str:
    parts = [_CORE, environment_block(workspace, today or dt.date.today())]
    for memory in project_memory(project_root or workspace):
        parts.append(memory)
    if append:
        parts.append(append)
    return "\n\n".join(parts)


def environment_block(workspace: Path, today: dt.date) -> str:
    git = "yes" if any((d / ".git").exists() for d in (workspace, *workspace.parents)) else "no"
    return (
        "<env>\n"
        f"Working directory: {workspace}\n"
        f"Is a git repository: {git}\n"
        f"Platform: {platform.system().lower()}\n"
        f"Date: {today.isoformat()}\n"
        "</env>"
    )


def project_memory(root: Path) -> list[str]:
    found = []
    for name in MEMORY_FILES:
        path = root / name
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text:
            found.append(f'<project-memory file="{name}">\n{text}\n</project-memory>')
    return found


def definition_system_prompt(
    defn: AgentDefinition, workspace: Path, project_root: Path | None, append: str | None = None
) -> str:
    """The definition's body, the environment facts, project memory (not for Explore/Plan)."""
    body = defn.prompt.strip() or f"You are the {defn.name} agent."
    parts = [body, environment_block(workspace, dt.date.today())]
    if defn.name not in _NO_MEMORY:
        parts += project_memory(project_root or workspace)
    if append:
        parts.append(append)
    return "\n\n".join(parts)
