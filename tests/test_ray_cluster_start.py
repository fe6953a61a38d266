"""`start_loopback_cluster` in a directory a previous cluster used: it waits for its own
nodes (their logs are appended to, and the old run's "ready" line is not theirs)."""

from __future__ import annotations

import socket
from pathlib import Path

from covey.executors.ray_loopback import start_loopback_cluster


def test_a_cluster_started_again_in_the_same_directory_waits_for_its_own_head(
    tmp_path: Path,
) -> None:
    (tmp_path / "node-0.log").write_text("This command will now block forever\n")  # an old run's
    with start_loopback_cluster(tmp_path, nodes=1) as cluster:
        host, port = cluster.address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=2):
            pass  # the head answers once the start returns
