"""Background sessions at scale: N sessions hosted at once by one supervisor daemon.

    .venv/bin/python bench/agents.py [--sessions 100] [--turns 10] [--delay 1.0] [--tool Bash]
        [--provider scripted|fake] [--fake-limits above-demand|made-up] [--no-rate-limiter]
    .venv/bin/python bench/agents.py --view-only [--view-changes 200] [--reloads 60] [--gc-freeze]

Prints three markdown tables (`--view-only`: the third alone; `--skip-view`: the first two).
Everything is offline and throw-away: a temporary `COVEY_HOME`, a generated git repository (a
few files, one commit) and a scripted model (`scripted:<path>`) whose every turn waits
`--delay` seconds: turns 1..N-1 each make one tool call (`Bash` running `true`, or `Read` of a
small file with `--tool Read`) and turn N answers with text only, so a session makes exactly
`--turns` model calls. Sessions run with `bypassPermissions`.

`--provider fake` runs the same turns through the real Anthropic adapter over HTTP instead of
the scripted model: the loopback fake provider (`python -m covey.testing.fakeserver`, a process
of its own) serves the script, each answer streamed as SSE after its `delay_s`, and the
sessions use `anthropic:claude-sonnet-4-5` with `ANTHROPIC_BASE_URL` pointing at it (the
daemon inherits the variables), so covey's HTTP client (a kept-alive connection per session,
`covey.models._pool`), the request's encoding and the SSE parsing are in every turn. The fake
provider advertises rate limits twice the run's demand (`--fake-limits above-demand`, said in
the output), so the shared limiter reads its headers and checks every request but never
queues one; `--fake-limits made-up` keeps its made-up figures (2,000,000 input tokens a
minute, counted down by every request it has seen), which this run exceeds.

The supervisor is started with `covey daemon start`, its idle RSS read, then `--sessions`
queued rows are created in this process with `create_background_session` (what `covey --bg`
does, without spawning a CLI per session). The bench polls the store every 0.2 s until every
session has ended. Times come from the store's `events` table (`ts` of each session's `state`
and `assistant` events), so polling adds no error:

- `--dispatch burst` (the default, what the target is about: a running supervisor, as
  `covey --bg` leaves one, handed N sessions at once): the daemon is paused with SIGSTOP
  while every session is queued, then let go; wall = last `completed` − that moment, so it
  includes every claim, worktree checkout and preparation, not the dispatch. `--dispatch
  queued` (a cold start, as after a reboot with sessions waiting): the idle daemon's RSS is
  read, it is stopped, every session is queued, then a new daemon is started; wall = last
  `completed` − that start, so it also includes the daemon's own start (~0.3 s of Python
  imports). `--dispatch live`: sessions are queued one by one while the daemon runs; wall =
  last `completed` − first `queued` (so the in-process dispatch of N competes for the same
  cores; also shown from the last `queued`).
  Ideal = turns × delay (every session waits at once); ratio = wall / ideal, target ≤ 1.15.
- time to all working = last first-`working` (the claim) − the same origin as the wall.
- supervisor RSS: `VmRSS` of the daemon before dispatch (idle) and its peak, sampled every
  0.1 s (and the kernel's `VmHWM`); MiB per session = (peak − idle) / sessions.
- supervisor CPU: user + system seconds of the daemon itself and of its waited-for children
  (git, tool commands) over the run, from `/proc/<pid>/stat`.

The second table splits each session's life: queued → claimed (first `working`), claimed →
agent running (the last `working` before the first model response), the overhead of each turn
beyond the scripted delay (gap between consecutive `assistant` events − delay: tool call,
store writes, and any time the event loop was busy elsewhere) split by the transcript's
`created_at` into the tool call (answer stored → its result stored) and the rest (result
stored → next answer stored − delay), and last answer → `completed` (the commit of the
worktree). The supervisor is stopped at the end, always, and the temp directories deleted
(`--keep` leaves them, and prints where).

The third table is the agent view (`covey agents`), run headless with Textual's `run_test`
(120×40) over stores of its own (temp `COVEY_HOME`s), seeded in one transaction with the store
functions: sessions in a mix of states (5 % needs_input with a question in `meta.pending`),
held by a lease of this process, with 1–4 usage rows each. What counts as "shown" is what the
terminal would get: the app is subclassed to turn each compositor update handed to
`App._display` into text (`render_segments`, escape codes stripped) and look for the row.

- state change → painted: over `--view-sessions` (50) sessions, another process (`python -c`,
  its own `Store.open()`) flips one session working ⇄ needs_input with `set_state`,
  `--view-changes` times, 50–150 ms apart; latency = just before its `set_state` → the first
  update containing the row with its new icon (CLOCK_MONOTONIC, one clock for both processes).
  Split into the commit, commit → the view's `reload()` done, and → painted.
- reload() → painted over `--render-sessions` (1,000): `app.reload()` called directly
  (`--reloads` times), until the compositor refresh it causes has run; also `reload()` alone
  and that refresh alone. Then the first import of the view module and, over `--colds` fresh
  apps, app constructed → first rows painted.
- Full (generation 2) garbage collections inside each timed window are counted, as they make
  the p99; `--gc-freeze` calls `gc.freeze()` once the rows show (what `covey agents` could do).
  `--profile FILE` writes a cProfile (pstats) of the timed reloads.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchtools import start_fake_provider

TARGET_RATIO = 1.15
POLL_S = 0.2
RSS_SAMPLE_S = 0.1
TERMINAL = ("completed", "failed", "stopped", "interrupted")


def sh(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True)


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "README.md").write_text("# sample\n")
    (repo / ".gitignore").write_text(".covey/worktrees/\n")
    (repo / "notes.txt").write_text("a small file the Read tool reads\n" * 5)
    for i in range(5):
        (repo / "src" / f"mod{i}.py").write_text(f"VALUE = {i}\n\n\ndef f(x):\n    return x + 1\n")
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("git", "config", "user.email", "bench@covey.invalid", cwd=repo)
    sh("git", "config", "user.name", "covey bench", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", "generated", cwd=repo)
    return repo


def write_script(path: Path, turns: int, delay: float, tool: str) -> str:
    call = (
        {"name": "Bash", "input": {"command": "true"}}
        if tool == "Bash"
        else {"name": "Read", "input": {"file_path": "notes.txt"}}
    )
    script = [{"tool_calls": [call], "delay_s": delay} for _ in range(turns - 1)]
    script.append({"text": "Done.", "delay_s": delay})
    path.write_text(yaml.safe_dump({"turns": script}))
    return f"scripted:{path}"


def proc_status_kb(pid: int, key: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), None when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own user+system, waited-for children's user+system) CPU seconds of a process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return (float("nan"), float("nan"))
    fields = stat[stat.rindex(")") + 2 :].split()  # fields after the command name
    tick = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ((utime + stime) / tick, (cutime + cstime) / tick)


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every RSS_SAMPLE_S and keeps the peak (kB)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            kb = proc_status_kb(self.pid, "VmRSS")
            if kb is not None:
                self.peak_kb = max(self.peak_kb, kb)
                self.samples += 1
            self.done.wait(RSS_SAMPLE_S)


@dataclass
class Timeline:
    """One session's life, from its events (epoch seconds)."""

    queued: float | None = None
    working: list[float] = field(default_factory=list)
    answers: list[float] = field(default_factory=list)
    tool_runs: list[float] = field(default_factory=list)
    """Per tool-call turn: the answer's transcript entry → its tool result's entry."""
    after_tools: list[float] = field(default_factory=list)
    """Per tool-call turn: the tool result's entry → the next answer's entry (the model call,
    its scripted delay included)."""
    end: float | None = None
    end_state: str | None = None

    @property
    def claimed(self) -> float | None:
        return self.working[0] if self.working else None

    @property
    def running(self) -> float | None:
        """When the agent started: the last `working` before the first model response."""
        first = self.answers[0] if self.answers else float("inf")
        before = [t for t in self.working if t <= first]
        return before[-1] if before else None


