"""The budget package (layer 4) is injected downwards, never imported from below: the adapters
see only the `RateLimiter` protocol, the agent only its `request_guard`."""

from __future__ import annotations

import subprocess
import sys

LAYER_4 = ("covey.budget", "covey.sessions", "covey.supervisor", "covey.teams")
BELOW = (
    "covey.models.registry",
    "covey.models.anthropic",
    "covey.models.openai",
    "covey.agent.loop",
)


def test_adapters_and_agent_import_no_budget_or_sessions() -> None:
    code = (
        f"import sys\nLAYER_4 = {LAYER_4!r}\n"
        + "".join(f"import {m}\n" for m in BELOW)
        + "print(sorted(m for m in sys.modules if m.startswith(LAYER_4)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_session_host_builds_the_budget_and_the_limiter() -> None:
    import covey.sessions.host as host

    assert host.SessionBudget.__module__ == "covey.budget.spend_limits"
    assert host.shared_limiter.__module__ == "covey.budget.rate_limiter"
