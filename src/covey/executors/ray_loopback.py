"""A real Ray cluster of a few nodes on loopback, for the tests, CI and `bench/cluster.py`.

    cluster = start_loopback_cluster(tmp_dir, nodes=2)   # ~15 s on 2 cores
    ray.init(address=cluster.address)                     # with cluster.env in os.environ
    cluster.kill_raylet(1)                                # node 1 lost, as `kill -9` does it
    cluster.stop()                                        # every process it started, SIGKILL

Each node is one `ray start --block` in a session of its own (`proc.spawn_detached`), so every
process of that node (GCS, raylet, agents, workers, which Ray puts in process groups of their
own) shares that session id: stopping a node kills exactly those processes, never by name
(`ray stop` kills every Ray process of the machine, other people's clusters included).

What Ray needs here (measured, see shared/design/distributed.md §3.3): the head on 127.0.0.2
(Ray rewrites 127.0.0.1 to the host's primary address); token auth on with one shared
`RAY_AUTH_TOKEN` (Ray 2.60 turns it on by default and each node would make its own);
`RAY_TMPDIR` a short directory of its own under /tmp (its socket paths must stay under 108
bytes; removed by `stop`); usage stats off; no dashboard UI; every port picked free on
127.0.0.2 (so clusters of several people coexist), none in Ray's worker ports 10002–19999;
a custom resource `covey-node-<i>` per node; a small object store.

`system_config` goes to the head's `ray start --system-config` (Ray's internal settings, for
the whole cluster): the tests pass `FAST_FAILURE_DETECTION`, so a node killed is found dead
in a few seconds rather than Ray's ~15 (its health checks, tuned for real networks).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from covey.proc import spawn_detached

__all__ = [
    "FAST_FAILURE_DETECTION",
    "LOOPBACK_IP",
    "LoopbackCluster",
    "LoopbackNode",
    "session_pids",
    "start_loopback_cluster",
]

LOOPBACK_IP = "127.0.0.2"
START_TIMEOUT_S = 90.0
_READY = "This command will now block forever"
_OBJECT_STORE_BYTES = 80 * 1024 * 1024
_HEAD_ONLY = ("--include-dashboard=false", "--disable-usage-stats")
FAST_FAILURE_DETECTION: dict[str, int] = {
    "health_check_initial_delay_ms": 1000,
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 5000,  # a busy 2-core machine: never a live node found dead
    "health_check_failure_threshold": 3,
}
"""Ray's node health checks for a loopback cluster: a killed raylet refuses at once, so a
lost node is found dead after ~3 failed checks a second apart; a live one that is merely slow
would have to miss three 5 s answers in a row (Ray's defaults: 3 s apart, 10 s, 5 times)."""


@dataclass
class LoopbackNode:
    index: int
    pid: int
    """The `ray start --block` process."""
    session: int
    """The session id every process of this node shares."""
    log: Path
    resource: str
    """The custom resource only this node has (`covey-node-<index>`)."""

    def pids(self) -> list[int]:
        return session_pids(self.session)

    def raylet_pid(self) -> int | None:
        return self.pid_of("raylet")

    def pid_of(self, program: str) -> int | None:
        """The pid of this node's `program` (`raylet`, `gcs_server` on the head), if running."""
        return next((p for p in self.pids() if _comm(p) == program), None)


@dataclass
class LoopbackCluster:
    address: str
    """The head's GCS `HOST:PORT`, for `ray.init(address=…)` and `background.ray.address`."""
    env: dict[str, str]
    """What a driver or another node needs in its environment (auth token, temp dir)."""
    nodes: list[LoopbackNode] = field(default_factory=list)
    temp_dir: Path = Path()

    def kill_raylet(self, index: int) -> None:
        """The node's raylet gets SIGKILL (the cluster sees the node die)."""
        pid = self.nodes[index].raylet_pid()
        if pid is None:
            raise RuntimeError(f"node {index} has no raylet")
        os.kill(pid, signal.SIGKILL)

    def add_node(self, directory: Path, cpus: int = 1) -> LoopbackNode:
        """One more worker node (its output in `directory/node-<i>.log`), joined and ready."""
        role = [f"--address={self.address}"]
        node = _start_node(directory, len(self.nodes), role, self.env, cpus)
        self.nodes.append(node)
        _wait_ready(node)
        return node

    def stop_node(self, index: int) -> None:
        _kill_session(self.nodes[index].session)

    def stop(self) -> None:
        """SIGKILL every process the cluster started, workers first, then the head."""
        for node in reversed(self.nodes):
            _kill_session(node.session)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LoopbackCluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def start_loopback_cluster(
    directory: Path,
    *,
    nodes: int = 2,
    cpus_per_node: int = 1,
    system_config: dict[str, int] | None = None,
) -> LoopbackCluster:
    """Start a head and `nodes - 1` workers under `directory` (made if missing); each node's
    output goes to `directory/node-<i>.log`. On any failure what was started is stopped."""
    directory.mkdir(parents=True, exist_ok=True)
    # Ray's unix sockets live under it, and their paths must stay under 108 bytes
    temp = Path(tempfile.mkdtemp(prefix="covey-ray-", dir="/tmp"))
    env = {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_TMPDIR": str(temp),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    port = _free_port()
    cluster = LoopbackCluster(f"{LOOPBACK_IP}:{port}", env, temp_dir=temp)
    try:
        for index in range(nodes):
            role = [f"--address={cluster.address}"]
            if not index:
                role = ["--head", f"--port={port}", *_HEAD_ONLY, f"--dashboard-port={_free_port()}"]
                if system_config:
                    role.append(f"--system-config={json.dumps(system_config)}")
            node = _start_node(directory, index, role, env, cpus_per_node)
            cluster.nodes.append(node)
            if not index:
                _wait_ready(node)  # the workers join a head that answers
        for node in cluster.nodes[1:]:
            _wait_ready(node)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _start_node(
    directory: Path, index: int, role: list[str], env: dict[str, str], cpus: int
) -> LoopbackNode:
    resource = f"covey-node-{index}"
    ports = [
        f"--{name}={_free_port()}"
        for name in (
            "node-manager-port",
            "object-manager-port",
            "dashboard-agent-listen-port",
            "dashboard-agent-grpc-port",
            "metrics-export-port",
            "runtime-env-agent-port",
        )
    ]
    argv = [
        str(Path(sys.executable).with_name("ray")),
        "start",
        "--block",
        *role,
        f"--node-ip-address={LOOPBACK_IP}",
        f"--num-cpus={cpus}",
        f'--resources={{"{resource}": 1}}',
        f"--object-store-memory={_OBJECT_STORE_BYTES}",
        f"--temp-dir={env['RAY_TMPDIR']}",
        *ports,
    ]
    log = directory / f"node-{index}.log"
    log.unlink(missing_ok=True)  # a previous run's "ready" line must not count for this one
    pid = spawn_detached(argv, cwd=directory, env=env, log_path=log)
    return LoopbackNode(index, pid, os.getsid(pid), log, resource)


def _wait_ready(node: LoopbackNode) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = node.log.read_text(errors="replace") if node.log.exists() else ""
        if _READY in text:
            return
        if not _alive(node.pid):
            break
        time.sleep(0.2)
    tail = node.log.read_text(errors="replace")[-2000:] if node.log.exists() else ""
    raise RuntimeError(f"ray node {node.index} did not start (log {node.log}):\n{tail}")


def _free_port() -> int:
    """A port free on the loopback address now; the kernel's ephemeral range (32768+) is
    outside Ray's worker ports."""
    with socket.socket() as s:
        s.bind((LOOPBACK_IP, 0))
        return int(s.getsockname()[1])


def session_pids(session: int) -> list[int]:
    """Live (not zombie) processes of session `session`."""
    pids: list[int] = []
    with os.scandir("/proc") as entries:
        candidates = [int(e.name) for e in entries if e.name.isdigit()]
    for pid in candidates:
        fields = _stat(pid)
        if fields and int(fields[3]) == session and fields[0] not in (b"Z", b"X"):
            pids.append(pid)
    return pids


def _kill_session(session: int) -> None:
    deadline = time.monotonic() + 10.0
    while (pids := session_pids(session)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _stat(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in (b"Z", b"X")


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
