"""`covey attach ID`: the session screen of a running or finished session."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["COMMANDS"]


@click.command("attach")
@click.argument("session")
def attach_command(session: str) -> None:
    """Open a session's screen: its transcript as it grows, and an input to answer it.
    ← on the empty input detaches (the session goes on)."""
    from covey.tui import run_session_screen  # Textual loads only for the screen

    run_session_screen(Path.cwd(), session)


COMMANDS: list[click.Command] = [attach_command]