def timelines(db: Path, ids: list[str]) -> dict[str, Timeline]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT session_id, ts, type, json_extract(data, '$.state') FROM events "
            "WHERE type IN ('state', 'assistant') ORDER BY id"
        ).fetchall()
        entries = conn.execute(
            "SELECT session_id, kind, created_at, json_extract(data, '$.role') FROM transcript "
            "ORDER BY session_id, seq"
        ).fetchall()
    finally:
        conn.close()
    wanted = set(ids)
    out = {sid: Timeline() for sid in ids}
    last: dict[str, tuple[str, float]] = {}  # session → (what its latest entry was, when)
    for sid, kind, at, role in entries:
        if sid not in wanted:
            continue
        what = "result" if kind == "tool_result" else str(role)
        prev = last.get(sid)
        if prev is not None and prev[0] == "assistant" and what == "result":
            out[sid].tool_runs.append(at - prev[1])
        if prev is not None and prev[0] == "result" and what == "assistant":
            out[sid].after_tools.append(at - prev[1])
        if what != "user":  # the user message carrying the results follows them at once
            last[sid] = (what, at)
    for sid, ts, kind, state in rows:
        if sid not in wanted:
            continue
        t = out[sid]
        if kind == "assistant":
            t.answers.append(ts)
        elif state == "queued" and t.queued is None:
            t.queued = ts
        elif state == "working":
            t.working.append(ts)
        elif state in TERMINAL:
            t.end, t.end_state = ts, state
    return out


def covey_cli(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "covey", *args], cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"covey {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no supervisor log)"
    return "\n".join(text[-lines:])


@dataclass
class Run:
    ids: list[str]
    dispatch_s: float
    idle_kb: int
    peak_kb: int
    hwm_kb: int | None
    rss_samples: int
    cpu_self_s: float
    cpu_children_s: float
    poll_wall_s: float
    states: dict[str, tuple[str, str | None]]
    timed_out: bool
    log: str
    timeline: dict[str, Timeline]
    hosted_from: float | None = None
    """`burst`: when the paused daemon was let go; `queued`: when the new one was started."""
    provider_cpu_s: float | None = None
    """`--provider fake`: CPU seconds of the fake provider's process over the whole bench
    (it shares the cores; a real provider would not)."""


