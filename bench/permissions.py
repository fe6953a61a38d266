"""What checking a Bash command costs now that it is parsed with tree-sitter-bash.

    .venv/bin/python bench/permissions.py [--repeat 2000]

Prints a table: the one-time cost of loading the grammar (paid by the first Bash call of a
process, never by `covey --help`), and per command the parse alone and the whole permission
decision, for a short, a typical and a long compound command line.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from covey.tools import BashTool
from covey.tools.permissions import PermissionPolicy, _analysis
from covey.tools.shell import analyze_command

COMMANDS = {
    "short (`git status`)": "git status",
    "typical (pipeline, substitution)": "git log --oneline -n 20 | grep -v wip > log.txt",
    "long (12 commands, nested bash -c)": (
        "set -e; cd build && cmake .. && make -j4 2>&1 | tee make.log; "
        'for f in $(git diff --name-only HEAD~1); do ruff check "$f" || echo "bad $f"; done; '
        "bash -c 'npm ci && npm test -- --coverage' && timeout 60 pytest -q -x tests/"
    ),
}


_FIRST_PARSE = """
import time
import covey.tools.permissions
from covey.tools.shell import analyze_command
start = time.perf_counter()
analyze_command("ls")
print(time.perf_counter() - start)
"""


def first_parse() -> float:
    """Seconds the first parse of a new process takes: importing tree-sitter and its bash
    grammar and building the parser (median of 5 processes)."""
    runs = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", _FIRST_PARSE], capture_output=True, text=True)
        runs.append(float(out.stdout))
    return statistics.median(runs)


def per_call(fn: object, repeat: int) -> float:
    """Median seconds of `fn()` over `repeat` calls, in batches of 50."""
    samples = []
    for _ in range(max(1, repeat // 50)):
        start = time.perf_counter()
        for _ in range(50):
            fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - start) / 50)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2000)
    repeat = parser.parse_args().repeat
    rows: list[tuple[str, str]] = []
    rows.append(("first parse in a process (loads the grammar)", f"{first_parse() * 1000:.1f} ms"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        policy = PermissionPolicy(
            "default", ["Bash(git *)", "Bash(grep *)"], [], ["Bash(rm:*)"], root, root
        )
        bash = BashTool()
        for label, command in COMMANDS.items():
            parse = per_call(lambda c=command: analyze_command(c), repeat)

            def decide(c: str = command) -> None:
                _analysis.cache_clear()
                policy.decide(bash, {"command": c})

            whole = per_call(decide, repeat)
            rows.append((f"parse, {label}", f"{parse * 1e6:.0f} µs"))
            rows.append((f"decide (parse included), {label}", f"{whole * 1e6:.0f} µs"))
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure'.ljust(width)} | value |")
    print(f"|{'-' * (width + 2)}|---|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()
