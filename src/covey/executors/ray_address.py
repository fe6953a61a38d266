"""Is the Ray cluster of `background.ray` there? Checked at dispatch, before anything is queued.

`check_cluster(settings) -> str` resolves the address (`auto`: `RAY_ADDRESS`, else the cluster
started last on this machine) and connects to the head's GCS port once, without starting a Ray
driver (which costs seconds). Ray missing, no cluster found, or a port nobody answers on is one
`UserError` naming the setting and how to fix it. Ray is imported only to resolve `auto`.
"""

from __future__ import annotations

import importlib.util
import os
import socket

from covey.config import RaySettings
from covey.errors import UserError

__all__ = ["CONNECT_TIMEOUT_S", "check_cluster", "ray_installed", "resolve_address"]

CONNECT_TIMEOUT_S = 2.0
"""How long the dispatch waits for the head's GCS port to accept a connection."""

_SETTING = "background.ray.address"


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def resolve_address(settings: RaySettings) -> str:
    """The head's `HOST:PORT`; `auto` as Ray reads it. UserError when none is found."""
    if settings.address != "auto":
        return settings.address
    if env := os.environ.get("RAY_ADDRESS"):
        return env
    from ray._private.services import get_ray_address_from_environment

    try:
        found = get_ray_address_from_environment("auto", os.environ.get("RAY_TMPDIR"))
    except ConnectionError:
        found = None
    if not found:
        raise UserError(
            f'{_SETTING} is "auto" but no running Ray cluster was found on this machine: '
            "start one (ray start --head) or set the head's HOST:PORT in "
            "$COVEY_HOME/settings.json"
        )
    return str(found)


def check_cluster(settings: RaySettings) -> str:
    """The reachable head's address, or a one-line UserError."""
    if not ray_installed():
        raise UserError(
            'background.executor is "ray" but Ray is not installed: '
            "pip install 'covey[ray]', or set background.executor to \"local\""
        )
    address = resolve_address(settings)
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise UserError(
            f"{_SETTING}: no Ray cluster answers at {address} ({reason}); start it, fix the "
            'address in $COVEY_HOME/settings.json, or set background.executor to "local"'
        ) from None
    return address
