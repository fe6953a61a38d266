"""`covey agents --json`, `covey stop ID`, `covey daemon status|stop|start`.

`covey agents` makes sure the supervisor runs (so it also resumes background sessions that
were live when the previous supervisor died). The Textual agent view is not built yet.
"""

from __future__ import annotations

import json
from typing import Any

import click

from covey.cli.sessions import session_fields
from covey.errors import UserError
from covey.sessions.background import request_stop
from covey.store import Store
from covey.store.sessions import SessionKind, find_session, list_sessions
from covey.store.usage import session_usage
from covey.supervisor import ensure_supervisor, stop_supervisor, supervisor_pid

__all__ = ["COMMANDS"]

_ALL_KINDS: list[SessionKind] = ["print", "interactive", "background", "teammate"]


@click.command("agents")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@click.option("--all", "show_all", is_flag=True, help="All sessions, not only background ones.")
def agents_command(as_json: bool, show_all: bool) -> None:
    """Background agents and their state (the agent view is not built yet: use --json)."""
    if not as_json:
        raise UserError("the agent view is not built yet: use covey agents --json")
    ensure_supervisor()
    store = Store.open()
    try:
        with store.read() as conn:
            kinds: list[SessionKind] = _ALL_KINDS if show_all else ["background"]
            rows = list_sessions(conn, kinds=kinds)
            costs = {r.id: session_usage(conn, r.id)[1] for r in rows}
    finally:
        store.close()
    items: list[dict[str, Any]] = [
        {
            **session_fields(r, costs[r.id]),
            "worktree": r.meta.worktree,
            "branch": r.meta.branch,
            "waiting_for": None,
        }
        for r in rows
    ]
    click.echo(json.dumps(items, indent=2))


@click.command("stop")
@click.argument("session")
def stop_command(session: str) -> None:
    """Stop a session: its host cancels it, or it is marked stopped if no host runs it."""
    store = Store.open()
    try:
        with store.read() as conn:
            row = find_session(conn, session)
        if row is None:
            raise UserError(f"no session {session!r}: see covey agents --json")
        outcome = request_stop(store, row.id)
    finally:
        store.close()
    messages = {
        "requested": f"stop requested · {row.id}",
        "stopped": f"stopped · {row.id}",
        "finished": f"already {row.state} · {row.id}",
    }
    click.echo(messages[outcome])


@click.group("daemon")
def daemon_group() -> None:
    """The supervisor daemon that hosts background sessions."""


@daemon_group.command("status")
@click.option("--json", "as_json", is_flag=True)
def daemon_status(as_json: bool) -> None:
    """Whether the supervisor runs, its pid, and the sessions it hosts."""
    pid = supervisor_pid()
    hosted: list[str] = []
    if pid is not None:
        store = Store.open()
        try:
            with store.read() as conn:
                rows = list_sessions(conn, kinds=["background"])
        finally:
            store.close()
        hosted = [r.id for r in rows if r.host_id and r.host_id.split(":")[1:2] == [str(pid)]]
    if as_json:
        click.echo(json.dumps({"running": pid is not None, "pid": pid, "sessions": hosted}))
    elif pid is None:
        click.echo("supervisor: not running")
    else:
        click.echo(f"supervisor: running · pid {pid} · {len(hosted)} session(s) hosted")


@daemon_group.command("start")
def daemon_start() -> None:
    """Start the supervisor unless it runs already."""
    click.echo(f"supervisor: running · pid {ensure_supervisor()}")


@daemon_group.command("stop")
def daemon_stop() -> None:
    """Stop the supervisor; its sessions are marked interrupted and resume on its next start."""
    pid = stop_supervisor()
    click.echo("supervisor: not running" if pid is None else f"supervisor: stopped · pid {pid}")


COMMANDS: list[click.Command] = [agents_command, stop_command, daemon_group]
