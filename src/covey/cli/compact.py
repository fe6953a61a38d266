"""`covey compact ID [INSTRUCTIONS]` and `covey -p --resume ID "/compact"`: compact a stored
session now, as the session screen's `/compact` does (a `compact_boundary`, trigger `manual`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from covey.errors import UserError
from covey.sessions.plan import SessionOptions, find_previous, plan_session
from covey.store import Store

__all__ = ["COMMANDS", "compact_now"]


def compact_now(store: Store, options: SessionOptions, instructions: str | None) -> str:
    """Plan the session `options` continue and compact it; one line saying what happened."""
    from covey.sessions.slash import compact_session

    if options.resume is None and not options.continue_last:
        raise UserError(
            '/compact with -p needs the session to compact: covey -p --resume ID "/compact" '
            "(or --continue), or covey compact ID"
        )
    plan = plan_session(options, find_previous(store, options))
    return asyncio.run(compact_session(store, plan, instructions))


@click.command("compact")
@click.argument("session")
@click.argument("instructions", nargs=-1)
def compact_command(session: str, instructions: tuple[str, ...]) -> None:
    """Compact SESSION now (id, id prefix or name): its conversation becomes a summary,
    focused on INSTRUCTIONS if given. The session must not be running elsewhere."""
    options = SessionOptions(cwd=Path.cwd(), resume=session)
    with Store.open() as store:
        click.echo(compact_now(store, options, " ".join(instructions).strip() or None))


COMMANDS: list[click.Command] = [compact_command]
