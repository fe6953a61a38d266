"""`make demo`: a scripted agent fixes a bug in a sample repository it creates, offline.

It runs the real command line, `covey -p … --output-format stream-json`, and tells what the
agent did from the event stream, then shows the change with git. Then three background
sessions work on the same repository (`background.py`), and a lead with two teammates shares
a task list (`team.py`). Everything runs with a `COVEY_HOME` of
its own in the demo's temporary directory, and the supervisor is stopped at the end.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from covey import proc
from covey.demo.background import DemoFailed, run_background
from covey.demo.team import run_team
from covey.git.repo import commit_all, diff, init_repo

SAMPLE = {
    "calc.py": '"""A tiny calculator."""\n\n\ndef add(a, b):\n    return a - b\n\n\n'
    "def mul(a, b):\n    return a * b\n",
    ".gitignore": ".covey/worktrees/\n",
    "tests/__init__.py": "",
    "tests/test_calc.py": "import unittest\n\nfrom calc import add, mul\n\n\n"
    "class TestCalc(unittest.TestCase):\n"
    "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n"
    "    def test_add_zero(self):\n        self.assertEqual(add(0, 0), 0)\n\n"
    "    def test_mul(self):\n        self.assertEqual(mul(2, 3), 6)\n",
}
PROMPT = "The tests fail. Find the bug, fix it, add a regression test, and check the tests pass."


def make_sample(root: Path) -> None:
    for rel, text in SAMPLE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    init_repo(root)
    commit_all(root, "sample project with a bug")


def show(event: dict[str, Any]) -> None:
    kind = event["type"]
    if kind == "system" and event.get("subtype") == "init":
        print(f"  session {event['session_id'][:8]} · model {event['model']}")
        print(f"  tools: {', '.join(event['tools'])} · mode {event['permissionMode']}\n")
    elif kind == "assistant":
        for block in event["message"]["content"]:
            if block["type"] == "text":
                for i, line in enumerate(block["text"].splitlines()):
                    print(f"{'●' if i == 0 else ' '} {line}")
            elif block["type"] == "tool_use":
                args = block["input"]
                arg = args.get("command") or args.get("file_path") or json.dumps(args)
                print(f"  → {block['name']}({arg})")
    elif kind == "user":
        for block in event["message"]["content"]:
            if block["type"] == "text":  # a message from a teammate, or its idle report
                print("  ✉ " + block["text"].strip().splitlines()[0][:100])
                continue
            lines = block["content"].strip("\n").splitlines() or ["(no output)"]
            mark = "✗" if block.get("is_error") else "←"
            for line in lines[:4]:
                print(f"    {mark} {line}")
            if len(lines) > 4:
                print(f"      … {len(lines) - 4} more lines")
    elif kind == "result":
        print(
            f"\nresult: {event['subtype']} · {event['num_turns']} turns · "
            f"{len(event['permission_denials'])} permission denials · "
            f"{event['usage']['input_tokens'] + event['usage']['output_tokens']:,} tokens · "
            f"${event['total_cost_usd']:.4f}"
        )


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="covey-demo-"))
    root, home = base / "calc", base / "covey-home"
    make_sample(root)
    bin_dir = str(Path(sys.executable).parent)
    env = {"PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "COVEY_HOME": str(home)}
    print(f"covey demo · sample repo at {root} (calc.add has a bug; 1 of 3 tests fails)")
    print(f"COVEY_HOME={home} (the demo's own: your ~/.covey is not touched)\n")
    try:
        code = fix_the_bug(root, env)
        if code == 0:
            print(
                "\n$ git add -A && git commit -m 'fix add'   # the background sessions start here"
            )
            commit_all(root, "fix add")
            print("\n── Part 2: three agents in the background " + "─" * 30 + "\n")
            run_background(root, env)
            print("\n── Part 3: a team: a lead and two teammates " + "─" * 27 + "\n")
            run_team(root, env, show)
            covey = Path(bin_dir) / "covey"
            print(f"\nLook around: cd {root} && COVEY_HOME={home} {covey} agents")
    except DemoFailed as e:
        print(f"\ndemo failed: {e}", file=sys.stderr)
        code = 1
    finally:
        proc.run([sys.executable, "-m", "covey", "daemon", "stop"], cwd=root, env=env, timeout_s=30)
    return code


def fix_the_bug(root: Path, env: dict[str, str]) -> int:
    script = resources.files("covey.demo").joinpath("fix_bug.yaml")
    args = [
        "-p",
        PROMPT,
        "--model",
        f"scripted:{script}",
        "--permission-mode",
        "acceptEdits",
        "--allowedTools",
        "Bash(python -m unittest *)",
        "--output-format",
        "stream-json",
    ]
    print("── Part 1: one agent fixes the bug " + "─" * 37 + "\n")
    print("$ covey " + " ".join(a if " " not in a else repr(a) for a in args) + "\n")
    run = proc.run([sys.executable, "-m", "covey", *args], cwd=root, env=env, timeout_s=120)
    for line in run.stdout.splitlines():
        show(json.loads(line))
    if run.exit_code != 0:
        print(f"covey exited {run.exit_code}: {run.stderr.strip()}", file=sys.stderr)
        return run.exit_code
    print("\n$ git diff --stat\n" + diff(root, "--stat").rstrip())
    print("\n$ git diff calc.py\n" + diff(root, "calc.py").rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
