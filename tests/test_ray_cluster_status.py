"""`covey cluster status` against a cluster that stops answering: every Ray call it makes is
bounded, so a head that was stopped (its GCS frozen by SIGSTOP: the port still accepts, nobody
answers) or killed is one line and exit 2, never a hang."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from clitools import covey
from covey.executors.ray_loopback import start_loopback_cluster
from raytools import use_cluster

TIMEOUT_S = 3


def test_status_of_a_cluster_whose_head_stops_answering_is_one_line_exit_2(
    git_repo: Path, covey_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COVEY_RAY_TIMEOUT_S", str(TIMEOUT_S))
    with start_loopback_cluster(tmp_path / "frozen", nodes=1) as cluster:
        use_cluster(covey_home, cluster, monkeypatch)
        assert covey("cluster", "status", "--json", cwd=git_repo).code == 0
        gcs = cluster.nodes[0].pid_of("gcs_server")
        assert gcs is not None
        os.kill(gcs, signal.SIGSTOP)
        try:
            started = time.monotonic()
            frozen = covey("cluster", "status", "--json", cwd=git_repo)
            took = time.monotonic() - started
        finally:
            os.kill(gcs, signal.SIGCONT)
        address = cluster.address
        cluster.stop_node(0)  # the head killed with SIGKILL, with everything of its node
        killed = covey("cluster", "status", cwd=git_repo)
    assert frozen.code == 2 and frozen.out == ""
    assert frozen.err.strip() == (
        f"covey: error: background.ray.address: the Ray cluster at {address} accepted the "
        f"connection but did not answer within {TIMEOUT_S} s (its head stopped or "
        f"overloaded?); check it with `ray status --address {address}`, or set "
        "COVEY_RAY_TIMEOUT_S to wait longer"
    )
    assert took < TIMEOUT_S + 15  # Python and Ray's import, then the bound
    assert killed.code == 2 and killed.out == ""
    assert killed.err.strip().startswith(
        f"covey: error: background.ray.address: no Ray cluster answers at {address} "
    )
    assert len(killed.err.strip().splitlines()) == 1
