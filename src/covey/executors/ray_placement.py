"""Where a new session goes on a Ray cluster: the least-loaded live node with room
(`background.ray.maxSessionsPerNode`), counted from the sessions this supervisor placed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["choose_node", "node_loads"]


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
