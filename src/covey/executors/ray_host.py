"""The per-node Ray actor that hosts sessions: one detached, named `SessionHost` per node.

    host = ensure_host(node_id, env_vars, namespace)     # get or create, hard-pinned to the node
    await host.start.remote(job, pack_ref); await host.collect.remote(sid, cursor) ...

One actor per node (not per session: a Python worker costs ~48 MiB and ~0.4 s of CPU,
measured), `num_cpus=0`, `max_concurrency` high (an async actor: every call and every session
is a task on its one event loop), `max_restarts=-1` (a crashed worker comes back empty; the
supervisor starts its sessions again from the user's store), `lifetime="detached"` (it
outlives the supervisor, its driver: sessions keep running and buffer on the node while no
supervisor pumps). Its name is `covey-host-<node id>` in the user's namespace, so the next
supervisor finds it. Credentials are its `runtime_env` environment variables, set when the
actor is made: they never travel through the object store or reach a transcript.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from covey.config import credential_names, user_settings
from covey.executors.ray_node import NodeJob, NodeSessions
from covey.executors.replica import Batch, Cursor
from covey.git.bundles import WorkspacePack
from covey.proc import CREDENTIAL_VARS
from covey.sessions.background import supervisor_environ
from covey.store.commands import CommandRow

__all__ = [
    "HOST_PREFIX",
    "SessionHost",
    "ensure_host",
    "existing_host",
    "host_environment",
    "host_name",
    "user_namespace",
]

HOST_PREFIX = "covey-host-"
MAX_CONCURRENCY = 10_000


def user_namespace(home: Path) -> str:
    """The Ray namespace of one user's covey (its `$COVEY_HOME`): its hosts are its own."""
    return "covey-" + hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]


def host_name(node_id: str) -> str:
    return HOST_PREFIX + node_id


@ray.remote
class SessionHost:
    def __init__(self, namespace: str) -> None:
        node_id = ray.get_runtime_context().get_node_id()
        root = Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir())
        self.node_id = node_id
        self.node = NodeSessions(root / "covey-nodes" / namespace / node_id[:16])

    async def start(self, job: NodeJob, pack: WorkspacePack) -> str:
        await self.node.start(job, pack)
        return self.node_id

    async def collect(self, sid: str, after: Cursor) -> Batch:
        return self.node.collect(sid, after)

    async def acknowledge(self, sid: str, cursor: Cursor) -> None:
        self.node.acknowledge(sid, cursor)

    async def forward(self, commands: list[CommandRow]) -> None:
        self.node.forward(commands)

    async def status(self, sid: str) -> str:
        return self.node.status(sid)

    async def epoch(self, sid: str) -> int | None:
        return self.node.epoch(sid)

    async def stop(self, sid: str, cause: str = "stop") -> None:
        await self.node.stop(sid, cause)

    async def drop(self, sid: str) -> None:
        await self.node.drop(sid)

    async def load(self) -> dict[str, Any]:
        return {"node": self.node_id, "pid": os.getpid(), **self.node.load()}


def ensure_host(node_id: str, env_vars: dict[str, str], namespace: str) -> Any:
    """The node's host actor, made if missing (a live one keeps the environment it was made
    with)."""
    return SessionHost.options(  # type: ignore[attr-defined]
        name=host_name(node_id),
        namespace=namespace,
        lifetime="detached",
        get_if_exists=True,
        num_cpus=0,
        max_concurrency=MAX_CONCURRENCY,
        max_restarts=-1,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        runtime_env={"env_vars": env_vars},
    ).remote(namespace)


def existing_host(node_id: str, namespace: str) -> Any | None:
    """The node's host actor if it exists (a lookup, nothing is made)."""
    try:
        return ray.get_actor(host_name(node_id), namespace=namespace)
    except ValueError:
        return None


def host_environment() -> dict[str, str]:
    """The provider keys the host actors get in their environment (`runtime_env`), as the
    supervisor has them (its environment, `credentials.json`, the secrets of the settings
    `env`), and nothing else of it."""
    environ = supervisor_environ()
    names = credential_names(user_settings())
    return {k: v for k, v in environ.items() if CREDENTIAL_VARS.fullmatch(k) or k in names}
