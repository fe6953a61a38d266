"""The Ray test cluster: one real 2-node cluster on loopback for the whole test session (its
start-up, ~15 s on 2 cores, is paid once), stopped by the pids it started.

A test that runs `covey` against it passes `cluster.env` (the shared auth token, the temp
dir) to the command, as a user's shell would have it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from covey.executors.ray_loopback import LoopbackCluster, start_loopback_cluster


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackCluster]:
    cluster = start_loopback_cluster(tmp_path_factory.mktemp("ray-cluster"), nodes=2)
    try:
        yield cluster
    finally:
        cluster.stop()


def use_cluster(
    home: Path,
    cluster: LoopbackCluster,
    monkeypatch: pytest.MonkeyPatch | None = None,
    **ray: object,
) -> None:
    """`$COVEY_HOME/settings.json`: background sessions run on `cluster`; with `monkeypatch`,
    the test's environment has the cluster's too (as a user's shell would)."""
    if monkeypatch is not None:
        for name, value in cluster.env.items():
            monkeypatch.setenv(name, value)
    settings = {"background": {"executor": "ray", "ray": {"address": cluster.address, **ray}}}
    (home / "settings.json").write_text(json.dumps(settings))
