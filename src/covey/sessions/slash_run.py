"""Running a slash command against the session screen's session: what it does to the session
(through its `ForegroundHost`, or the store for an attached one) and what the screen shows.

The screen stays thin: it parses with `covey.sessions.slash.parse`, calls `run_command`, writes
the `Reply`'s lines under the transcript and its notice on one line, and carries out its
`action` (leave, go to the background, reload the transcript of a new or resumed session).
A command that needs a session hosted in this screen says so when the screen is attached to
a background session. Bad input is a `UserError` (one line; nothing changed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from covey.errors import UserError
from covey.sessions import control
from covey.sessions.interactive import ForegroundHost
from covey.sessions.plan import SessionOptions, plan_session
from covey.sessions.slash import (
    Invocation,
    agents_lines,
    help_lines,
    permissions_lines,
    sessions_lines,
    usage_lines,
)
from covey.store import Store
from covey.store.sessions import SessionRow, get_session
from covey.tools.permissions import PERMISSION_MODES

__all__ = ["Reply", "ScreenAction", "run_command"]

ScreenAction = Literal["exit", "background", "reload"]


@dataclass(frozen=True)
class Reply:
    lines: list[str] = field(default_factory=list)
    """Shown under the transcript."""
    notice: str = ""
    """One line for the screen's message bar."""
    action: ScreenAction | None = None
    """`reload`: the screen now shows another session (`/clear`, `/resume`)."""


async def run_command(
    invocation: Invocation, store: Store, host: ForegroundHost | None, session_id: str | None
) -> Reply:
    """Run `invocation` for the screen: `host` when the session is hosted here, else the
    attached `session_id`."""
    command, args = invocation.command, invocation.args
    name = command.name
    if host is None and (command.local or (name == "model" and args)):
        raise UserError(
            f"/{name} needs a session hosted in this screen (plain covey); this one is "
            "hosted in the background"
        )
    if host is not None:
        session_id = host.session_id
    if name == "help":
        return Reply(help_lines())
    if name == "exit":
        return Reply(action="exit")
    if name == "usage":
        if session_id is None:
            return Reply(notice="no session yet: nothing spent")
        window = host.context_window if host is not None else None
        return Reply(usage_lines(store, session_id, context_window=window))
    if name == "agents":
        cwd = host.cwd if host is not None else Path(_row(store, session_id).cwd)
        return Reply(agents_lines(cwd))
    if name == "permissions":
        if host is not None:
            return Reply(permissions_lines(host.plan.policy))
        row = _row(store, session_id)
        return Reply(permissions_lines(plan_session(SessionOptions(Path(row.cwd)), row).policy))
    if name == "model":
        return _model(store, host, session_id, args)
    assert host is not None  # the commands below are local
    if name == "clear":
        left = host.clear()
        if left is None:
            return Reply(notice="already a fresh session")
        note = f"fresh session: the next prompt starts it · left {left} (/resume {left})"
        return Reply(notice=note, action="reload")
    if name == "compact":
        return Reply(notice=await host.compact(args or None))
    if name == "resume":
        if not args:
            return Reply(sessions_lines(store, host.cwd))
        row = control.find(store, args)
        host.resume(row)
        return Reply(notice=f"resumed session {row.id}", action="reload")
    if name == "mode":
        if args not in PERMISSION_MODES:
            raise UserError(f"/mode MODE: MODE is one of {', '.join(PERMISSION_MODES)}")
        host.switch(permission_mode=args)
        return Reply(notice=f"permission mode: {host.plan.policy.mode} from the next turn")
    if name == "bg":
        return Reply(action="background")
    raise AssertionError(f"no handler for /{name}")


def _model(store: Store, host: ForegroundHost | None, session_id: str | None, args: str) -> Reply:
    if host is None:
        return Reply(notice=f"model: {_row(store, session_id).model}")
    if args:
        host.switch(model=args)
        return Reply(notice=f"model: {host.plan.model_name} from the next turn")
    return Reply(notice=f"model: {host.plan.model_name}  (/model NAME to switch)")


def _row(store: Store, session_id: str | None) -> SessionRow:
    with store.read() as conn:
        row = get_session(conn, session_id) if session_id else None
    if row is None:
        raise UserError(f"session {session_id} is gone from the store")
    return row
