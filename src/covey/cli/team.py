"""`covey team SESSION [--json]`: the team a session leads or belongs to (agent teams)."""

from __future__ import annotations

import json
from typing import Any

import click

from covey.errors import UserError
from covey.store import Store
from covey.store.sessions import find_session
from covey.teams.view import team_of, team_view

__all__ = ["COMMANDS"]


def _lines(view: dict[str, Any]) -> list[str]:
    lines = [f"team {view['team']} · lead {view['lead']}" + (" · ended" if view["ended"] else "")]
    for m in view["members"]:
        task = f"task {m['task']}" if m["task"] else "-"
        owns = ", ".join(m["owns"]) or "-"
        lines.append(
            f"  {m['name']:<14} {m['id']}  {m['state'] or '?':<11} {task:<9} "
            f"${m['cost_usd']:.4f}  owns {owns}"
        )
    lines.append("tasks:" if view["tasks"] else "tasks: none")
    for t in view["tasks"]:
        blocked = f" (blocked by {', '.join(t['blockedBy'])})" if t["blockedBy"] else ""
        lines.append(
            f"  #{t['id']:<4} {t['status']:<11} {t['owner'] or '-':<14} {t['subject']}{blocked}"
        )
    return lines


@click.command("team")
@click.argument("session")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def team(session: str, as_json: bool) -> None:
    """Show the team SESSION leads (or belongs to): members and the task board."""
    with Store.open() as store, store.read() as conn:
        row = find_session(conn, session)
        if row is None:
            raise UserError(f"covey team {session!r}: no such session (see covey sessions)")
        found = team_of(conn, row.id)
        if found is None:
            raise UserError(
                f"covey team {session!r}: session {row.id} has no team (teams start when "
                "COVEY_EXPERIMENTAL_AGENT_TEAMS=1)"
            )
        view = team_view(conn, found)
    if as_json:
        click.echo(json.dumps(view))
    else:
        click.echo("\n".join(_lines(view)))


COMMANDS = [team]
