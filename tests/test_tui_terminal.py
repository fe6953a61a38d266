"""`covey agents` in a real terminal (tmux): what is on screen, the title, and `q`."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from covey.store import Store
from tmuxtools import wait_for
from tui_seed import seed_session

QUESTION = {"kind": "question", "text": "Which database?", "options": ["sqlite", "postgres"]}

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def test_covey_agents_in_tmux(tmux: Callable[..., str], git_repo: Path, covey_home: Path) -> None:
    with Store.open() as store:
        seed_session(store, git_repo, name="needs-db-choice", state="needs_input", pending=QUESTION)
        seed_session(store, git_repo, name="shipped-it", state="completed", reason="end_turn")
    command = f"cd {git_repo} && {sys.executable} -m covey agents"
    tmux("new-session", "-d", "-x", "120", "-y", "30", "-e", f"COVEY_HOME={covey_home}", command)

    def screen() -> str:
        return tmux("capture-pane", "-p")

    seen = wait_for(screen, lambda s: "needs-db-choice" in s, "the agent view")
    for header in ("Needs input (1)", "Working (0)", "Idle (0)", "Completed (1)"):
        assert header in seen
    assert "shipped-it" in seen
    title = wait_for(
        lambda: tmux("display-message", "-p", "#{pane_title}"),
        lambda t: "awaiting input" in t,
        "the terminal title",
    )
    assert title.strip() == "1 awaiting input · covey agents"
    tmux("send-keys", "q")
    wait_for(lambda: tmux("list-sessions"), lambda s: s == "", "covey agents to quit")


def test_slash_usage_and_clear_in_the_session_screen_in_tmux(
    tmux: Callable[..., str], git_repo: Path, covey_home: Path
) -> None:
    script = git_repo.parent / "script.yaml"
    script.write_text('turns:\n  - text: "first answer"\n  - text: "second answer"\n')
    command = f"cd {git_repo} && {sys.executable} -m covey --model scripted:{script}"
    tmux("new-session", "-d", "-x", "120", "-y", "30", "-e", f"COVEY_HOME={covey_home}", command)

    def screen() -> str:
        return tmux("capture-pane", "-p")

    def type_line(text: str) -> None:
        tmux("send-keys", "-l", text)
        tmux("send-keys", "Enter")

    wait_for(screen, lambda s: "what should the agent do?" in s, "the session screen")
    type_line("hello there")
    wait_for(screen, lambda s: "● first answer" in s, "the answer")
    type_line("/usage")
    seen = wait_for(screen, lambda s: "1 requests" in s, "the usage")
    assert "cache read" in seen and "context:" in seen
    type_line("/clear")
    seen = wait_for(screen, lambda s: "fresh session: the next prompt starts it" in s, "clear")
    assert "● first answer" not in seen and "new session" in seen
    tmux("send-keys", "C-c")
    tmux("send-keys", "C-c")
    wait_for(lambda: tmux("list-sessions"), lambda s: s == "", "covey to quit")
