"""The `covey COMMAND …` subcommands: one module per group, each registered here once.

Modules load only when one of their commands runs (or for `--help`), so a quick command like
`covey overlaps` does not pay for importing the agent view, the supervisor or the agent stack.
"""

from __future__ import annotations

import importlib

import click

__all__ = ["MODULES", "SUBCOMMAND_LIST", "SUBCOMMAND_NAMES", "subcommands"]

MODULES: dict[str, tuple[str, ...]] = {
    "sessions": ("sessions", "logs"),
    "worktree": ("worktree",),
    "merge": ("diff", "merge", "overlaps"),
    "subagents": ("subagents",),
    "agents": ("agents", "stop", "reply", "respawn", "rm", "daemon"),
    "attach": ("attach",),
    "compact": ("compact",),
    "usage": ("usage",),
    "team": ("team",),
    "cluster": ("cluster",),
}
"""`covey.cli.<module>` → the names of the commands in its `COMMANDS` (a test checks them)."""

_MODULE_OF = {name: module for module, names in MODULES.items() for name in names}
SUBCOMMAND_NAMES = frozenset(_MODULE_OF)


class LazyGroup(click.Group):
    """A group whose commands are imported from their module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_MODULE_OF)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _MODULE_OF.get(cmd_name)
        if module is None:
            return None
        commands = importlib.import_module(f"covey.cli.{module}").COMMANDS
        return next((c for c in commands if c.name == cmd_name), None)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def subcommands() -> None:
    """covey subcommands."""


SUBCOMMAND_LIST = ", ".join(sorted(_MODULE_OF))
