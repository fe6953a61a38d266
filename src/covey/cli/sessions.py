"""`covey sessions` lists sessions; `covey logs ID` prints one's transcript readably."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import click

from covey.errors import UserError
from covey.sessions.listing import display_state
from covey.store import Store
from covey.store.sessions import SessionKind, SessionRow, find_session, get_session, list_sessions
from covey.store.transcript import TranscriptEntry, read_entries
from covey.store.usage import session_tokens

__all__ = ["COMMANDS"]

FOLLOW_POLL_S = 0.1
FOLLOWED_STATES = ("queued", "working", "needs_input", "idle")
"""`logs -f` keeps following while the session is in one of these (needs_input and idle
sessions will go on once answered)."""


def session_fields(row: SessionRow, cost_usd: float) -> dict[str, Any]:
    """The fields every JSON listing of sessions shares."""
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "state": display_state(row),
        "reason": row.reason,
        "summary": row.summary,
        "cwd": row.cwd,
        "created": row.created_at,
        "updated": row.updated_at,
        "cost_usd": round(cost_usd, 6),
    }


def _age(ts: float) -> str:
    s = max(0, int(time.time() - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


@click.command("sessions")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@click.option("--all", "show_all", is_flag=True, help="Include subagent sessions.")
@click.option("-n", "--limit", type=int, default=50, show_default=True)
def sessions_command(as_json: bool, show_all: bool, limit: int) -> None:
    """List sessions, newest first."""
    store = Store.open()
    try:
        with store.read() as conn:
            kinds: list[SessionKind] | None = (
                None if show_all else ["print", "interactive", "background"]
            )
            rows = list_sessions(conn, kinds=kinds, limit=limit)
            totals = {r.id: session_tokens(conn, r.id) for r in rows}
    finally:
        store.close()
    items: list[dict[str, Any]] = []
    for r in rows:
        tokens, cost = totals[r.id]
        items.append(
            {
                **session_fields(r, cost),
                "parent_id": r.parent_id,
                "model": r.model,
                "tokens": tokens,
            }
        )
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    if not items:
        click.echo("no sessions yet: start one with covey -p PROMPT")
        return
    for it, r in zip(items, rows, strict=True):
        name = f" {it['name']}" if it["name"] else ""
        click.echo(
            f"{it['id']}{name}  {it['state']:<11} {_age(r.updated_at):>4}  "
            f"${it['cost_usd']:.4f}  {it['summary'] or ''}"[:160]
        )


@click.command("logs")
@click.argument("session")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new steps until it ends.")
def logs_command(session: str, follow: bool) -> None:
    """Print a session's transcript readably."""
    store = Store.open()
    try:
        with store.read() as conn:
            row = find_session(conn, session)
            if row is None:
                raise UserError(f"no session {session!r}: see covey sessions")
            entries = read_entries(conn, row.id)
        click.echo(
            f"session {row.id}{' ' + row.name if row.name else ''} · {display_state(row)} "
            f"· {row.model} · {row.cwd}"
        )
        _echo(entries)
        if follow:
            with contextlib.suppress(KeyboardInterrupt):
                _follow(store, row.id, entries[-1].seq if entries else 0)
    finally:
        store.close()


def _echo(entries: list[TranscriptEntry]) -> None:
    from covey.sessions.render import render_entry  # the message models: `logs` only

    for entry in entries:
        for line in render_entry(entry):
            click.echo(line)


def _follow(store: Store, session_id: str, seq: int) -> None:
    """Print entries as they are written (polling the store's data version) until the
    session is neither live nor waiting for a host; then its final state."""
    version = -1
    while True:
        now = store.data_version()
        if now != version:
            version = now
            with store.read() as conn:
                entries = read_entries(conn, session_id, seq)
                row = get_session(conn, session_id)
            _echo(entries)
            seq = entries[-1].seq if entries else seq
            state = display_state(row) if row is not None else "removed"
            if state not in FOLLOWED_STATES:
                click.echo(f"── {state}{': ' + row.reason if row and row.reason else ''} ──")
                return
        time.sleep(FOLLOW_POLL_S)


COMMANDS: list[click.Command] = [sessions_command, logs_command]
