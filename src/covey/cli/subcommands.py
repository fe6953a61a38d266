"""The `covey COMMAND …` subcommands: one module per group, each registered here once."""

from __future__ import annotations

import click

__all__ = ["SUBCOMMAND_LIST", "subcommands"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def subcommands() -> None:
    """covey subcommands."""


# Registration: import each command module and add its commands (one line per module).

SUBCOMMAND_LIST = ", ".join(sorted(subcommands.commands)) or "(none yet)"
