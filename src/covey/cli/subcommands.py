"""The `covey COMMAND …` subcommands: one module per group, each registered here once."""

from __future__ import annotations

import click

from covey.cli import agents, attach, merge, sessions, subagents, worktree

__all__ = ["SUBCOMMAND_LIST", "subcommands"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def subcommands() -> None:
    """covey subcommands."""


for _module in (sessions, worktree, merge, subagents, agents, attach):
    for _command in _module.COMMANDS:
        subcommands.add_command(_command)

SUBCOMMAND_LIST = ", ".join(sorted(subcommands.commands)) or "(none yet)"
