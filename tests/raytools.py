"""The Ray test cluster: one real 2-node cluster on loopback for the whole test session (its
start-up, ~7-15 s on 2 cores, is paid once), stopped by the pids it started. Its health
checks are short (`FAST_FAILURE_DETECTION`): a node killed is found dead in seconds.

A test that runs `covey` against it passes `cluster.env` (the shared auth token, the temp
dir) to the command, as a user's shell would have it. Tests wait by polling (`wait_until`)
and hold a node with a session waiting on a file (`held_until`), never by fixed sleeps."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bgtools import DEADLINE_S, agents
from covey.executors.ray_loopback import (
    FAST_FAILURE_DETECTION,
    LoopbackCluster,
    start_loopback_cluster,
)

POLL_S = 0.05


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackCluster]:
    directory = tmp_path_factory.mktemp("ray-cluster")
    cluster = start_loopback_cluster(directory, nodes=2, system_config=FAST_FAILURE_DETECTION)
    try:
        yield cluster
    finally:
        cluster.stop()


TEAMS_ON = {"env": {"COVEY_EXPERIMENTAL_AGENT_TEAMS": "1"}}
"""Settings that turn agent teams on (for `use_cluster(..., settings=TEAMS_ON)`)."""


def use_cluster(
    home: Path,
    cluster: LoopbackCluster,
    monkeypatch: pytest.MonkeyPatch | None = None,
    settings: dict[str, Any] | None = None,
    **ray: object,
) -> None:
    """`$COVEY_HOME/settings.json`: background sessions run on `cluster` (and `settings`
    besides); with `monkeypatch`, the test's environment has the cluster's too (as a user's
    shell would)."""
    if monkeypatch is not None:
        for name, value in cluster.env.items():
            monkeypatch.setenv(name, value)
    background = {"executor": "ray", "ray": {"address": cluster.address, **ray}}
    (home / "settings.json").write_text(json.dumps({**(settings or {}), "background": background}))


def held_until(release: Path) -> dict[str, object]:
    """A scripted turn whose Bash call waits until `release` exists (the session needs
    `--permission-mode bypassPermissions`): it holds its node until the test lets it go,
    instead of a fixed delay that a slow machine outlasts or a fast one wastes."""
    command = f"while [ ! -e {release} ]; do sleep 0.05; done"
    return {"tool_calls": [{"name": "Bash", "input": {"command": command}}]}


def row_of(repo: Path, sid: str) -> dict[str, Any]:
    """The session's row as `covey agents --json` shows it."""
    return next(r for r in agents(repo) if r["id"] == sid)


def wait_until(what: str, check: Callable[[], object]) -> None:
    """Poll `check` every `POLL_S` until it is true; AssertionError after `DEADLINE_S`."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(POLL_S)
    raise AssertionError(f"timed out waiting for {what}")
