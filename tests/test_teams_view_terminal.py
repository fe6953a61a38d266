"""`covey agents` in a real terminal (tmux) with a team: the teammate rows beneath the lead,
the task board in the lead's peek, and a teammate's own peek."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from covey.store import Store
from teamview_seed import seed_team
from tmuxtools import wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def test_teammates_and_the_board_in_tmux(
    tmux: Callable[..., str], git_repo: Path, covey_home: Path
) -> None:
    with Store.open() as store:
        seed_team(store, git_repo)
    command = f"cd {git_repo} && {sys.executable} -m covey agents"
    tmux("new-session", "-d", "-x", "120", "-y", "40", "-e", f"COVEY_HOME={covey_home}", command)

    def screen() -> str:
        return tmux("capture-pane", "-p")

    seen = wait_for(screen, lambda s: "alice" in s, "the agent view with the team")
    lines = seen.splitlines()
    lead_at = next(i for i, line in enumerate(lines) if "team-lead-run" in line)
    assert "├ ✻ alice" in lines[lead_at + 1]
    assert "working · #1 Write the parser" in lines[lead_at + 1]
    assert "└ ◌ bob" in lines[lead_at + 2]
    tmux("send-keys", "Space")  # peek at the lead (the cursor starts on it)
    seen = wait_for(screen, lambda s: "tasks (3):" in s, "the task board in the peek")
    board = [line for line in seen.splitlines() if "#2 " in line and "Test the parser" in line]
    assert board and "pending" in board[0] and "blocked by #1" in board[0]
    assert any(
        "#1 " in line and "in_progress" in line and "alice" in line for line in seen.splitlines()
    )
    tmux("send-keys", "Escape")  # on its own: an Escape followed at once by Down is Alt+Down
    wait_for(screen, lambda s: "tasks (3):" not in s, "the peek to close")
    tmux("send-keys", "Down")  # the cursor goes onto alice's row
    tmux("send-keys", "Space")
    wait_for(screen, lambda s: "alice · working" in s, "alice's peek")
    tmux("send-keys", "C-c")
    wait_for(lambda: tmux("list-sessions"), lambda s: s == "", "covey agents to quit")
