"""`covey subagents list [--json]`: every subagent definition found, and what became of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from covey.agent.definitions import DefinitionReport, load_definitions, resolve_tools
from covey.tools import core_tools

__all__ = ["COMMANDS", "subagents"]


@click.group("subagents")
def subagents() -> None:
    """Subagent definitions: Markdown files in .covey/agents/, .claude/agents/ and more."""


@subagents.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object for scripts.")
@click.option("--agents", "cli_json", metavar="JSON", help="Definitions as covey --agents takes.")
def list_command(as_json: bool, cli_json: str | None) -> None:
    """Show every definition: name, scope, path, tools, model, status and warnings.

    Highest scope first: --agents, .covey/agents/ (nearest directory first), .claude/agents/,
    $COVEY_HOME/agents/, ~/.claude/agents/, built-ins. Tools are those a subagent gets
    when it may itself call Agent.
    """
    rows = [_row(r) for r in load_definitions(Path.cwd(), cli_json=cli_json).reports]
    if as_json:
        click.echo(json.dumps({"agents": rows}, indent=2))
        return
    for row in rows:
        status = row["status"] if row["status"] == "loaded" else f"{row['status']}: {row['reason']}"
        if row["status"] == "shadowed":
            status = row["reason"]
        click.echo(f"{row['name'] or '(no name)'}  [{row['scope']}]  {status}")
        click.echo(f"  path: {row['path'] or '-'}")
        if row["status"] != "skipped":
            click.echo(f"  model: {row['model']}  tools: {', '.join(row['tools']) or '-'}")
        for warning in row["warnings"]:
            click.echo(f"  warning: {warning}")


def _row(report: DefinitionReport) -> dict[str, Any]:
    defn = report.definition
    available = [t.name for t in core_tools()] + ["Agent"]
    return {
        "name": report.name,
        "scope": report.scope,
        "path": str(report.path) if report.path else None,
        "status": report.status,
        "reason": report.reason,
        "shadowed_by": str(report.shadowed_by) if report.shadowed_by else None,
        "warnings": report.warnings,
        "model": defn.model if defn else None,
        "tools": resolve_tools(defn, available, depth_allows_agent=True) if defn else [],
        "description": defn.description if defn else None,
    }


COMMANDS: list[click.Command] = [subagents]
