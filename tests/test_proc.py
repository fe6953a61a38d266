"""covey.proc: real subprocesses, process-group kills, capped output."""

from __future__ import annotations

import ast
import asyncio
import sys
from pathlib import Path

import pytest

import covey.proc
from covey._spawn_off_loop import _SPAWN_THREADS
from covey.proc import (
    CommandFailed,
    ProcessStartError,
    elide,
    group_alive,
    run,
    run_bytes,
    run_process,
)


def alive(pid: int) -> bool:
    """True while `pid` is a live process (zombies left to a non-reaping init count as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return stat.rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")


def test_public_surface() -> None:
    assert covey.proc.__all__ == [
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


def test_captures_stdout_stderr_and_exit_code(tmp_path: Path) -> None:
    r = asyncio.run(
        run_process("pwd; echo oops >&2; exit 3", cwd=tmp_path, timeout_s=30),
    )
    assert r.stdout == f"{tmp_path}\n"
    assert r.stderr == "oops\n"
    assert r.output == f"{tmp_path}\noops\n"
    assert r.exit_code == 3 and not r.timed_out and not r.ok


def test_merged_streams_keep_their_order(tmp_path: Path) -> None:
    r = asyncio.run(
        run_process(
            ["bash", "-c", "echo 1; echo 2 >&2; echo 3"],
            cwd=tmp_path,
            timeout_s=30,
            merge_stderr=True,
        )
    )
    assert r.stdout == "1\n2\n3\n" and r.stderr == "" and r.ok


def test_stdin_and_env_overlay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVEY_TEST_GONE", "present")
    r = asyncio.run(
        run_process(
            'cat; echo "$COVEY_TEST_SET" "${COVEY_TEST_GONE:-unset}"',
            cwd=tmp_path,
            timeout_s=30,
            stdin=b"from stdin\n",
            env={"COVEY_TEST_SET": "yes", "COVEY_TEST_GONE": None},
        )
    )
    assert r.stdout == "from stdin\nyes unset\n"


def test_large_stdin_to_a_child_that_exits_early(tmp_path: Path) -> None:
    r = asyncio.run(run_process("exit 0", cwd=tmp_path, timeout_s=30, stdin=b"x" * 5_000_000))
    assert r.ok


def test_output_is_capped_head_and_tail(tmp_path: Path) -> None:
    script = "import sys; sys.stdout.write('HEAD' + 'x' * 5_000_000 + 'TAIL')"
    r = asyncio.run(
        run_process([sys.executable, "-c", script], cwd=tmp_path, timeout_s=60, output_limit=100)
    )
    elided = 5_000_008 - 100
    assert r.stdout.startswith("HEAD")
    assert r.stdout.endswith("TAIL")
    assert f"\n... [{elided:,} bytes elided] ...\n" in r.stdout
    assert len(r.stdout) < 200


def test_elide_keeps_short_text_and_cuts_long_text() -> None:
    assert elide("short", 10) == "short"
    assert elide("0123456789abcdefghij", 10) == "01234\n... [10 bytes elided] ...\nfghij"
    assert elide(b"abc", None) == "abc"


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    r = asyncio.run(
        run_process("sleep 1000 & echo $!; wait", cwd=tmp_path, timeout_s=1),
    )
    child = int(r.stdout.strip())
    assert r.timed_out and not r.ok
    assert r.exit_code < 0
    assert not group_alive(r.pid)
    assert not alive(child)


def test_a_group_that_ignores_sigterm_gets_sigkill(tmp_path: Path) -> None:
    r = asyncio.run(
        run_process("trap '' TERM; sleep 1000 & echo $!; wait", cwd=tmp_path, timeout_s=1),
    )
    assert r.timed_out
    assert not group_alive(r.pid)
    assert not alive(int(r.stdout.strip()))


def test_background_children_do_not_outlive_the_command(tmp_path: Path) -> None:
    r = asyncio.run(run_process("sleep 1000 & echo $!", cwd=tmp_path, timeout_s=30))
    assert r.ok and not r.timed_out
    assert not group_alive(r.pid)
    assert not alive(int(r.stdout.strip()))


def test_cancellation_kills_the_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"

    async def main() -> None:
        task = asyncio.create_task(
            run_process(f"sleep 1000 & echo $! > {pid_file}; wait", cwd=tmp_path, timeout_s=None)
        )
        while not pid_file.exists() or not pid_file.read_text().strip():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert not alive(int(pid_file.read_text()))


def test_a_cancellation_during_the_spawn_neither_hangs_nor_leaks(tmp_path: Path) -> None:
    """Cancelled at once (inside asyncio's spawn, which hung for good on 3.11) or a moment later:
    each run ends promptly and nothing it started survives."""
    pid_file = tmp_path / "child.pid"

    async def once(delay: float) -> None:
        pid_file.unlink(missing_ok=True)
        task = asyncio.create_task(
            run_process(f"sleep 1000 & echo $! > {pid_file}; wait", cwd=tmp_path, timeout_s=None)
        )
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), 30)

    async def main() -> None:
        for delay in (0, 0, 0.001, 0.003, 0.005, 0):
            await once(delay)
            if pid_file.exists() and pid_file.read_text().strip():
                assert not alive(int(pid_file.read_text()))

    asyncio.run(main())


def test_missing_program_is_a_start_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessStartError, match="no-such-program"):
        asyncio.run(run_process(["no-such-program-xyz"], cwd=tmp_path, timeout_s=5))
    with pytest.raises(ProcessStartError):
        run(["no-such-program-xyz"], cwd=tmp_path)


def test_sync_run_checks_and_captures(tmp_path: Path) -> None:
    r = run(["bash", "-c", "echo out; echo err >&2"], cwd=tmp_path, timeout_s=30, check=True)
    assert (r.stdout, r.stderr, r.exit_code) == ("out\n", "err\n", 0)
    with pytest.raises(CommandFailed, match=r"exited with 4: bad"):
        run("echo bad >&2; exit 4", cwd=tmp_path, check=True)
    assert run(["cat"], cwd=tmp_path, stdin=b"abc").stdout == "abc"


def test_sync_run_timeout_kills_the_group(tmp_path: Path) -> None:
    r = run("sleep 1000 & echo $!; wait", cwd=tmp_path, timeout_s=1)
    assert r.timed_out
    assert not group_alive(r.pid)
    assert not alive(int(r.stdout))
    with pytest.raises(CommandFailed, match="timed out"):
        run("sleep 1000", cwd=tmp_path, timeout_s=0.2, check=True)


def test_run_bytes_carries_binary_output_whole(tmp_path: Path) -> None:
    data = bytes(range(256)) * 64
    r = run_bytes(["cat"], cwd=tmp_path, timeout_s=30, stdin=data)
    assert r.ok and r.stdout == data and r.stderr == b""
    failed = run_bytes("printf '\\377' >&2; exit 3", cwd=tmp_path)
    assert (failed.ok, failed.exit_code, failed.stderr) == (False, 3, b"\xff")


def test_run_bytes_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    r = run_bytes("sleep 1000 & echo $!; wait", cwd=tmp_path, timeout_s=1)
    assert r.timed_out and not r.ok
    assert not group_alive(r.pid)
    assert not alive(int(r.stdout))


def test_only_proc_starts_processes() -> None:
    """ARCHITECTURE: only `proc.py` spawns (with its private `_spawn_off_loop.py`)."""
    src = Path(covey.proc.__file__).parent
    found = [
        f"{path.relative_to(src)}:{line} {what}"
        for path in sorted(src.rglob("*.py"))
        if path.relative_to(src).as_posix() not in ("proc.py", "_spawn_off_loop.py")
        for line, what in _process_starts(ast.parse(path.read_text()))
    ]
    assert found == []


_SPAWNING_MODULES = {"subprocess", "multiprocessing", "pty"}
_OS_SPAWNS = {"fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "popen"}
_OS_SPAWNS |= {f"{verb}{tail}" for verb in ("exec", "spawn") for tail in ("l", "le", "lp", "lpe")}
_OS_SPAWNS |= {f"{verb}{tail}" for verb in ("exec", "spawn") for tail in ("v", "ve", "vp", "vpe")}
_ASYNCIO_SPAWNS = {"create_subprocess_exec", "create_subprocess_shell"}
_ASYNCIO_SPAWNS |= {"subprocess_exec", "subprocess_shell"}


def _process_starts(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a module imports a spawning module or calls something that starts a process."""
    starts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = {alias.name.split(".")[0] for alias in node.names} & _SPAWNING_MODULES
        elif isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".")[0]
            names = {module} & _SPAWNING_MODULES
            if module == "os":
                names |= {alias.name for alias in node.names} & _OS_SPAWNS
        elif isinstance(node, ast.Attribute):
            on_os = isinstance(node.value, ast.Name) and node.value.id == "os"
            names = {node.attr} & (_ASYNCIO_SPAWNS | (_OS_SPAWNS if on_os else set()))
        else:
            continue
        starts += [(node.lineno, name) for name in sorted(names)]
    return starts


