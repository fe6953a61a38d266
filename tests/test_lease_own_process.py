"""A holder that is this very process is alive without asking the kernel: the shared rate
limiter asks about every queued request's holder on each look, and in the supervisor those
are all its own sessions (a hundred `kill(pid, 0)` and `/proc` reads a request)."""

from __future__ import annotations

import os

import pytest

from covey.sessions import lease
from covey.sessions.lease import holder_alive, new_host_id


def test_this_process_is_alive_without_a_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    def probed(*_: object) -> bool:
        raise AssertionError("probed its own process")

    monkeypatch.setattr(lease, "_zombie", probed)
    monkeypatch.setattr(lease.os, "kill", probed)
    assert holder_alive(new_host_id())
    assert holder_alive(new_host_id("supervisor"))


def test_another_process_of_this_machine_is_still_probed() -> None:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = new_host_id().split(":")[0]
    assert not holder_alive(f"{host}:{child.pid}:abcdef")
    assert holder_alive(f"{host}:{os.getpid()}:abcdef")