def run_bench(args: argparse.Namespace, home: Path, repo: Path, model: str) -> Run:
    from covey.sessions.background import BackgroundRequest, create_background_session
    from covey.store import Store
    from covey.store.sessions import list_sessions
    from covey.supervisor import ensure_supervisor, log_path, stop_supervisor, supervisor_pid

    print(covey_cli("daemon", "start", cwd=repo), file=sys.stderr)
    pid = supervisor_pid()
    if pid is None:
        raise RuntimeError(f"no supervisor after `covey daemon start`:\n{log_tail(log_path())}")
    time.sleep(1.0)  # let it settle: imports done, first polls made
    idle_kb = proc_status_kb(pid, "VmRSS") or 0
    if args.dispatch == "queued":  # all sessions queued first, then handed to a new daemon
        stop_supervisor()
    elif args.dispatch == "burst":  # the warm daemon sees every session at once
        os.kill(pid, signal.SIGSTOP)
    store = Store.open()
    ids: list[str] = []
    sampler: RssSampler | None = None
    cpu0 = (0.0, 0.0)
    hosted_from: float | None = None
    try:
        if args.dispatch in ("live", "burst"):
            cpu0 = cpu_seconds(pid)
            sampler = RssSampler(pid)
            sampler.start()
        started = time.perf_counter()
        for i in range(args.sessions):
            req = BackgroundRequest(
                cwd=repo,
                prompt=f"task {i}",
                name=f"bench-{i:03d}",
                model=model,
                permission_mode="bypassPermissions",
            )
            ids.append(create_background_session(store, req).id)
        dispatch_s = time.perf_counter() - started
        if args.dispatch == "burst":
            hosted_from = time.time()
            os.kill(pid, signal.SIGCONT)
        elif args.dispatch == "queued":
            hosted_from = time.time()
            pid = ensure_supervisor()
            cpu0 = cpu_seconds(pid)
            sampler = RssSampler(pid)
            sampler.start()
        elif ensure_supervisor() != pid:
            print("note: the supervisor was restarted during dispatch", file=sys.stderr)
        deadline = time.monotonic() + max(120.0, 10 * args.turns * args.delay)
        wanted = set(ids)
        states: dict[str, tuple[str, str | None]] = {}
        timed_out = True
        while time.monotonic() < deadline:
            if supervisor_pid() is None:
                print("the supervisor died during the run", file=sys.stderr)
                break
            with store.read() as conn:
                rows = list_sessions(conn, kinds=["background"])
            states = {r.id: (r.state, r.reason) for r in rows if r.id in wanted}
            if all(s in TERMINAL for s, _ in states.values()) and len(states) == len(ids):
                timed_out = False
                break
            time.sleep(POLL_S)
        poll_wall_s = time.perf_counter() - started
    finally:
        if sampler is not None:
            sampler.done.set()
            sampler.join()
        store.close()
    hwm_kb = proc_status_kb(pid, "VmHWM")
    cpu1 = cpu_seconds(pid)
    return Run(
        ids=ids,
        dispatch_s=dispatch_s,
        idle_kb=idle_kb,
        peak_kb=max(sampler.peak_kb if sampler else 0, idle_kb),
        hwm_kb=hwm_kb,
        rss_samples=sampler.samples if sampler else 0,
        hosted_from=hosted_from,
        cpu_self_s=cpu1[0] - cpu0[0],
        cpu_children_s=cpu1[1] - cpu0[1],
        poll_wall_s=poll_wall_s,
        states=states,
        timed_out=timed_out,
        log=log_tail(log_path()),
        timeline=timelines(home / "covey.db", ids),
    )


def secs(x: float) -> str:
    return f"{x:.3f} s" if abs(x) < 10 else f"{x:.2f} s"


def mib(kb: float) -> str:
    return f"{kb / 1024:.1f} MiB"


def spread(values: list[float]) -> tuple[str, str, str]:
    """(median, p90, max) of seconds, or dashes when there are none."""
    if not values:
        return ("–", "–", "–")
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (ms(statistics.median(ordered)), ms(p90), ms(ordered[-1]))


def ms(x: float) -> str:
    return f"{x * 1000:,.0f} ms"


