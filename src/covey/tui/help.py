"""The `?` overlay: every key of the agent view and the session screen."""

from __future__ import annotations

import textwrap
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from covey.sessions.slash import COMMANDS

__all__ = ["HELP_TEXT", "SESSION_KEYS", "HelpScreen"]

SESSION_KEYS = [
    "keys:",
    "  Enter            answer the pending question, or send the next prompt",
    "  /                a command (listed as you type; → completes)",
    "  ← (empty input)  detach: back to the list; plain covey sends the session to the background",
    "  Ctrl+C           stop the turn running here; twice within 2 s: quit (attached: detach)",
]
"""The session screen's keys, shown by `/help` too."""

HELP_TEXT = """\
covey agents — keys

  ↑ / ↓            move between sessions and a lead's teammates
  Space            peek: latest output or the pending question; type a reply + Enter
  Enter            attach (the session screen); with text typed: dispatch it;
                   on "… N more": show the older finished sessions
  @agent prompt    dispatch as that agent definition
  Ctrl+X, Ctrl+X   stop, then delete (the second press within 2 s); a teammate: stop
  on a teammate    Space/Enter peek; a reply is a message to it (its lead's mailbox)
  ?                this help
  q / Ctrl+C       quit (sessions go on in the background)

session screen

{keys}
{commands}

Esc, q or ? closes this help.""".format(
    keys="\n".join(SESSION_KEYS[1:]),
    commands=textwrap.fill(
        "  ".join(f"/{name}" for c in COMMANDS for name in c.names),
        width=88,
        initial_indent="  /commands        ",
        subsequent_indent=" " * 19,
        break_on_hyphens=False,
    ),
)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: auto; height: auto; border: round $accent; padding: 1 2; background: $panel;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss_help", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(HELP_TEXT, id="help-text", markup=False)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
