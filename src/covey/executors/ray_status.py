"""What `covey cluster status` shows: the cluster's nodes, the host actor on each (its pid,
its memory, the sessions it runs), and the user's live sessions placed on each node.

`cluster_status(store, settings) -> dict` connects as a short-lived Ray driver (about a second)
to the cluster `background.ray.address` names, after the same reachability check as a
dispatch (a one-line UserError otherwise). While it is connected, anything Ray's driver prints
(errors the cluster pushes to it, such as a node found dead) goes to stderr, never into the
JSON on stdout.

Every Ray call is bounded: the driver's work runs in a thread of its own, and a cluster that
accepts the connection but does not answer within `ray_timeout_s()` (its head stopped or
overloaded: Ray's own client then retries for minutes) is `ClusterNotAnswering`, one line.
That thread may still be waiting on Ray: the caller ends the process without joining it
(`os._exit`, see cli/cluster.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import ray

from covey.config import BackgroundSettings
from covey.errors import UserError
from covey.executors.ray_address import check_cluster
from covey.executors.ray_host import existing_host, user_namespace
from covey.home import covey_home
from covey.store import Store
from covey.store.sessions import SessionState, list_sessions

__all__ = [
    "LOAD_TIMEOUT_S",
    "RAY_TIMEOUT_S",
    "ClusterNotAnswering",
    "bounded",
    "cluster_status",
    "ray_timeout_s",
    "stdout_to_stderr",
]

LOAD_TIMEOUT_S = 10.0
"""How long a host actor may take to say what it runs."""
RAY_TIMEOUT_S = 30.0
"""How long a command waits for the whole of its Ray work (connect, list, ask the hosts)."""
_TIMEOUT_VAR = "COVEY_RAY_TIMEOUT_S"
T = TypeVar("T")


class ClusterNotAnswering(UserError):
    """The cluster accepted the connection but did not answer in time."""


def ray_timeout_s() -> float:
    """`RAY_TIMEOUT_S`, or `$COVEY_RAY_TIMEOUT_S` when it is a positive number of seconds."""
    with contextlib.suppress(ValueError):
        if (value := float(os.environ.get(_TIMEOUT_VAR, ""))) > 0:
            return value
    return RAY_TIMEOUT_S


def bounded(work: Callable[[], T], timeout_s: float, address: str) -> T:
    """`work()` in a daemon thread; its result, its exception, or ClusterNotAnswering when
    it has not returned within `timeout_s` (the thread is left waiting)."""
    done: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(work())
        except BaseException as e:
            failed.append(e)

    worker = threading.Thread(target=run, name="covey-ray-call", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if failed:
        raise failed[0]
    if done:
        return done[0]
    raise ClusterNotAnswering(
        f"background.ray.address: the Ray cluster at {address} accepted the connection but "
        f"did not answer within {timeout_s:g} s (its head stopped or overloaded?); check it "
        f"with `ray status --address {address}`, or set {_TIMEOUT_VAR} to wait longer"
    )


_SHOWN: list[SessionState] = ["queued", "working", "needs_input", "idle", "interrupted"]


def cluster_status(store: Store, settings: BackgroundSettings) -> dict[str, Any]:
    if settings.executor != "ray":
        raise UserError(
            'background.executor is "local": no cluster to show; set it to "ray" and '
            "background.ray.address in $COVEY_HOME/settings.json"
        )
    address = check_cluster(settings.ray)
    namespace = user_namespace(covey_home())
    with store.read() as conn:
        rows = list_sessions(conn, kinds=["background"], states=_SHOWN)
    placed: dict[str, list[str]] = {}
    for row in rows:
        if row.meta.node:
            placed.setdefault(row.meta.node, []).append(row.id)
    with stdout_to_stderr():
        nodes = bounded(lambda: _ask(address, namespace, placed), ray_timeout_s(), address)
    return {"address": address, "nodes": sorted(nodes, key=lambda n: (not n["alive"], n["node"]))}


def _ask(address: str, namespace: str, placed: dict[str, list[str]]) -> list[dict[str, Any]]:
    ray.init(address=address, namespace=namespace, log_to_driver=False, logging_level=logging.ERROR)
    try:
        return [_node(n, namespace, placed) for n in ray.nodes()]  # type: ignore[no-untyped-call]
    finally:
        ray.shutdown()


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """File descriptor 1 points at stderr until the block ends (Ray's driver prints the errors
    the cluster pushes to it on stdout, from threads of its own)."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _node(info: dict[str, Any], namespace: str, placed: dict[str, list[str]]) -> dict[str, Any]:
    node_id = str(info["NodeID"])
    resources = info.get("Resources", {})
    host = None
    if info["Alive"] and (actor := existing_host(node_id, namespace)) is not None:
        try:
            host = ray.get(actor.load.remote(), timeout=LOAD_TIMEOUT_S)
        except Exception as e:  # a host that does not answer is shown as such
            host = {"error": str(e).splitlines()[0][:200]}
    return {
        "node": node_id,
        "alive": bool(info["Alive"]),
        "address": info.get("NodeManagerAddress"),
        "cpus": resources.get("CPU", 0),
        "memory_bytes": int(resources.get("memory", 0)),
        "host": host,
        "sessions": sorted(placed.get(node_id, [])),
    }
