"""The Textual faces: the agent view (`covey agents`) and the session screen (`covey attach ID`,
plain `covey`). Layer 5: they read the store and act through `covey.sessions.control`."""

from __future__ import annotations

import sys
from pathlib import Path

from covey.errors import UserError

__all__ = ["run_agent_view", "run_session_screen"]


def _require_terminal(instead: str) -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError(f"this screen needs a terminal (stdin and stdout); {instead}")


def run_agent_view(
    cwd: Path,
    *,
    all_kinds: bool = False,
    model: str | None = None,
    permission_mode: str | None = None,
) -> None:
    """Open the agent view over the sessions in the store (until the user quits). `model` and
    `permission_mode` are the defaults of sessions dispatched from its input."""
    from covey.store import Store
    from covey.supervisor import ensure_supervisor
    from covey.tui.agent_view import AgentViewApp

    _require_terminal("for scripts use covey agents --json")
    ensure_supervisor()  # it also resumes the sessions a dead supervisor left
    with Store.open() as store:
        app = AgentViewApp(
            store,
            cwd,
            all_kinds=all_kinds,
            model=model,
            permission_mode=permission_mode,
            ensure_host=ensure_supervisor,
        )
        app.run()


def run_session_screen(
    cwd: Path,
    session: str | None = None,
    *,
    prompt: str | None = None,
    model: str | None = None,
    permission_mode: str | None = None,
    max_budget_usd: float | None = None,
) -> None:
    """Open the session screen: `session` (id, prefix or name) attached, or None for a new
    foreground session in `cwd` (`prompt`, if given, is its first message; `model` and
    `permission_mode` apply to it)."""
    from covey.sessions import control
    from covey.sessions.interactive import ForegroundHost
    from covey.store import Store
    from covey.supervisor import ensure_supervisor
    from covey.tui.session_app import SessionApp

    host: ForegroundHost | None = None
    with Store.open() as store:
        if session is not None:
            row = control.find(store, session)  # an unknown session is named first
            _require_terminal(f"use covey logs {row.id} -f")
            app = SessionApp(store, row.id, ensure_host=ensure_supervisor)
        else:
            _require_terminal('for a run without one use covey -p "..."')
            host = ForegroundHost(
                store,
                cwd,
                model=model,
                permission_mode=permission_mode,
                max_budget_usd=max_budget_usd,
            )
            app = SessionApp(store, host=host, initial_prompt=prompt, ensure_host=ensure_supervisor)
        handed_over = app.run()
    if handed_over:
        print(f"backgrounded · {handed_over} · see covey agents, covey attach {handed_over}")
    elif host is not None and host.session_id is not None:
        print(f"session {host.session_id} · continue it with covey attach {host.session_id}")
