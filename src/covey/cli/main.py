"""`covey`: the entry point. A first word naming a subcommand runs it; anything else is the
root command (`covey [flags] [PROMPT]`), so a prompt never needs quoting as a subcommand."""

from __future__ import annotations

import sys
import types

import click

from covey.cli.subcommands import SUBCOMMAND_NAMES, subcommands
from covey.errors import CoveyError, UserError

__all__ = ["main"]


def _without_pydantic_plugins() -> None:
    """covey's command line runs pydantic without plugins: their lookup (the `pydantic`
    entry points, through `importlib.metadata`) costs ~30 ms of every start-up that builds a
    model, and nothing of covey's uses one. Pydantic imports `pydantic.plugin._loader` only
    to call `get_plugins()` when it builds a validator, so a stand-in answering "none" is
    enough (tests/test_startup_imports.py pins that it still is)."""
    name = "pydantic.plugin._loader"
    if name not in sys.modules:
        loader = types.ModuleType(name, "covey: pydantic plugins are not loaded")
        loader.get_plugins = tuple  # type: ignore[attr-defined]
        sys.modules[name] = loader


def main(argv: list[str] | None = None) -> None:
    """Bad input is one line on stderr and exit 2, never a traceback."""
    args = sys.argv[1:] if argv is None else argv
    _without_pydantic_plugins()
    if args and args[0] in SUBCOMMAND_NAMES:
        command: click.Command = subcommands
    else:
        from covey.cli.root import root  # the agent stack loads only when a session runs

        command = root
    try:
        command.main(args=args, prog_name="covey", standalone_mode=False)
    except UserError as e:
        click.echo(f"covey: error: {e}", err=True)
        sys.exit(e.exit_code)
    except CoveyError as e:  # a failure outside any run (git, the store): one line, exit 1
        click.echo(f"covey: error: {e}", err=True)
        sys.exit(getattr(e, "exit_code", 1))
    except click.exceptions.Abort:
        click.echo("covey: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        hint = " (see covey --help)" if isinstance(e, click.UsageError) else ""
        click.echo(f"covey: error: {e.format_message()}{hint}", err=True)
        sys.exit(2 if isinstance(e, click.UsageError) else e.exit_code)