def tables(
    args: argparse.Namespace, run: Run
) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    n, ideal = len(run.ids), args.turns * args.delay
    tl = list(run.timeline.values())
    completed = [t for t in tl if t.end_state == "completed" and t.end is not None]
    failed = {sid: st for sid, st in run.states.items() if st[0] != "completed"}
    queued = [t.queued for t in tl if t.queued is not None]
    rows: list[tuple[str, ...]] = []
    label = f"{n} sessions × {args.turns} turns × {args.delay:g} s"
    if queued and completed:
        last_done = max(t.end for t in completed if t.end is not None)
        start = run.hosted_from if run.hosted_from is not None else min(queued)
        wall = last_done - start
        ratio = wall / ideal
        verdict = "met" if ratio <= TARGET_RATIO and len(completed) == n else "MISSED"
        some = "" if len(completed) == n else f" (only the {len(completed)} of {n} that completed)"
        since = {"queued": "daemon started, all queued", "burst": "warm daemon resumed, all queued"}
        since_label = since.get(args.dispatch, "first queued")
        rows.append((f"{label}: wall, {since_label} → last completed{some}", secs(wall), ""))
        rows.append(("ideal wall (turns × delay)", secs(ideal), ""))
        rows.append(("ratio wall / ideal", f"{ratio:.2f}×", f"≤ {TARGET_RATIO}: {verdict}"))
        if run.hosted_from is None:
            rows.append(("wall from the last queued", secs(last_done - max(queued)), ""))
    else:
        rows.append((f"{label}: wall", f"none completed (0/{n})", ""))
    rows.append(
        (f"dispatch: {n} × create_background_session, in process", secs(run.dispatch_s), "")
    )
    origin = run.hosted_from if run.hosted_from is not None else min(queued, default=0.0)
    claims = [t.claimed for t in tl if t.claimed is not None]
    if queued and len(claims) == n:
        rows.append(("time to all working (left `queued`)", secs(max(claims) - origin), ""))
    runs = [t.running for t in tl if t.running is not None]
    if queued and len(runs) == n:
        rows.append(("time to all agents running", secs(max(runs) - origin), ""))
    rows.append(
        (
            "sessions failed / not completed",
            f"{len(failed)} of {n}",
            "0: " + ("met" if not failed else "MISSED"),
        )
    )
    rows.append(("supervisor RSS idle, before dispatch", mib(run.idle_kb), ""))
    hwm = f" (VmHWM {mib(run.hwm_kb)})" if run.hwm_kb else ""
    rows.append((f"supervisor RSS peak, {run.rss_samples} samples", mib(run.peak_kb) + hwm, ""))
    per = (run.peak_kb - run.idle_kb) / max(1, n)
    rows.append(("RSS per session, (peak − idle) / sessions", mib(per), ""))
    cores = os.cpu_count() or 1
    busy = run.cpu_self_s / run.poll_wall_s if run.poll_wall_s else float("nan")
    rows.append(
        (
            "supervisor CPU over the run: own / children (git, tools)",
            f"{run.cpu_self_s:.1f} s / {run.cpu_children_s:.1f} s",
            f"own = {busy:.0%} of one core ({cores} cores)",
        )
    )
    if run.provider_cpu_s is not None:
        rows.append(("fake provider process CPU (same cores)", f"{run.provider_cpu_s:.1f} s", ""))

    phases: list[tuple[str, ...]] = []
    wait = [t.claimed - t.queued for t in tl if t.claimed is not None and t.queued is not None]
    prep = [t.running - t.claimed for t in tl if t.running is not None and t.claimed is not None]
    overhead: list[float] = []
    first_turn: list[float] = []
    for t in tl:
        if t.running is None or not t.answers:
            continue
        first_turn.append(t.answers[0] - t.running - args.delay)
        overhead.extend(b - a - args.delay for a, b in zip(t.answers, t.answers[1:], strict=False))
    tools = [x for t in tl for x in t.tool_runs]
    rest = [x - args.delay for t in tl for x in t.after_tools]
    commit = [t.end - t.answers[-1] for t in completed if t.answers and t.end is not None]
    life = [t.end - t.queued for t in completed if t.end is not None and t.queued is not None]
    phases.append(("queued → claimed", *spread(wait)))
    phases.append(("claimed → agent running (worktree, prepare)", *spread(prep)))
    phases.append(("first turn, beyond the delay", *spread(first_turn)))
    phases.append((f"each later turn, beyond the delay ({len(overhead)} turns)", *spread(overhead)))
    phases.append(("… of which the tool call (answer → result stored)", *spread(tools)))
    phases.append(("… of which the rest (result stored → next answer − delay)", *spread(rest)))
    phases.append(("last answer → completed (commit)", *spread(commit)))
    phases.append(("whole session, queued → completed", *spread(life)))
    return rows, phases


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    width = max(len(r[0]) for r in [header, *rows])
    print(f"| {header[0].ljust(width)} | " + " | ".join(header[1:]) + " |")
    print(f"|{'-' * (width + 2)}|" + "---|" * (len(header) - 1))
    for row in rows:
        print(f"| {row[0].ljust(width)} | " + " | ".join(row[1:]) + " |")


# ---------------------------------------------------------------------------------------------
# The agent view (`covey agents`): how soon a state change shows, and what a reload costs.

VIEW_LATENCY_TARGET_S = 0.25
VIEW_RENDER_TARGET_S = 0.100
VIEW_SIZE = (120, 40)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
QUESTION = {"kind": "question", "text": "Which database?", "options": ["sqlite", "postgres"]}
VIEW_MIX = (
    ("needs_input", 0.05),
    ("working", 0.30),
    ("queued", 0.05),
    ("idle", 0.20),
    ("completed", 0.30),
    ("failed", 0.05),
    ("stopped", 0.05),
)
"""States of the seeded sessions, and their shares."""

WRITER = r"""
import sys, time
from covey.sessions.state import set_state
from covey.store import Store
from covey.store.sessions import SessionMeta

store = Store.open()
metas = {
    "needs_input": SessionMeta.model_validate({"provider": "scripted", "pending": QUESTION}),
    "working": SessionMeta.model_validate({"provider": "scripted"}),
}
reasons = {"needs_input": "question", "working": None}
print("ready", flush=True)
for line in sys.stdin:
    sid, epoch, state = line.split()
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    set_state(store, sid, int(epoch), state, reasons[state], meta=metas[state])
    t1 = time.clock_gettime(time.CLOCK_MONOTONIC)
    print(t0, t1, flush=True)
""".replace("QUESTION", repr(QUESTION))
"""The other process: changes a session's state with `set_state` on each line of stdin
(`id epoch state`) and answers with the monotonic times before and after the commit."""


