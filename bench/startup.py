"""Start-up speed and weight of the `covey` command line, each command a new process.

    .venv/bin/python bench/startup.py [--runs 10] [--keep]

Prints one markdown table. Everything is offline and throw-away: a temporary `COVEY_HOME` and
`HOME` (so no personal settings or agents are read), a generated git repository (one commit),
and the loopback fake provider (`python -m covey.testing.fakeserver`) answering the real
Anthropic adapter (`--model anthropic:claude-sonnet-4-5`, `ANTHROPIC_BASE_URL` pointing at it).

Rows, each run `--runs` times as `python -m covey …` (the console script is the same code):

- `python -c pass`: the interpreter alone, the floor every row pays.
- `-p "say hi"`: one model turn answering text; start to exit (the result printed); once
  through the Anthropic adapter and once through the OpenAI one (`openai:gpt-test`,
  `OPENAI_BASE_URL` at the same fake server). Both go through covey's own HTTP client
  (`covey.models._client`); neither imports a provider SDK.
- `--version`, `agents --json`, `sessions --json`.
- `--bg "say hi"` with no supervisor running (`covey daemon stop` before each run, untimed):
  the dispatch starts one and waits for its lock and pid file.
- `--bg "say hi"`: one dispatch (plan, queue the row, find the supervisor running); a first
  dispatch, not timed, starts the supervisor, which is stopped at the end.
- a 3-turn `-p` (two `Read` calls, then text): for its peak RSS.

Columns: wall time median (min–max), CPU time median (the child's own user + system time from
`wait4`: on a loaded machine it moves much less than the wall), peak RSS median (`ru_maxrss`),
the number of modules imported (`python -X importtime`, one run) and which of the heavy ones
(`anthropic`, `openai`, `textual`, `covey.agent.loop`) were among them.

Claude Code runs side by side: `claude` on PATH, else the CLI the `claude-agent-sdk` wheel
bundles (`claude_agent_sdk/_bundled/claude`, a dev dependency): `-p "say hi"`, `--version` and
the same 3-turn `-p`, against the same fake server (`ANTHROPIC_BASE_URL`, a fake key, the same
throw-away `HOME`), with `--model claude-sonnet-4-5 --allowedTools Read` and its non-essential
traffic, telemetry, error reporting and auto-updater switched off (`CLAUDE_OFFLINE`). One
extra `-p` runs under `strace -e trace=connect,sendto,sendmsg` and the bench stops if Claude
Code addressed anything but the fake server. Without either binary, the last Claude Code
figures measured (issue 18, Claude Code 2.1.197) are quoted. A second table is issue 18's:
covey, Claude Code, and their ratio, from the same run. The load average is printed, since
the machine is shared: compare ratios and import counts across runs rather than absolute times.

A second table weighs the model path's options, each a `python -c`/script process: the
provider SDKs alone (`import anthropic`, `import openai`), `anthropic._client` with the
package's `__init__` bypassed (what "import only part of the SDK" could save), `httpx2` alone
(what a thin client of covey's own would import instead), and covey's own `-p` stack without
any SDK: every `covey.*` module the `-p "say hi"` run imported except the two adapters, plus
`httpx2` and `core_tools()` — the floor a thin client would start from.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HEAVY = ("anthropic", "openai", "textual", "covey.agent.loop")
MODEL = "anthropic:claude-sonnet-4-5"
SAY_HI: dict[str, object] = {"turns": [{"text": "hi"}]}


def three_turns(readme: Path) -> dict[str, object]:
    """Two `Read` calls, then text. The path is absolute: Claude Code's Read takes no other."""
    read = {"tool_calls": [{"name": "Read", "input": {"file_path": str(readme)}}]}
    return {"turns": [read, read, {"text": "README.md says sample."}]}


