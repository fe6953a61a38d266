"""A real terminal for the TUI's tests: tmux on a server of the test's own, and waiting for
what the screen shows."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clitools import covey

DEADLINE_S = 60.0


@pytest.fixture
def tmux(git_repo: Path) -> Iterator[Callable[..., str]]:
    """Runs tmux on a server of this test's own; the server and the supervisor that
    `covey agents` started are stopped at the end."""
    socket = f"covey-test-{os.getpid()}-{time.monotonic_ns()}"

    def run(*args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=30
        )
        return done.stdout if done.returncode == 0 else ""

    yield run
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=30)
    stopped = covey("daemon", "stop", cwd=git_repo)
    assert stopped.code == 0, stopped.err


def wait_for(read: Callable[[], str], condition: Callable[[str], bool], what: str) -> str:
    deadline = time.monotonic() + DEADLINE_S
    seen = read()
    while not condition(seen):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen:\n{seen}")
        time.sleep(0.1)
        seen = read()
    return seen
