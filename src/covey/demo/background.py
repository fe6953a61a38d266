"""The background part of `make demo`: three `covey --bg` sessions on the sample repository.

It dispatches them, polls `covey agents --json` and prints each state change, answers the one
that asks a question with `covey reply`, then prints the final table and each session's branch.
Every command is the real command line, run with the demo's own `COVEY_HOME`.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from covey import proc
from covey.git.repo import git

__all__ = ["SESSIONS", "DemoFailed", "run_background"]

SESSIONS = {
    "docs": "Write a README for calc with a usage section.",
    "tests": "Add tests for mul: zero and negative numbers.",
    "refactor": "Tidy up calc.py; ask me which style I want first.",
}
"""Name → prompt; the scripted model plays `<name>.yaml` from this package."""
ANSWER = "type hints"
"""What the demo replies to the session that asks."""
DEADLINE_S = 60.0
POLL_S = 0.3
FINISHED = ("completed", "failed", "stopped")


class DemoFailed(Exception):
    """A session failed, a command failed, or the demo ran out of time."""


class Covey:
    """Runs `covey ARGS` in the sample repository with the demo's environment."""

    def __init__(self, root: Path, env: Mapping[str, str]) -> None:
        self.root = root
        self.env = env

    def __call__(self, *args: str) -> str:
        run = proc.run(
            [sys.executable, "-m", "covey", *args], cwd=self.root, env=self.env, timeout_s=30
        )
        if not run.ok:
            said = (run.stderr or run.stdout).strip() or f"exit {run.exit_code}"
            raise DemoFailed(f"`covey {' '.join(args[:2])}` failed: {said}")
        return run.stdout

    def agents(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self("agents", "--json"))
        return rows


def run_background(root: Path, env: Mapping[str, str]) -> None:
    """Dispatch, watch, answer, report. Raises `DemoFailed` saying what went wrong."""
    covey = Covey(root, env)
    scripts = resources.files("covey.demo")
    print(
        "Background sessions run in the supervisor daemon, each in its own worktree and branch,"
        "\nwith permission mode acceptEdits (they may edit files; these scripts run no Bash)."
        f"\nTheir scripted models play {', '.join(n + '.yaml' for n in SESSIONS)} "
        f"from {scripts}.\n"
    )
    started = time.monotonic()
    for name, prompt in SESSIONS.items():
        model = f"scripted:{scripts.joinpath(name + '.yaml')}"
        shown = shlex.join(["covey", "--bg", prompt, "--name", name])
        print(f"$ {shown} --model scripted:…/{name}.yaml")
        print("  " + covey("--bg", prompt, "--name", name, "--model", model).strip())
    print(f"\n$ covey agents --json   # every {POLL_S} s; each change, timed from the first --bg\n")
    rows = _watch(covey, started)
    _report(root, rows)


def _watch(covey: Covey, started: float) -> list[dict[str, Any]]:
    """Poll until every session is finished; answer questions. The last rows, in order."""
    seen = dict.fromkeys(SESSIONS, "queued")  # what `covey --bg` left them in
    answered: set[str] = set()
    while True:
        rows = [r for r in covey.agents() if r["name"] in SESSIONS]
        elapsed = time.monotonic() - started
        for row in sorted(rows, key=lambda r: list(SESSIONS).index(r["name"])):
            name, state = row["name"], row["state"]
            if seen[name] != state:
                print(f"  {elapsed:4.1f}s  {name:<9} {seen[name]} → {state}")
                seen[name] = state
            if state in ("failed", "stopped"):
                raise DemoFailed(f"session {name} {state}: {row['reason']}")
            if state == "needs_input" and row["id"] not in answered:
                print(f"{'':19}asks: {row['question']}")
                print(f"{'':19}$ covey reply {name} {shlex.quote(ANSWER)}")
                print(f"{'':19}" + covey("reply", name, ANSWER).strip())
                answered.add(row["id"])
        if len(rows) == len(SESSIONS) and all(r["state"] in FINISHED for r in rows):
            return sorted(rows, key=lambda r: list(SESSIONS).index(r["name"]))
        if elapsed > DEADLINE_S:
            states = ", ".join(f"{n} {s}" for n, s in seen.items())
            raise DemoFailed(f"not finished after {DEADLINE_S:.0f} s ({states})")
        time.sleep(POLL_S)


def _report(root: Path, rows: list[dict[str, Any]]) -> None:
    print("\n$ covey agents --json   # as a table\n")
    print(f"  {'name':<9} {'state':<10} {'cost':>7}  {'branch':<21} summary")
    for row in rows:
        did = (row["summary"] or "").replace(f" · branch {row['branch']}", "")
        print(
            f"  {row['name']:<9} {row['state']:<10} ${row['cost_usd']:>6.4f}  "
            f"{row['branch'] or '-':<21} {did}"
        )
    print("\n$ git branch --list 'worktree-*'   # + : checked out in a worktree")
    print(git("branch", "--list", "worktree-*", cwd=root).rstrip())
    for row in rows:
        branch = row["branch"]
        print(f"\n$ git show --stat --format='%h %s' {branch}")
        print(git("show", "--stat", "--format=%h %s", branch, cwd=root).rstrip())