def mono() -> float:
    """CLOCK_MONOTONIC: one clock for every process of the machine."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


@dataclass
class Seeded:
    id: str
    epoch: int
    name: str
    state: str


def seed_view(store: Any, cwd: Path, n: int, rng: random.Random) -> list[Seeded]:
    """`n` background sessions in the states of VIEW_MIX, held by a lease of this process
    (so working and idle ones show as such, not interrupted), created over the last 3 h, with
    1–4 usage rows each; needs_input ones carry a pending question in `meta`. Written with
    the store functions the hosts use, in one transaction (state events included)."""
    from covey.messages import Usage
    from covey.sessions.lease import new_host_id
    from covey.store.events import append_event
    from covey.store.sessions import (
        SessionMeta,
        SessionRow,
        acquire_lease,
        insert_session,
        new_session_id,
        update_session,
    )
    from covey.store.usage import record_usage

    states = [s for s, share in VIEW_MIX for _ in range(round(share * n))]
    states = (states + ["working"] * n)[:n]
    rng.shuffle(states)
    host, now = new_host_id(), time.time()
    out: list[Seeded] = []
    with store.write() as conn:
        for i, state in enumerate(states):
            sid = new_session_id(conn)
            pending = QUESTION if state == "needs_input" else None
            meta = SessionMeta.model_validate({"provider": "scripted", "pending": pending})
            created = now - rng.uniform(60, 3 * 3600)
            name = f"view-{i:04d}"
            row = SessionRow.new(
                id=sid,
                kind="background",
                cwd=str(cwd),
                model="scripted:demo",
                name=name,
                meta=meta,
                now=created,
            )
            insert_session(conn, row)
            epoch = acquire_lease(conn, sid, host, 3600.0, now) or 0
            summary = f"step {rng.randint(1, 40)} of task {i}" if state == "working" else None
            reason = {"needs_input": "question", "completed": "end_turn"}.get(state)
            update_session(
                conn,
                sid,
                epoch,
                state=state,  # type: ignore[arg-type]
                reason=reason,
                summary=summary,
                updated_at=rng.uniform(created, now),
            )
            append_event(conn, sid, "state", {"state": state, "reason": reason})
            for _ in range(rng.randint(1, 4)):
                tokens = Usage(input=rng.randint(500, 20000), output=rng.randint(50, 2000))
                record_usage(conn, sid, "main", "scripted:demo", tokens, rng.uniform(0, 0.2))
            out.append(Seeded(sid, epoch, name, state))
    return out


def probed_app(store: Any, cwd: Path) -> Any:
    """An `AgentViewApp` (overlap scan off, no host to start) that watches what it paints.

    Headless, Textual still lays out and renders every update (`Screen._compositor_refresh`
    → `Compositor.render_update`) and hands it to `App._display`, which only skips the write
    to the terminal. The probe turns each update into the text the terminal would get
    (`render_segments`, as `_display` does for a real terminal), strips the escape codes and
    resolves `watch` — (text, future) — with the time it first appears. It also times each
    compositor refresh (`paints`: start, end) and each `reload()` of the list (`reloads`)."""
    from textual._compositor import CompositorUpdate

    from covey.tui.agent_view import AgentViewApp

    class ProbedApp(AgentViewApp):
        def __init__(self) -> None:
            super().__init__(store, cwd, ensure_host=None, overlap_scan=False)
            self.watch: tuple[str, asyncio.Future[float]] | None = None
            self.paints: list[tuple[float, float]] = []
            self.paint_done: asyncio.Future[float] | None = None
            self.reloads: list[tuple[float, float]] = []
            screen = self.agents
            refresh, reload = screen._compositor_refresh, screen.reload

            def timed_refresh() -> None:
                start = mono()
                refresh()
                end = mono()
                self.paints.append((start, end))
                done = self.paint_done
                if done is not None and not done.done():
                    done.set_result(end)

            def timed_reload() -> None:
                start = mono()
                reload()
                self.reloads.append((start, mono()))

            screen._compositor_refresh = timed_refresh  # type: ignore[method-assign]
            screen.reload = timed_reload  # type: ignore[method-assign]

        def _display(self, screen: Any, renderable: Any) -> None:
            super()._display(screen, renderable)
            watch = self.watch
            if watch is None or not isinstance(renderable, CompositorUpdate):
                return
            text = ANSI.sub("", renderable.render_segments(self.console))
            if watch[0] in text:
                self.watch = None
                if not watch[1].done():
                    watch[1].set_result(mono())

    return ProbedApp()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class GcWatch:
    """CPython's garbage collections while installed (`gc.callbacks`): (generation, start,
    end), monotonic seconds."""

    def __init__(self) -> None:
        self.log: list[tuple[int, float, float]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = mono()
        else:
            self.log.append((info["generation"], self._start, mono()))

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    async def __aenter__(self) -> GcWatch:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()

    def full(self, start: float, end: float) -> float:
        """Seconds spent in full (generation 2) collections between start and end."""
        return sum(e - s for g, s, e in self.log if g == 2 and s >= start and e <= end)


@dataclass
class ViewLatency:
    sessions: int
    latency: list[float]
    """just before the writer's `set_state` → the new row painted"""
    commit: list[float]
    """the writer's `set_state` (begin → committed)"""
    to_reload: list[float]
    """committed → the view's `reload()` done (the poll's wait + the store read)"""
    to_paint: list[float]
    """reload done → painted"""
    gc_full: list[float]
    """time in full GCs within each change's window"""


