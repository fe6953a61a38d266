"""The Textual faces: the agent view (`covey agents`) and the session screen (`covey attach ID`,
plain `covey`). Layer 5: they read the store and act through `covey.sessions.control`."""

from __future__ import annotations

from pathlib import Path

__all__ = ["run_agent_view", "run_session_screen"]


def run_agent_view(
    cwd: Path,
    *,
    all_kinds: bool = False,
    model: str | None = None,
    permission_mode: str | None = None,
) -> None:
    """Open the agent view over the sessions in the store (until the user quits). `model` and
    `permission_mode` are the defaults of sessions dispatched from its input."""
    raise NotImplementedError("the agent view is being built")


def run_session_screen(cwd: Path, session: str | None = None) -> None:
    """Open the session screen: `session` (id, prefix or name) attached, or None for a new
    foreground session in `cwd`."""
    raise NotImplementedError("the session screen is being built")