def test_the_process_start_guard_sees_each_way_in() -> None:
    code = (
        "import subprocess\nfrom multiprocessing import Process\nfrom os import fork\n"
        "os.execvp('x', [])\nawait asyncio.create_subprocess_exec('x')\n"
        "loop.subprocess_exec(f)\nplan.system\n"
    )
    assert sorted(name for _, name in _process_starts(ast.parse(code))) == [
        "create_subprocess_exec", "execvp", "fork", "multiprocessing", "subprocess",
        "subprocess_exec",
    ]  # fmt: skip


def test_pidfd_child_watcher_waits_for_children_without_threads(tmp_path: Path) -> None:
    """In a fresh interpreter (the watcher is process-wide): after the switch, 20 children at
    once run and report their exit codes with no waiter thread started for any of them."""
    code = """
import asyncio, sys, threading
from covey.proc import run_process, watch_children_with_pidfds
switched = watch_children_with_pidfds()
async def main():
    runs = asyncio.gather(*(
        run_process(["sh", "-c", f"sleep 0.5; exit {i % 3}"], cwd=".", timeout_s=10)
        for i in range(20)
    ))
    await asyncio.sleep(0.2)  # every child started, none ended
    threads = threading.active_count()
    return [r.exit_code for r in await runs], threads
codes, threads = asyncio.run(main())
print(switched, codes == [i % 3 for i in range(20)], threads)
"""
    done = run([sys.executable, "-c", code], cwd=tmp_path, timeout_s=60)
    switched, codes_ok, threads = done.stdout.split()
    assert codes_ok == "True", done.stderr
    if sys.version_info >= (3, 12):
        assert switched == "False"  # asyncio picks pidfds by itself there
    elif switched == "True":  # the default watcher has a waiter thread per child running;
        assert int(threads) <= 1 + _SPAWN_THREADS  # here only the threads that start them


def test_children_start_off_the_event_loop(tmp_path: Path) -> None:
    """Popen (which returns only once the child has exec'd) runs on a spawn thread, not the
    loop's: seen by an audit hook, in a fresh interpreter (hooks cannot be removed)."""
    code = """
import asyncio, sys, threading
from covey.proc import run_process
starters = []
def hook(event, args):
    if event == "subprocess.Popen":
        starters.append(threading.current_thread() is threading.main_thread())
sys.addaudithook(hook)
async def main():
    return await run_process(["sh", "-c", "echo out; exit 3"], cwd=".", timeout_s=10)
result = asyncio.run(main())
print(starters, result.exit_code, result.stdout.strip())
"""
    done = run([sys.executable, "-c", code], cwd=tmp_path, timeout_s=60)
    assert done.stdout.split() == ["[False]", "3", "out"], done.stderr