async def measure_latency(
    store: Any, cwd: Path, seeded: list[Seeded], changes: int, freeze: bool
) -> ViewLatency:
    from covey.tui.rows import state_icon

    target = next(s for s in seeded if s.state == "working")
    app = probed_app(store, cwd)
    loop = asyncio.get_running_loop()
    rng = random.Random(7)
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert writer.stdin is not None and writer.stdout is not None
    out = ViewLatency(len(seeded), [], [], [], [], [])
    try:
        if (await writer.stdout.readline()).strip() != b"ready":
            raise RuntimeError("the writer process did not start")
        async with app.run_test(size=VIEW_SIZE) as pilot, GcWatch() as gcs:
            first: asyncio.Future[float] = loop.create_future()
            app.watch = (f"{state_icon('working')} {target.name}", first)
            await asyncio.wait_for(first, 30)
            if freeze:
                gc.freeze()
            state = "working"
            for _ in range(changes):
                await asyncio.sleep(rng.uniform(0.05, 0.15))  # any phase of the 50 ms poll
                await pilot.pause()
                state = "needs_input" if state == "working" else "working"
                seen: asyncio.Future[float] = loop.create_future()
                app.watch = (f"{state_icon(state)} {target.name}", seen)
                writer.stdin.write(f"{target.id} {target.epoch} {state}\n".encode())
                await writer.stdin.drain()
                shown = await asyncio.wait_for(seen, 10)
                t0, t1 = (float(x) for x in (await writer.stdout.readline()).split())
                reload_end = next((e for s, e in app.reloads if s >= t1), shown)
                out.latency.append(shown - t0)
                out.commit.append(t1 - t0)
                out.to_reload.append(reload_end - t1)
                out.to_paint.append(shown - reload_end)
                out.gc_full.append(gcs.full(t0, shown))
    finally:
        writer.stdin.close()
        try:
            await asyncio.wait_for(writer.wait(), 10)
        except TimeoutError:
            writer.kill()
            await writer.wait()
    return out


@dataclass
class ViewRender:
    sessions: int
    imported: float
    """`import covey.tui.agent_view` (Textual included), when this process had not yet"""
    cold: list[float]
    """app constructed → the first rows painted, one per fresh app"""
    reload: list[float]
    """`reload()` alone: store read, rows, `set_rows`, header"""
    paint: list[float]
    """the compositor refresh that paints it (layout, `render_line` of the visible lines)"""
    wall: list[float]
    """`reload()` called → that paint done (includes waiting for Textual's update timer)"""
    gc_full: list[float]
    """time in full GCs within each reload's window"""


async def measure_render(
    store: Any, cwd: Path, seeded: list[Seeded], args: argparse.Namespace
) -> ViewRender:
    started = mono()
    import covey.tui.agent_view  # noqa: F401  (Textual with it: the first import is timed)

    imported = mono() - started
    from covey.sessions.listing import agent_rows
    from covey.tui.rows import RowLine, group_lines, state_icon

    # the first session of the first non-empty group is on the first screen
    top = next(line.row for line in group_lines(agent_rows(store)) if isinstance(line, RowLine))
    needle = f"{state_icon(top.state)} {top.label}"
    loop = asyncio.get_running_loop()
    out = ViewRender(len(seeded), imported, [], [], [], [], [])
    colds, profile = args.colds, args.profile
    for i in range(colds):
        started = mono()
        app = probed_app(store, cwd)
        first: asyncio.Future[float] = loop.create_future()
        app.watch = (needle, first)
        async with app.run_test(size=VIEW_SIZE) as pilot, GcWatch() as gcs:
            out.cold.append(await asyncio.wait_for(first, 30) - started)
            if i < colds - 1:
                continue
            if args.gc_freeze:
                gc.freeze()
            await pilot.pause(0.2)
            profiler = cProfile.Profile() if profile else None
            for _ in range(args.reloads):
                await pilot.pause()
                await asyncio.sleep(0.02)
                app.paint_done = loop.create_future()
                if profiler:
                    profiler.enable()
                start = mono()
                app.reload()
                end = mono()
                done = await asyncio.wait_for(app.paint_done, 10)
                if profiler:
                    profiler.disable()
                out.reload.append(end - start)
                out.paint.append(app.paints[-1][1] - app.paints[-1][0])
                out.wall.append(done - start)
                out.gc_full.append(gcs.full(start, done))
            if profiler and profile:
                profiler.dump_stats(profile)
    return out


def run_view(args: argparse.Namespace, root: Path) -> tuple[ViewLatency, ViewRender]:
    from covey.store import Store

    async def both() -> tuple[ViewLatency, ViewRender]:
        small_home, big_home = root / "view-home", root / "render-home"
        os.environ["COVEY_HOME"] = str(big_home)  # the render first: its first app is cold
        with Store.open() as store:
            seeded = seed_view(store, root, args.render_sessions, random.Random(2))
            render = await measure_render(store, root, seeded, args)
        os.environ["COVEY_HOME"] = str(small_home)
        with Store.open() as store:
            seeded = seed_view(store, root, args.view_sessions, random.Random(1))
            latency = await measure_latency(store, root, seeded, args.view_changes, args.gc_freeze)
        return latency, render

    return asyncio.run(both())


