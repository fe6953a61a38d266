"""`covey cluster status [--json]`: the Ray cluster background sessions run on."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from covey.config import user_settings
from covey.errors import UserError
from covey.store import Store

__all__ = ["COMMANDS"]

_MIB = 1024 * 1024


def _lines(status: dict[str, Any]) -> list[str]:
    lines = [f"cluster {status['address']} · {len(status['nodes'])} node(s)"]
    for n in status["nodes"]:
        host = n["host"]
        if host is None:
            hosted = "no host"
        elif "error" in host:
            hosted = f"host not answering: {host['error']}"
        else:
            hosted = f"host pid {host['pid']} · {host['rss'] // _MIB} MiB"
        sessions = ", ".join(n["sessions"]) or "-"
        state = "alive" if n["alive"] else "dead"
        lines.append(
            f"  {n['node'][:12]}  {state:<5} {n['address']}  {hosted}  sessions: {sessions}"
        )
    return lines


@click.group("cluster")
def cluster() -> None:
    """The Ray cluster background sessions run on (background.executor "ray")."""


@cluster.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status(as_json: bool) -> None:
    """Nodes, the session host on each (pid, memory) and the sessions placed there."""
    settings = user_settings().background
    if settings.executor != "ray":
        raise UserError(
            'background.executor is "local": there is no cluster to show; set it to "ray" '
            "and background.ray.address in $COVEY_HOME/settings.json"
        )
    from covey.executors.ray_address import check_cluster

    check_cluster(settings.ray)  # before Ray is imported: one line if it is not there
    from covey.executors.ray_status import ClusterNotAnswering, cluster_status

    try:
        with Store.open() as store:
            shown = cluster_status(store, settings)
    except ClusterNotAnswering as e:
        click.echo(f"covey: error: {e}", err=True)
        sys.stderr.flush()
        os._exit(e.exit_code)  # a thread of Ray's still waits on the cluster: never join it
    if as_json:
        click.echo(json.dumps(shown))
    else:
        click.echo("\n".join(_lines(shown)))


COMMANDS = [cluster]
