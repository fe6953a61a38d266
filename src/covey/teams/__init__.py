"""Agent teams (experimental, off by default): a lead session, named teammate sessions that run
concurrently on the lead's host, a shared task list and a mailbox, all in the store.

    lead ── Agent{name, prompt, owns?} ──▶ TeamRuntime.launch: a `teammate` session (parent =
      │                                    lead) hosted by a SessionHost, as an asyncio task
      │ TaskCreate/TaskUpdate/TaskGet/TaskList/SendMessage (tools.py) ─▶ store.teams rows
      │ before each model call: MemberMailbox.collect ─▶ <teammate-message …> (marked delivered
      │                                  in the transaction that writes its transcript entry)
      └ turn end: the lead waits while a teammate works or mail to it is pending, then shuts
        the team down; a teammate's turn end sends <teammate-idle> to the lead and waits for mail

On with `COVEY_EXPERIMENTAL_AGENT_TEAMS=1` in the environment or the settings `env` block
(`teams_enabled`). `join_team` (join.py) is what a session host calls; everything else hangs
off the agent's seams (`Mailbox`, `TeammateLauncher`, `ToolContext.file_owners`).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["TEAMS_ENV", "TEAM_TOOL_NAMES", "teams_enabled"]

TEAMS_ENV = "COVEY_EXPERIMENTAL_AGENT_TEAMS"
TEAM_TOOL_NAMES = ("TaskCreate", "TaskUpdate", "TaskGet", "TaskList", "SendMessage")
"""Declared only when teams are on; coordination never asks for permission."""


def teams_enabled(env: Mapping[str, str]) -> bool:
    """Whether `env` (the session's: environment with settings `env` on top) turns teams on."""
    return env.get(TEAMS_ENV, "").strip().lower() in ("1", "true", "yes", "on")
