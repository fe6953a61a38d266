"""The shared rate limiter: N concurrent `covey -p` sessions against a provider that enforces
a rate window, with the limiter off (each session retries its own 429s, honouring
`retry-after`) and on, side by side in one run.

    .venv/bin/python bench/ratelimit.py [--sessions 12] [--window 5] [--tokens 16000] [--reads 3]

The provider is the fake server (`covey.testing.fakeserver`) speaking the Anthropic API with
`RateWindow(window, input_tokens=tokens)`: at most `tokens` input tokens per `window`
seconds, 429 with `retry-after` beyond, the real `anthropic-ratelimit-*` headers on every
response. Each session reads `reads` files, one model turn each, then answers.

Figures per mode:
- 429s: requests the provider refused (= requests wasted); requests: all it received;
- ideal: the time the limit itself imposes on the work that went through: the input tokens it
  admitted fill ceil(tokens / limit) windows, so the last request can go at the earliest at
  the start of the last of them, (windows - 1) × `window` seconds after the start of the
  window of the first request;
- wall: from the start of the window of the provider's first request to its last request
  (the sessions' model traffic; process start-up, which on a loaded machine spreads the
  sessions out, is shown apart);
- wall / ideal (target with the limiter on: <= 1.3);
- first requests spread: from the first session's first request to the last one's (on a
  loaded machine the sessions start far apart, and the limit binds only once most run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from covey.models.script import Script
from covey.testing.fakeserver import FakeServer, RateWindow

TARGET_ON = 1.3


def _script(reads: int) -> dict[str, Any]:
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "Read", "input": {"file_path": f"notes{i}.txt"}}]}
        for i in range(reads)
    ]
    return {"turns": [*turns, {"text": "done"}]}


def _repo(root: Path, reads: int) -> Path:
    repo = root / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for i in range(reads):
        (repo / f"notes{i}.txt").write_text(f"notes number {i}\n" * 20)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b", "commit",
         "-q", "--allow-empty", "-m", "init"],
        check=True,
    )  # fmt: skip
    return repo


def run_mode(limiter: bool, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="covey-bench-rl-") as tmp:
        root = Path(tmp)
        repo = _repo(root, args.reads)
        home = root / "home"
        home.mkdir(mode=0o700)
        (home / "settings.json").write_text(json.dumps({"rateLimits": {"enabled": limiter}}))
        window = RateWindow(args.window, input_tokens=args.tokens)
        with FakeServer(Script.model_validate(_script(args.reads)), window=window) as srv:
            env = {
                **os.environ,
                "COVEY_HOME": str(home),
                "ANTHROPIC_API_KEY": "bench",
                "ANTHROPIC_BASE_URL": srv.url,
            }
            started = time.time()
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "covey",
                        "-p",
                        "read the notes",
                        "--model",
                        "anthropic:claude-sonnet-4-5",
                        "--output-format",
                        "json",
                    ],
                    cwd=repo,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(args.sessions)
            ]
            outputs = [p.communicate(timeout=1800) for p in procs]
            ended = time.time()
            assert srv.window is not None
            refused, admitted = srv.window.refused, srv.window.admitted
            window_start = srv.window.start
            requests = list(srv.requests)
    failed = sum(1 for p in procs if p.returncode != 0)
    for p, (_, err) in zip(procs, outputs, strict=True):
        if p.returncode != 0:
            print(f"a session failed: {err.strip()[-300:]}", file=sys.stderr)
    stamps = [datetime.fromisoformat(r["ts"]).timestamp() for r in requests]
    firsts = [datetime.fromisoformat(r["ts"]).timestamp() for r in requests if r.get("turn") == 0]
    tokens = sum(r["usage"]["input"] for r in requests if r.get("usage"))
    origin = window_start + math.floor((min(stamps) - window_start) / args.window) * args.window
    ideal = (math.ceil(tokens / args.tokens) - 1) * args.window
    wall = max(stamps) - origin
    return {
        "mode": "limiter on" if limiter else "limiter off",
        "sessions ok": f"{args.sessions - failed}/{args.sessions}",
        "requests": len(requests),
        "429s (wasted)": refused,
        "admitted": admitted,
        "ideal s": round(ideal, 1),
        "wall s": round(wall, 1),
        "wall / ideal": round(wall / ideal, 2) if ideal else float("nan"),
        "start-up s": round(min(stamps) - started, 1),
        "first requests spread s": round(max(firsts) - min(firsts), 1),
        "total s": round(ended - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=12)
    parser.add_argument("--window", type=float, default=5.0, help="window length, seconds")
    parser.add_argument("--tokens", type=int, default=16_000, help="input tokens per window")
    parser.add_argument("--reads", type=int, default=3, help="file reads per session")
    args = parser.parse_args()
    rows = [run_mode(False, args), run_mode(True, args)]
    print(
        f"{args.sessions} sessions x {args.reads + 1} requests; provider limit "
        f"{args.tokens} input tokens / {args.window:g} s\n"
    )
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    on = rows[1]["wall / ideal"]
    verdict = "meets" if on <= TARGET_ON else "misses"
    print(f"\nlimiter on: wall / ideal {on} {verdict} the target (<= {TARGET_ON})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
