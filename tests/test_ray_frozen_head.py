"""A Ray head that accepts connections but does not answer (its GCS frozen with SIGSTOP:
the dispatch's reachability check passes, Ray's client would retry for minutes): the
supervisor's calls are bounded, so the session becomes `interrupted` naming the cause, never
a session silently stuck in `queued` nor a supervisor hung in `ray.init`."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bgtools import background, supervisor, write_script  # noqa: F401  (fixture)
from covey.executors.ray_loopback import LoopbackCluster
from raytools import row_of, use_cluster, wait_until


def test_a_frozen_head_interrupts_the_session_with_the_reason(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
    ray_cluster: LoopbackCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = supervisor
    use_cluster(covey_home, ray_cluster, monkeypatch)
    monkeypatch.setenv("COVEY_RAY_TIMEOUT_S", "3")  # the supervisor started below inherits it
    model = write_script(tmp_path / "s.yaml", [{"text": "done"}])
    gcs = ray_cluster.nodes[0].pid_of("gcs_server")
    assert gcs is not None
    os.kill(gcs, signal.SIGSTOP)
    try:
        sid = background(repo, "work", "--model", model)
        wait_until("the session interrupted", lambda: row_of(repo, sid)["state"] == "interrupted")
    finally:
        os.kill(gcs, signal.SIGCONT)
    reason = str(row_of(repo, sid)["reason"])
    assert f"the Ray cluster at {ray_cluster.address} accepted the connection" in reason
    assert "did not answer within 3 s" in reason
    assert reason.endswith(f"covey respawn {sid} runs it again")
