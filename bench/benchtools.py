"""What several benchmarks share."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def start_fake_provider(
    script: Path, tmp: Path, extra: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], str]:
    """The fake provider serving `script`, in a process of its own (`extra`: more of its
    options); it and its base URL."""
    port_file = tmp / "fake.port"
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "covey.testing.fakeserver", "--script", str(script)),
            *("--port", "0", "--port-file", str(port_file)),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text().strip()):
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("the fake provider did not start")
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port_file.read_text().strip()}"
