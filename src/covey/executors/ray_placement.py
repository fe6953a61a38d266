"""The supervisor's view of the Ray cluster: its connection (`RayDriver`: `ray.init` once,
the live nodes; each call bounded, so a frozen head is an error after `ray_timeout_s()`,
never a hang) and where a new session goes: the least-loaded live node with room
(`background.ray.maxSessionsPerNode`), counted from the sessions this supervisor placed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping

import ray

from covey.config import RaySettings
from covey.executors.ray_address import resolve_address
from covey.executors.ray_status import bounded, ray_timeout_s

__all__ = ["RayDriver", "choose_node", "node_loads"]


class RayDriver:
    """This process as a driver of the cluster `settings` name, in `namespace`. Call its
    methods in worker threads: they wait up to `ray_timeout_s()` (ClusterNotAnswering)."""

    def __init__(self, settings: RaySettings, namespace: str) -> None:
        self.settings, self.namespace = settings, namespace
        self._connected = False
        self._connecting = threading.Lock()

    def connect(self) -> None:
        """`ray.init`, once."""
        bounded(self._init, ray_timeout_s(), resolve_address(self.settings))

    def _init(self) -> None:
        with self._connecting:  # sessions start in worker threads: one `ray.init` of them all
            if not self._connected:
                ray.init(
                    address=resolve_address(self.settings),
                    namespace=self.namespace,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
                self._connected = True

    def alive_nodes(self) -> list[str]:
        """The live nodes' ids."""
        nodes = bounded(ray.nodes, ray_timeout_s(), resolve_address(self.settings))
        return sorted(n["NodeID"] for n in nodes if n["Alive"])


def node_loads(alive: Iterable[str], placed: Mapping[str, str], sid: str) -> dict[str, int]:
    """Live node id → sessions placed there, not counting `sid` itself."""
    loads = dict.fromkeys(alive, 0)
    for other, node in placed.items():
        if other != sid and node in loads:
            loads[node] += 1
    return loads


def choose_node(loads: dict[str, int], limit: int) -> str | None:
    """The least-loaded node with room (`loads`: node id → sessions placed there; ties go to
    the lowest id), or None when every node holds `limit` sessions."""
    room = sorted((n, node) for node, n in loads.items() if n < limit)
    return room[0][1] if room else None
