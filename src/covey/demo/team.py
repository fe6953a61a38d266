"""`make demo` part 3: an agent team. A lead splits two jobs into tasks and starts two
teammates, each owning its files; one teammate's edit of the other's file is refused; the lead
ends when both have reported. Then `covey team` shows the members and the task board."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from covey import proc
from covey.demo.background import DemoFailed
from covey.git.repo import diff

PROMPT = "Add a sub function and a changelog; use a team."


def run_team(root: Path, env: dict[str, str], show: Callable[[dict[str, Any]], None]) -> None:
    script = resources.files("covey.demo").joinpath("team.yaml")
    args = ["-p", PROMPT, "--model", f"scripted:{script}", "--permission-mode", "acceptEdits"]
    args += ["--output-format", "stream-json"]
    team_env = {**env, "COVEY_EXPERIMENTAL_AGENT_TEAMS": "1"}
    print("$ COVEY_EXPERIMENTAL_AGENT_TEAMS=1 covey " + " ".join(_quoted(args)) + "\n")
    run = proc.run([sys.executable, "-m", "covey", *args], cwd=root, env=team_env, timeout_s=120)
    lead = ""
    for line in run.stdout.splitlines():
        event = json.loads(line)
        lead = event.get("session_id", lead)
        show(event)
    if run.exit_code != 0:
        raise DemoFailed(f"the team run exited {run.exit_code}: {run.stderr.strip()}")
    print(f"\n$ covey team {lead[:8]}")
    shown = proc.run(
        [sys.executable, "-m", "covey", "team", lead], cwd=root, env=team_env, timeout_s=60
    )
    print(shown.stdout.rstrip() or shown.stderr.rstrip())
    print("\n$ git diff --stat\n" + diff(root, "--stat").rstrip())


def _quoted(args: list[str]) -> list[str]:
    return [a if " " not in a else repr(a) for a in args]