def view_table(lat: ViewLatency, ren: ViewRender) -> list[tuple[str, ...]]:
    def three(values: list[float]) -> str:
        return " / ".join(
            ms1(x) for x in (statistics.median(values), pct(values, 0.99), max(values))
        )

    def verdict(value: float, target: float) -> str:
        return f"≤ {target * 1000:.0f} ms: " + ("met" if value <= target else "MISSED")

    rows: list[tuple[str, ...]] = []
    n = len(lat.latency)
    p99 = pct(lat.latency, 0.99)
    rows.append(
        (
            f"state change → painted, {lat.sessions} sessions, {n} changes: median / p99 / max",
            three(lat.latency),
            verdict(p99, VIEW_LATENCY_TARGET_S) + " (p99)",
        )
    )
    rows.append(("… the writer's set_state (begin → commit), other process", three(lat.commit), ""))
    rows.append(("… commit → reload() done (poll wait + store read)", three(lat.to_reload), ""))
    rows.append(("… reload() done → painted (update timer + render)", three(lat.to_paint), ""))
    rows.append(gc_row(lat.gc_full))
    m = len(ren.wall)
    rows.append(
        (
            f"reload() → painted, {ren.sessions} sessions, {m} reloads: median / p99 / max",
            three(ren.wall),
            verdict(pct(ren.wall, 0.99), VIEW_RENDER_TARGET_S) + " (p99)",
        )
    )
    rows.append(("… reload() alone (store read, rows, set_rows)", three(ren.reload), ""))
    rows.append(("… the compositor refresh that paints it", three(ren.paint), ""))
    rows.append(gc_row(ren.gc_full))
    quiet = [w for w, g in zip(ren.wall, ren.gc_full, strict=True) if g == 0]
    if quiet:
        rows.append(
            (
                f"… reload() → painted without a full GC ({len(quiet)}): median / p99 / max",
                three(quiet),
                "",
            )
        )
    rows.append(("import covey.tui.agent_view, first in this process", ms1(ren.imported), ""))
    rest = statistics.median(ren.cold[1:]) if len(ren.cold) > 1 else float("nan")
    rows.append(
        (
            f"cold start → first rows painted, {ren.sessions} sessions: first / median of next "
            f"{len(ren.cold) - 1}",
            f"{ms1(ren.cold[0])} / {ms1(rest)}",
            "",
        )
    )
    return rows


def gc_row(full: list[float]) -> tuple[str, str, str]:
    hit = [x for x in full if x > 0]
    what = f"{len(hit)} of {len(full)}"
    if hit:
        what += f", {ms1(statistics.median(hit))} median, {ms1(max(hit))} max"
    return ("… windows with a full (generation 2) garbage collection in them", what, "")


def ms1(x: float) -> str:
    return f"{x * 1000:,.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--turns", type=int, default=10, help="model calls per session (≥ 1)")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds per model call")
    parser.add_argument("--tool", choices=("Bash", "Read"), default="Bash")
    parser.add_argument(
        "--provider",
        choices=("scripted", "fake"),
        default="scripted",
        help="scripted: the in-process scripted model; fake: the real Anthropic adapter over "
        "HTTP against the loopback fake provider",
    )
    parser.add_argument(
        "--fake-limits",
        choices=("above-demand", "made-up"),
        default="above-demand",
        help="--provider fake: the rate limits the fake provider advertises: twice the run's "
        "demand (the default), or its made-up figures (2,000,000 input tokens a minute)",
    )
    parser.add_argument(
        "--no-rate-limiter",
        action="store_true",
        help="settings rateLimits.enabled false (to see what the shared limiter costs)",
    )
    parser.add_argument(
        "--dispatch",
        choices=("queued", "burst", "live"),
        default="burst",
        help="burst: queue every session while the running daemon is paused (SIGSTOP), then "
        "let it go; queued: queue them, then start a new daemon (its start-up counts); "
        "live: dispatch in this process while the daemon runs",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp directories")
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--view-only", action="store_true", help="only the agent view's table")
    view.add_argument("--skip-view", action="store_true", help="no agent view table")
    parser.add_argument("--view-sessions", type=int, default=50, help="for the latency")
    parser.add_argument("--view-changes", type=int, default=200, help="state changes timed")
    parser.add_argument("--render-sessions", type=int, default=1000, help="for the reloads")
    parser.add_argument("--reloads", type=int, default=60, help="reloads timed")
    parser.add_argument("--colds", type=int, default=5, help="fresh apps started (≥ 1)")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() once the view shows its rows (startup objects leave the full GCs)",
    )
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile of the timed reloads (pstats) here"
    )
    args = parser.parse_args()
    if args.turns < 1 or args.sessions < 1 or args.delay <= 0:
        parser.error("--sessions and --turns must be ≥ 1 and --delay > 0")
    if min(args.view_sessions, args.view_changes, args.render_sessions, args.reloads) < 1:
        parser.error("--view-sessions, --view-changes, --render-sessions, --reloads must be ≥ 1")
    if args.colds < 1:
        parser.error("--colds must be ≥ 1")
    load = os.getloadavg()
    run = None if args.view_only else supervisor_part(args)
    view = None if args.skip_view else view_part(args)
    print(
        f"{os.cpu_count()} cores (load average {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} at "
        f"start), Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
        + ("" if run is None else f"; tool call per turn: {args.tool}; model: {args.provider}")
    )
    if run is not None and args.provider == "fake":
        print(fake_limits_line(args))
    if run is not None:
        rows, phases = tables(args, run)
        print()
        print_table(("measure", "value", "target"), rows)
        print()
        print_table(("phase, per session", "median", "p90", "max"), phases)
    if view is not None:
        print()
        print_table(("agent view (headless, 120×40)", "value", "target"), view_table(*view))
    if run is not None:
        report_failures(run)


