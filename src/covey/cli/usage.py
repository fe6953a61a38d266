"""`covey usage [--by session|agent|model|day] [--since DATE] [--json]`: what was spent.

The figures come from the usage ledger (`covey.store.usage`): one row per model response, with
the tokens the provider reported and its cost from the pricing table at the time. A session's
row includes its subagents' and teammates' spending.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from covey.errors import UserError
from covey.store import Store
from covey.store.usage import GROUPINGS, UsageTotal, usage_totals

__all__ = ["COMMANDS", "parse_since"]


def parse_since(text: str) -> float:
    """`2026-12-01` or `2026-12-01T09:30` (local time) → a Unix timestamp."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UserError(
            f"--since {text!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM (local time)"
        ) from None


def _fields(by: str, total: UsageTotal) -> dict[str, Any]:
    u = total.usage
    return {
        by: total.key,
        "input_tokens": u.input,
        "output_tokens": u.output,
        "cache_read_input_tokens": u.cache_read,
        "cache_creation_input_tokens": u.cache_write,
        "requests": total.requests,
        "cost_usd": round(total.cost_usd, 6),
    }


def _table(by: str, rows: list[dict[str, Any]]) -> list[str]:
    columns = (
        ("input_tokens", "input"),
        ("output_tokens", "output"),
        ("cache_read_input_tokens", "cache read"),
        ("cache_creation_input_tokens", "cache write"),
        ("requests", "requests"),
    )
    total: dict[str, Any] = {by: "total"}
    for name, _ in (*columns, ("cost_usd", "")):
        total[name] = sum(r[name] for r in rows)
    width = max(len(by), *(len(str(r[by])) for r in (*rows, total)))
    lines = ["  ".join([by.ljust(width), *(t.rjust(12) for _, t in columns), "cost".rjust(10)])]
    for r in (*rows, total):
        cells = [str(r[by]).ljust(width), *(f"{r[n]:>12,}" for n, _ in columns)]
        lines.append("  ".join([*cells, f"${r['cost_usd']:.4f}".rjust(10)]))
    all_input = (
        total["input_tokens"]
        + total["cache_read_input_tokens"]
        + total["cache_creation_input_tokens"]
    )
    share = total["cache_read_input_tokens"] / all_input if all_input else 0.0
    lines.append(f"cache reads: {share:.1%} of input tokens")
    return lines


@click.command("usage")
@click.option(
    "--by",
    type=click.Choice(GROUPINGS),
    default="session",
    show_default=True,
    help="Group by top-level session (subagents included), agent path, model or local day.",
)
@click.option("--since", help="Only usage from this local date or time on (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def usage_command(by: str, since: str | None, as_json: bool) -> None:
    """Tokens, requests and cost in USD, from the usage ledger."""
    since_ts = parse_since(since) if since is not None else None
    store = Store.open()
    try:
        with store.read() as conn:
            totals = usage_totals(conn, by, since=since_ts)
    finally:
        store.close()
    rows = [_fields(by, t) for t in totals]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for line in _table(by, rows):
        click.echo(line)


COMMANDS = [usage_command]
