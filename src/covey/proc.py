"""Subprocesses: the only module in covey that spawns them.

Every child starts in a new session (its own process group). On a timeout, a cancellation or
after the main process exits, whatever is left of the group gets SIGTERM, a short grace, then
SIGKILL, so no command leaves orphans behind (`covey.process_groups`). Output is captured
while it arrives and capped: the head and the tail are kept, the middle is replaced by a note
saying how much was elided (`covey.process_output`). Neither helper module starts a process.

`run_process` is the async form (tools, hooks); `run` the blocking form for quick commands (git),
`run_bytes` the same for a command whose output is binary.

A child inherits this process's environment, less covey's provider credentials when the
caller lays `without_credentials()` over it (tools, hooks and git do, see `CREDENTIAL_VARS`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covey.errors import CommandFailed, ProcessStartError
from covey.process_groups import end_group, end_group_sync, group_alive, kill_tagged_group
from covey.process_output import Capture, collector_class, elide

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "CREDENTIAL_VARS",
    "BytesResult",
    "CommandFailed",
    "ProcessResult",
    "ProcessStartError",
    "elide",
    "group_alive",
    "kill_tagged_group",
    "run",
    "run_bytes",
    "run_process",
    "spawn_detached",
    "watch_children_with_pidfds",
    "without_credentials",
]

DRAIN_GRACE_S = 1.0
"""How long to wait for the pipes to close once the group is gone (a daemon that escaped the
group with setsid may hold them open forever)."""

Command = Sequence[str] | str
"""An argv list, or a string run by `/bin/sh -c`."""
Env = Mapping[str, str | None]
"""Variables laid over `os.environ`; a None value removes the variable."""

CREDENTIAL_VARS = re.compile(r"ANTHROPIC_AUTH_TOKEN|ANTHROPIC_\w*KEY|OPENAI_API_KEY")
"""The provider credentials covey itself reads (`fullmatch` on a variable's name)."""


def without_credentials(names: Iterable[str] = ()) -> dict[str, None]:
    """An `Env` that removes provider credentials from the inherited environment: every
    variable `CREDENTIAL_VARS` matches, and `names` (keys from `credentials.json`, …)."""
    found = {name for name in os.environ if CREDENTIAL_VARS.fullmatch(name)}
    return dict.fromkeys(sorted(found.union(names)))


@dataclass(frozen=True)
class ProcessResult:
    argv: tuple[str, ...]
    pid: int
    """The pid of the main process, which is also the id of its process group."""
    exit_code: int
    """The exit status; -N when signal N ended the process (e.g. -15 when killed on timeout)."""
    stdout: str
    """Standard output (both streams, interleaved, when run with merge_stderr=True)."""
    stderr: str
    timed_out: bool
    duration_s: float

    @property
    def output(self) -> str:
        """Everything the command printed: stdout followed by stderr."""
        return self.stdout + self.stderr

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


async def run_process(
    cmd: Command,
    *,
    cwd: Path | str,
    timeout_s: float | None,
    env: Env | None = None,
    stdin: bytes | None = None,
    output_limit: int | None = None,
    merge_stderr: bool = False,
    die_with_parent: bool = False,
    on_start: Callable[[int], None] | None = None,
) -> ProcessResult:
    """Run `cmd` to completion (or until `timeout_s`), then make sure its group is gone.

    `output_limit` caps each captured stream in bytes while reading (head and tail kept).
    Cancelling the caller kills the group before the cancellation propagates.
    `die_with_parent`: the process is killed (SIGKILL) if this process dies (Linux parent-death
    signal, set by util-linux `setpriv` when it is installed); what it started stays in its
    group, for `kill_tagged_group`. `on_start` gets the pid (= process group) once it runs.
    """
    argv = _argv(cmd)
    if die_with_parent and (setpriv := _setpriv()) is not None:
        argv = [setpriv, "--pdeathsig", "KILL", "--", *argv]
    import asyncio

    out, err = Capture(output_limit), Capture(output_limit)
    started = time.monotonic()
    transport, proto = await _spawn(argv, cwd, env, stdin, merge_stderr, out, err)
    pid = transport.get_pid()
    try:
        if on_start is not None:
            on_start(pid)
        if stdin is not None:
            pipe = transport.get_pipe_transport(0)
            assert isinstance(pipe, asyncio.WriteTransport)
            pipe.write(stdin)
            pipe.close()  # flushes the buffer, then closes; a child that exits early is fine
        try:
            done, _ = await asyncio.wait({proto.exited}, timeout=timeout_s)
        finally:
            await end_group(pid, proto.exited)
        await asyncio.wait({proto.drained}, timeout=DRAIN_GRACE_S)
    finally:
        transport.close()
    code = transport.get_returncode()
    return ProcessResult(
        argv=tuple(argv),
        pid=pid,
        exit_code=code if code is not None else -signal.SIGKILL,
        stdout=out.text(),
        stderr=err.text(),
        timed_out=not done,
        duration_s=time.monotonic() - started,
    )


async def _spawn(
    argv: list[str],
    cwd: Path | str,
    env: Env | None,
    stdin: bytes | None,
    merge_stderr: bool,
    out: Capture,
    err: Capture,
) -> tuple[asyncio.SubprocessTransport, Any]:
    """Start the process. Shielded: a cancellation inside asyncio's spawn can hang it for good
    (CPython 3.11) and would kill only the main process, not what it started; so the spawn
    finishes, then the whole group ends, then the cancellation goes on."""
    import asyncio

    spawn = asyncio.ensure_future(_start(argv, cwd, env, stdin, merge_stderr, out, err))
    try:
        return await asyncio.shield(spawn)
    except asyncio.CancelledError:
        await _end_spawned(spawn)
        raise
    except OSError as e:
        raise _start_error(argv, cwd, e) from None


async def _start(
    argv: list[str],
    cwd: Path | str,
    env: Env | None,
    stdin: bytes | None,
    merge_stderr: bool,
    out: Capture,
    err: Capture,
) -> tuple[Any, Any]:
    """Start the process off the event loop where the kernel allows (`covey._spawn_off_loop`),
    else with asyncio's `subprocess_exec`."""
    import asyncio

    from covey import _spawn_off_loop

    proto = collector_class()(out, err, merge_stderr)
    options = _spawn_options(cwd, env, stdin, merge_stderr)
    if _spawn_off_loop.available():
        child = await _spawn_off_loop.spawn(argv, options, proto, stdin is not None)
        return child, proto
    return await asyncio.get_running_loop().subprocess_exec(lambda: proto, *argv, **options)


async def _end_spawned(
    spawn: asyncio.Future[tuple[asyncio.SubprocessTransport, Any]],
) -> None:
    """After a cancellation during the spawn: wait for it, then end the group and the transport."""
    try:
        transport, proto = await spawn
    except OSError:
        return
    try:
        await end_group(transport.get_pid(), proto.exited)
    finally:
        transport.close()


def run(
    cmd: Command,
    *,
    cwd: Path | str,
    timeout_s: float | None = 60.0,
    check: bool = False,
    env: Env | None = None,
    stdin: bytes | None = None,
    output_limit: int | None = None,
) -> ProcessResult:
    """Blocking form for quick commands. Raises `CommandFailed` when `check` and not `ok`.

    Output is buffered whole before `output_limit` is applied; use `run_process` for commands
    that may print a lot.
    """
    raw = run_bytes(cmd, cwd=cwd, timeout_s=timeout_s, env=env, stdin=stdin)
    result = ProcessResult(
        argv=raw.argv,
        pid=raw.pid,
        exit_code=raw.exit_code,
        stdout=elide(raw.stdout, output_limit),
        stderr=elide(raw.stderr, output_limit),
        timed_out=raw.timed_out,
        duration_s=raw.duration_s,
    )
    if check and not result.ok:
        raise CommandFailed(result)
    return result


@dataclass(frozen=True)
class BytesResult:
    """What `run_bytes` returns: `ProcessResult`'s fields, the output left as bytes, whole."""

    argv: tuple[str, ...]
    pid: int
    exit_code: int
    stdout: bytes
    stderr: bytes
    timed_out: bool
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def run_bytes(
    cmd: Command,
    *,
    cwd: Path | str,
    timeout_s: float | None = 60.0,
    env: Env | None = None,
    stdin: bytes | None = None,
) -> BytesResult:
    """Blocking form for a command whose output is binary (a pack, an archive): `run`, with
    stdout and stderr kept as bytes, whole. The same process group, timeout and kills."""
    argv = _argv(cmd)
    started = time.monotonic()
    try:
        popen = subprocess.Popen(argv, **_spawn_options(cwd, env, stdin, merge_stderr=False))
    except OSError as e:
        raise _start_error(argv, cwd, e) from None
    timed_out = False
    with popen:
        try:
            out, err = popen.communicate(stdin, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _end(popen)
            try:
                out, err = popen.communicate(timeout=DRAIN_GRACE_S)
            except subprocess.TimeoutExpired:
                out, err = b"", b""
        except BaseException:
            _end(popen)
            raise
        else:
            _end(popen)
    return BytesResult(
        argv=tuple(argv),
        pid=popen.pid,
        exit_code=popen.returncode,
        stdout=out or b"",
        stderr=err or b"",
        timed_out=timed_out,
        duration_s=time.monotonic() - started,
    )


def _end(popen: subprocess.Popen[bytes]) -> None:
    end_group_sync(popen.pid, popen.poll)
    popen.wait()


@functools.cache
def _setpriv() -> str | None:
    return shutil.which("setpriv")


def _argv(cmd: Command) -> list[str]:
    argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    if not argv:
        raise ValueError("empty command")
    return argv


def _spawn_options(
    cwd: Path | str, env: Env | None, stdin: bytes | None, merge_stderr: bool
) -> dict[str, Any]:
    return {
        "cwd": cwd,
        "env": _environ(env),
        "stdin": subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        "start_new_session": True,
    }


def _start_error(argv: list[str], cwd: Path | str, e: OSError) -> ProcessStartError:
    return ProcessStartError(f"cannot run {argv[0]!r} in {cwd}: {e.strerror or e}")


def _environ(env: Env | None) -> dict[str, str] | None:
    if env is None:
        return None
    merged = {**os.environ, **env}
    return {key: value for key, value in merged.items() if value is not None}


def spawn_detached(
    argv: Sequence[str], *, cwd: Path | str, env: Env | None = None, log_path: Path
) -> int:
    """Start `argv` as a daemon and return its pid: in a new session (no terminal), stdin
    /dev/null, stdout and stderr appended to `log_path` (made 0600), not waited on. A short-lived
    `/bin/sh` starts it in the background and is reaped here, so the daemon is re-parented
    to init and never becomes this process's zombie."""
    if not argv:
        raise ValueError("empty command")
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # readable by its owner only
        os.close(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    script = '"$@" >>"$COVEY_DETACHED_LOG" 2>&1 </dev/null & echo $!'
    environ = _environ({**(env or {}), "COVEY_DETACHED_LOG": str(log_path)})
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", script, "sh", *argv],
            cwd=cwd,
            env=environ,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            start_new_session=True,
            timeout=30,
            check=False,
        )
    except OSError as e:
        raise _start_error(list(argv), cwd, e) from e
    text = done.stdout.decode().strip()
    if done.returncode != 0 or not text.isdigit():
        raise ProcessStartError(f"cannot start {argv[0]!r} in {cwd}: {done.stderr.decode()}")
    return int(text)


def watch_children_with_pidfds() -> bool:
    """Before `asyncio.run` in a process that runs many children at once (the supervisor):
    on Python 3.11 asyncio waits for each child from a thread of its own, started and
    handed over on the event loop (~0.4 ms of the loop's time per child); a pidfd
    watcher waits on the loop's selector instead. 3.12 does this by itself. False when
    the kernel (or a sandbox's seccomp) has no `pidfd_open`: the default stays."""
    if sys.version_info >= (3, 12):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    import asyncio

    asyncio.set_child_watcher(asyncio.PidfdChildWatcher())
    return True
