"""`covey agents [--json]`, `covey stop|reply|respawn|rm ID`, `covey daemon status|stop|start`.

`covey agents` makes sure the supervisor runs (so it also resumes background sessions that
were live when the previous supervisor died), then opens the agent view (`covey.tui`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import click

from covey.sessions.listing import ALL_KINDS, agent_rows
from covey.store import Store
from covey.store.sessions import list_sessions
from covey.supervisor import ensure_supervisor, stop_supervisor, supervisor_pid

__all__ = ["COMMANDS"]


@click.command("agents")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@click.option("--all", "show_all", is_flag=True, help="All sessions, not only background ones.")
@click.option("--model", help="Model of the sessions dispatched from the view.")
@click.option("--permission-mode", help="Permission mode of the sessions dispatched from the view.")
def agents_command(
    as_json: bool, show_all: bool, model: str | None, permission_mode: str | None
) -> None:
    """The agent view: watch, answer and dispatch background agents (--json for scripts)."""
    if not as_json:  # the view checks for a terminal, then starts the supervisor
        from covey.tui import run_agent_view  # Textual loads only for the view

        run_agent_view(Path.cwd(), all_kinds=show_all, model=model, permission_mode=permission_mode)
        return
    ensure_supervisor()
    with _store() as store:
        rows = agent_rows(store, kinds=ALL_KINDS if show_all else ("background",))
    click.echo(json.dumps([r.as_json() for r in rows], indent=2))


@click.command("stop")
@click.argument("session")
def stop_command(session: str) -> None:
    """Stop a session: its host cancels it, or it is marked stopped if no host runs it."""
    from covey.sessions import control  # the plan and git load only to act on a session

    with _store() as store:
        row, outcome = control.stop(store, session)
    messages = {
        "requested": f"stop requested · {row.id}",
        "stopped": f"stopped · {row.id}",
        "finished": f"already {row.state} · {row.id}",
    }
    click.echo(messages[outcome])


@click.command("reply")
@click.argument("session")
@click.argument("text")
def reply_command(session: str, text: str) -> None:
    """Answer a session's pending question or permission prompt, or give it its next prompt."""
    from covey.sessions import control  # the plan and git load only to act on a session

    with _store() as store:
        row, _ = control.reply(store, session, text)
    ensure_supervisor()
    click.echo(f"replied · {row.id}")


@click.command("respawn")
@click.argument("session")
def respawn_command(session: str) -> None:
    """Continue a finished, failed, stopped or interrupted session from its transcript."""
    from covey.sessions import control  # the plan and git load only to act on a session

    with _store() as store:
        row, command = control.respawn(store, session)
    ensure_supervisor()
    click.echo(f"respawning · {row.id}" if command else f"already live · {row.id}")


@click.command("rm")
@click.argument("session")
def rm_command(session: str) -> None:
    """Stop a session, snapshot and remove its worktree, and hide it (the transcript stays)."""
    from covey.sessions import control  # the plan and git load only to act on a session

    with _store() as store:
        report = control.remove(store, session)
    parts = [f"removed · {report.session.id}"]
    if report.snapshot:
        parts.append(f"snapshot {report.snapshot}")
    if report.branch_kept:
        parts.append(f"branch {report.branch} kept (commits merged nowhere)")
    click.echo(" · ".join(parts))
    click.echo(f"  the transcript stays: covey --resume {report.session.id}")


@contextlib.contextmanager
def _store() -> Iterator[Store]:
    store = Store.open()
    try:
        yield store
    finally:
        store.close()


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
        with _store() as store, store.read() as conn:
            rows = list_sessions(conn, kinds=["background"])
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


COMMANDS: list[click.Command] = [
    agents_command,
    stop_command,
    reply_command,
    respawn_command,
    rm_command,
    daemon_group,
]