def supervisor_part(args: argparse.Namespace) -> Run:
    tmp = Path(tempfile.mkdtemp(prefix="covey-bench-agents-"))
    home = tmp / "home"
    os.environ["COVEY_HOME"] = str(home)  # before covey reads it; the daemon inherits it
    from covey.supervisor import stop_supervisor

    settings = bench_settings(args)
    if settings:
        home.mkdir(parents=True, exist_ok=True)
        (home / "settings.json").write_text(json.dumps(settings) + "\n")

    server: subprocess.Popen[bytes] | None = None
    try:
        repo = make_repo(tmp)
        model = write_script(tmp / "script.yaml", args.turns, args.delay, args.tool)
        if args.provider == "fake":
            server, url = start_fake_provider(tmp / "script.yaml", tmp, fake_limit_flags(args))
            os.environ["ANTHROPIC_API_KEY"] = "bench-key"  # the daemon inherits both
            os.environ["ANTHROPIC_BASE_URL"] = url
            model = "anthropic:claude-sonnet-4-5"
        run = run_bench(args, home, repo, model)
        if server is not None:
            run.provider_cpu_s = sum(cpu_seconds(server.pid))
        return run
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        stopped = stop_supervisor()
        if stopped is not None:
            print(f"supervisor {stopped} stopped", file=sys.stderr)
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


TOKENS_PER_REQUEST_BOUND = 20_000
"""Well above what a request of this bench carries (~2,000 input tokens: the system prompt,
the tool definitions, at most ten short turns; the limiter's estimate included)."""


def demand_per_minute(args: argparse.Namespace) -> tuple[int, int, int]:
    """The most the run can ask of the provider in a minute: (requests, input tokens, output
    tokens), every session sending a request each `--delay` seconds."""
    requests = math.ceil(args.sessions * 60 / args.delay)
    return requests, requests * TOKENS_PER_REQUEST_BOUND, requests * 1_000


def fake_limit_flags(args: argparse.Namespace) -> list[str]:
    """`--fake-limits above-demand`: the fake provider advertises twice the run's demand, so
    the shared limiter reads and checks its headers on every request but never queues one."""
    if args.fake_limits != "above-demand":
        return []
    requests, inputs, outputs = (2 * x for x in demand_per_minute(args))
    return [
        *("--advertise-requests", str(requests)),
        *("--advertise-input-tokens", str(inputs)),
        *("--advertise-output-tokens", str(outputs)),
    ]


def bench_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The user settings of the run: the limiter off (`--no-rate-limiter`), or, with the fake
    provider's limits above demand, its requests a minute told to covey as a user who knows
    their account would (so the limiter need not wait for a first answer before a burst)."""
    if args.no_rate_limiter:
        return {"rateLimits": {"enabled": False}}
    if args.provider == "fake" and args.fake_limits == "above-demand":
        requests = 2 * demand_per_minute(args)[0]
        return {"rateLimits": {"anthropic": {"requestsPerMinute": requests}}}
    return {}


def fake_limits_line(args: argparse.Namespace) -> str:
    if args.fake_limits != "above-demand":
        return (
            "fake provider: its made-up limits (2,000,000 input tokens a minute, remaining "
            "counted down by every request it has seen; the limiter queues by design)"
        )
    requests, inputs, outputs = demand_per_minute(args)
    return (
        f"fake provider: advertises {2 * requests:,} requests, {2 * inputs:,} input tokens "
        f"and {2 * outputs:,} output tokens a minute, twice the most this run can ask "
        f"({requests:,} requests a minute, each under {TOKENS_PER_REQUEST_BOUND:,} tokens), "
        "so the limiter is exercised but not the bottleneck; settings "
        f"rateLimits.anthropic.requestsPerMinute {2 * requests:,}"
    )


def view_part(args: argparse.Namespace) -> tuple[ViewLatency, ViewRender]:
    tmp = Path(tempfile.mkdtemp(prefix="covey-bench-view-"))
    try:
        return run_view(args, tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def report_failures(run: Run) -> None:
    bad = {sid: st for sid, st in run.states.items() if st[0] != "completed"}
    missing = [sid for sid in run.ids if sid not in run.states]
    if bad or missing or run.timed_out:
        print("\nsessions that did not complete:", file=sys.stderr)
        for sid, (state, reason) in sorted(bad.items()):
            print(f"  {sid}: {state} — {reason}", file=sys.stderr)
        for sid in missing:
            print(f"  {sid}: not found in the store", file=sys.stderr)
        if run.timed_out:
            print("  (timed out waiting)", file=sys.stderr)
        print(f"supervisor log, tail:\n{run.log}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