CLAUDE_MODEL = "claude-sonnet-4-5"
CLAUDE_FLAGS = ("--model", CLAUDE_MODEL, "--allowedTools", "Read")
"""Non-interactive with `-p`; Read runs without asking (it would anyway: it only reads).
`--dangerously-skip-permissions` is refused when running as root, and is not needed."""
CLAUDE_OFFLINE = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
}
"""Claude Code's switches for everything that is not the model request."""
CLAUDE_CODE_QUOTED = {
    "-p": "0.51–0.72 s",
    "--version": "0.15 s",
    "rss": "301 MiB (5-turn -p)",
}
"""Issue 18's last side-by-side measurement of Claude Code 2.1.197 (quoted when no binary)."""
CLAUDE_CODE_SECONDS = {"-p": (0.51, 0.72), "--version": (0.15, 0.15)}
"""The same, as numbers: covey's ratio to the quoted range."""
TARGETS = {
    "-p": "≤ 1.1× Claude Code",
    "--version": "≤ 0.3 s",
    "agents": "≤ 0.3 s",
    "sessions": "≤ 0.3 s",
    "--bg": "≤ 0.3 s",
    "rss": "≤ 60 MiB",
}


@dataclass
class Sample:
    wall_s: float
    rss_kib: int
    cpu_s: float
    """User + system CPU of the process itself: on a shared machine it moves far less with the
    load than the wall time does."""
    code: int


@dataclass
class Row:
    label: str
    key: str
    samples: list[Sample]
    imports: int | None = None
    heavy: tuple[str, ...] = ()
    modules: list[str] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(s.wall_s for s in self.samples)

    @property
    def rss_mib(self) -> float:
        return statistics.median(s.rss_kib for s in self.samples) / 1024

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu_s for s in self.samples)


def run_once(cmd: list[str], cwd: Path, env: dict[str, str]) -> Sample:
    """Start to exit of one process, with its own peak RSS (wait4, not the children sum)."""
    start = time.perf_counter()
    child = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return Sample(wall, usage.ru_maxrss, cpu, child.returncode)


def imported(cmd: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    """The modules a `python -X importtime` run of `cmd` (a `python …` command) imports."""
    full = [cmd[0], "-X", "importtime", *cmd[1:]]
    done = subprocess.run(full, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return [
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and not line.endswith("| imported package")
    ][1:]  # the first line is the header


PART_OF_ANTHROPIC = """
import importlib.util, sys, types
spec = importlib.util.find_spec("anthropic")
package = types.ModuleType("anthropic")
package.__path__ = list(spec.submodule_search_locations)
package.__spec__ = spec
sys.modules["anthropic"] = package  # skip anthropic/__init__.py (`from . import types`)
import anthropic._client
"""
ADAPTERS = ("covey.models.anthropic", "covey.models.openai")


def sdk_options(
    covey_modules: list[str], tmp: Path, cwd: Path, env: dict[str, str], runs: int
) -> list[Row]:
    """The model path's options, each measured as a process of its own."""
    floor = tmp / "covey_without_sdk.py"
    stack = [m for m in covey_modules if m.startswith("covey.") and m not in ADAPTERS]
    floor.write_text(
        "import httpx2\n"
        + "".join(f"import {m}\n" for m in stack)
        + "from covey.tools import core_tools\ncore_tools()\n"
    )
    part = tmp / "part_of_anthropic.py"
    part.write_text(PART_OF_ANTHROPIC)
    py = sys.executable
    options = [
        ("`import httpx2`", [py, "-c", "import httpx2"]),
        ("`import anthropic`", [py, "-c", "import anthropic"]),
        ("`anthropic._client`, package `__init__` skipped", [py, str(part)]),
        ("`import openai`", [py, "-c", "import openai"]),
        (f"covey's `-p` stack, no SDK ({len(stack)} covey modules + httpx2)", [py, str(floor)]),
    ]
    return [measure(label, "sdk", cmd, cwd, env, runs) for label, cmd in options]


def options_table(rows: list[Row], say_hi: Row) -> str:
    lines = [
        '| option | wall, median (min–max) | peak RSS | modules imported | vs `-p "say hi"` |',
        "|---|---|---|---|---|",
    ]
    for row in rows:
        walls = [s.wall_s for s in row.samples]
        lines.append(
            f"| {row.label} | {fmt_s(row.wall)} ({min(walls):.3f}–{max(walls):.3f}) | "
            f"{row.rss_mib:.1f} MiB | {row.imports} | {row.wall / say_hi.wall:.2f}× time, "
            f"{row.rss_mib / say_hi.rss_mib:.2f}× RSS |"
        )
    return "\n".join(lines)


def measure(label: str, key: str, cmd: list[str], cwd: Path, env: dict[str, str], runs: int) -> Row:
    samples = [run_once(cmd, cwd, env) for _ in range(runs)]
    failed = [s.code for s in samples if s.code != 0]
    if failed:
        sys.exit(f"bench: {label} exited {failed[0]}: run `{' '.join(cmd)}` by hand")
    row = Row(label, key, samples)
    if cmd[0] == sys.executable:
        modules = imported(cmd, cwd, env)
        row.modules = modules
        row.imports = len(modules)
        row.heavy = tuple(h for h in HEAVY if h in modules)
    return row


def measure_cold(
    label: str, cmd: list[str], stop: list[str], cwd: Path, env: dict[str, str], runs: int
) -> Row:
    """`cmd` (a dispatch) with no supervisor running: `stop` runs before each, untimed."""
    samples = []
    for _ in range(runs):
        subprocess.run(stop, cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=False)
        samples.append(run_once(cmd, cwd, env))
    if failed := [s.code for s in samples if s.code != 0]:
        sys.exit(f"bench: {label} exited {failed[0]}: run `{' '.join(cmd)}` by hand")
    return Row(label, "--bg cold", samples)


@contextlib.contextmanager
def fake_server(script: dict[str, object], tmp: Path, name: str) -> Iterator[str]:
    """The fake provider in a process of its own; its base URL."""
    script_path = tmp / f"{name}.yaml"
    script_path.write_text(yaml.safe_dump(script))
    port_file = tmp / f"{name}.port"
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "covey.testing.fakeserver", "--script", str(script_path)),
            *("--port", "0", "--port-file", str(port_file)),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("bench: the fake server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text().strip()}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def find_claude() -> tuple[str, str] | None:
    """Claude Code's CLI and where it was found: `claude` on PATH, else the binary the
    `claude-agent-sdk` wheel bundles (found without importing the SDK)."""
    on_path = shutil.which("claude")
    if on_path:
        return on_path, "on PATH"
    spec = importlib.util.find_spec("claude_agent_sdk")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(folder) / "_bundled" / "claude"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled), "bundled with claude-agent-sdk"
    return None


def claude_version(claude: str, env: dict[str, str]) -> str:
    done = subprocess.run([claude, "--version"], env=env, capture_output=True, text=True)
    return done.stdout.strip() or f"unknown (exit {done.returncode}: {done.stderr.strip()})"


_ADDRESS = re.compile(r'inet_(?:addr|pton)\((?:AF_INET6, )?"([^"]+)"\)')


def foreign_addresses(cmd: list[str], cwd: Path, env: dict[str, str]) -> list[str] | None:
    """Every address but loopback that one run of `cmd` connected or sent to (strace); None
    when strace is missing. DNS would show as port 53 on a resolver's address."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    log = cwd.parent / "claude-network.strace"
    trace = [strace, "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(log)]
    subprocess.run([*trace, *cmd], cwd=cwd, env=env, capture_output=True, check=False)
    found = _ADDRESS.findall(log.read_text())
    return sorted({a for a in found if a not in ("127.0.0.1", "::1", "::ffff:127.0.0.1")})


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=bench@covey.invalid", "-c", "user.name=bench"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    (repo / "README.md").write_text("sample\n")
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], cwd=repo, check=True)
    return repo


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f} s"


def table(rows: list[Row], claude: dict[str, Row], floor: Row) -> str:
    lines = [
        "| command | covey wall, median (min–max) | CPU, median | peak RSS | modules imported "
        "| heavy imports | Claude Code | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        walls = [s.wall_s for s in row.samples]
        wall = f"{fmt_s(row.wall)} ({min(walls):.3f}–{max(walls):.3f})"
        if row is not floor:
            wall += f", {row.wall / floor.wall:.1f}× `python -c pass`"
        if row.key in claude:
            other = claude[row.key]
            cc = (
                f"{fmt_s(other.wall)}, CPU {fmt_s(other.cpu)}, {other.rss_mib:.0f} MiB; covey "
                f"{row.wall / other.wall:.2f}× wall, {row.cpu / other.cpu:.2f}× CPU"
            )
            if row.key == "rss":
                cc += f", {row.rss_mib / other.rss_mib:.2f}× RSS"
        else:
            cc = CLAUDE_CODE_QUOTED.get(row.key, "")
            if cc:
                cc += " (issue 18, quoted)"
            if row.key in CLAUDE_CODE_SECONDS:
                lo, hi = CLAUDE_CODE_SECONDS[row.key]
                ratios = sorted({f"{row.wall / hi:.2f}", f"{row.wall / lo:.2f}"})
                cc += f"; covey {'–'.join(ratios)}×"
        heavy = ", ".join(f"`{h}`" for h in row.heavy) or "none"
        lines.append(
            f"| {row.label} | {wall} | {fmt_s(row.cpu)} | {row.rss_mib:.1f} MiB | "
            f"{row.imports or ''} | "
            f"{heavy if row.imports else ''} | {cc} | {TARGETS.get(row.key, '')} |"
        )
    return "\n".join(lines)


def issue_table(rows: list[Row], claude: dict[str, Row]) -> str:
    """Issue 18's table from this run: covey, Claude Code, covey's ratio to it."""
    covey = {row.label: row for row in rows}
    lines = ["| | covey | Claude Code | ratio |", "|---|---|---|---|"]

    def line(label: str, mine: float, theirs: float | None, unit: str, fmt: str) -> None:
        other = f"{theirs:{fmt}} {unit}" if theirs is not None else "—"
        ratio = f"{mine / theirs:.2f}×" if theirs else "—"
        lines.append(f"| {label} | {mine:{fmt}} {unit} | {other} | {ratio} |")

    def wall(key: str) -> float | None:
        return claude[key].wall if key in claude else None

    def cpu(key: str) -> float | None:
        return claude[key].cpu if key in claude else None

    hi, three = covey['`-p "say hi"`'], covey["3-turn `-p` (2 × Read)"]
    line('`-p "say hi"`, start to result, median', hi.wall, wall("-p"), "s", ".3f")
    line('`-p "say hi"`, CPU, median', hi.cpu, cpu("-p"), "s", ".3f")
    line("`--version`, median", covey["`--version`"].wall, wall("--version"), "s", ".3f")
    line("one `--bg` dispatch, median", covey['`--bg "say hi"` dispatch'].wall, None, "s", ".3f")
    line("3-turn `-p` (2 × Read), median", three.wall, wall("rss"), "s", ".3f")
    line("3-turn `-p` (2 × Read), CPU, median", three.cpu, cpu("rss"), "s", ".3f")
    rss = claude["rss"].rss_mib if "rss" in claude else None
    line("peak RSS, 3-turn `-p`", three.rss_mib, rss, "MiB", ".1f")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per row (default 10)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="covey-startup-"))
    try:
        bench(tmp, args.runs)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def bench(tmp: Path, runs: int) -> None:
    repo = make_repo(tmp)
    home = tmp / "home"
    home.mkdir()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_"))}
    env = {**base_env, "HOME": str(home), "COVEY_HOME": str(tmp / "covey-home")}
    py = sys.executable
    covey = [py, "-m", "covey"]
    load = os.getloadavg()
    rows: list[Row] = []
    claude: dict[str, Row] = {}
    found = find_claude()
    script3 = three_turns(repo / "README.md")
    with fake_server(SAY_HI, tmp, "say-hi") as hi_url, fake_server(script3, tmp, "3") as url3:
        hi_env = {**env, "ANTHROPIC_API_KEY": "bench-key", "ANTHROPIC_BASE_URL": hi_url}
        floor = measure("`python -c pass`", "floor", [py, "-c", "pass"], repo, env, runs)
        rows.append(floor)
        say_hi = [*covey, "-p", "say hi", "--model", MODEL]
        hi_row = measure('`-p "say hi"`', "-p", say_hi, repo, hi_env, runs)
        rows.append(hi_row)
        openai_env = {**env, "OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": hi_url + "/v1"}
        say_hi_openai = [*covey, "-p", "say hi", "--model", "openai:gpt-test"]
        rows.append(
            measure('`-p "say hi"`, `openai:`', "-p", say_hi_openai, repo, openai_env, runs)
        )
        rows.append(measure("`--version`", "--version", [*covey, "--version"], repo, env, runs))
        bg = [*covey, "--bg", "say hi", "--model", MODEL]
        stop = [*covey, "daemon", "stop"]
        rows.append(
            measure_cold("`--bg` dispatch, no supervisor running", bg, stop, repo, hi_env, runs)
        )
        run_once(bg, repo, hi_env)  # starts the supervisor: not what a warm dispatch costs
        try:
            rows.append(measure('`--bg "say hi"` dispatch', "--bg", bg, repo, hi_env, runs))
            agents = [*covey, "agents", "--json"]
            rows.append(measure("`agents --json`", "agents", agents, repo, env, runs))
            sessions = [*covey, "sessions", "--json"]
            rows.append(measure("`sessions --json`", "sessions", sessions, repo, env, runs))
        finally:
            subprocess.run([*covey, "daemon", "stop"], cwd=repo, env=env, check=False)
        env3 = {**env, "ANTHROPIC_API_KEY": "bench-key", "ANTHROPIC_BASE_URL": url3}
        three = [*covey, "-p", "read README.md twice", "--model", MODEL]
        rows.append(measure("3-turn `-p` (2 × Read)", "rss", three, repo, env3, runs))
        options = sdk_options(hi_row.modules, tmp, repo, env, runs)
        if found:
            claude, about = side_by_side(found[0], repo, env, (hi_url, url3), runs)
            about = f"Claude Code {about}, {found[1]}: {found[0]}"
    print(
        f"covey start-up, {runs} runs per row, python {sys.version.split()[0]}, "
        f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"at end {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores"
    )
    if found:
        print(about)
    else:
        print("(no `claude` on PATH and no claude-agent-sdk: its column quotes issue 18)")
    print()
    print(table(rows, claude, floor))
    print()
    print(issue_table(rows, claude))
    print()
    print(options_table(options, hi_row))


def side_by_side(
    claude_bin: str, repo: Path, env: dict[str, str], urls: tuple[str, str], runs: int
) -> tuple[dict[str, Row], str]:
    """Claude Code's rows against the same fake servers, and what to say about the run:
    its version and what the network check found (the bench stops on a foreign address)."""
    base = {k: v for k, v in env.items() if not k.startswith("CLAUDE")}
    base |= CLAUDE_OFFLINE
    hi_env = {**base, "ANTHROPIC_API_KEY": "bench-key", "ANTHROPIC_BASE_URL": urls[0]}
    env3 = {**base, "ANTHROPIC_API_KEY": "bench-key", "ANTHROPIC_BASE_URL": urls[1]}
    say_hi = [claude_bin, "-p", "say hi", *CLAUDE_FLAGS]
    three = [claude_bin, "-p", "read README.md twice", *CLAUDE_FLAGS]
    foreign = foreign_addresses(say_hi, repo, hi_env)
    if foreign:
        sys.exit(f"bench: Claude Code reached beyond the fake server: {', '.join(foreign)}")
    rows = {
        "-p": measure("claude -p", "-p", say_hi, repo, hi_env, runs),
        "--version": measure(
            "claude --version", "--version", [claude_bin, "--version"], repo, base, runs
        ),
        "rss": measure("claude 3-turn -p", "rss", three, repo, env3, runs),
    }
    checked = "not checked (no strace)" if foreign is None else "loopback only (strace)"
    return rows, f"{claude_version(claude_bin, base)}, network {checked}"


if __name__ == "__main__":
    main()
