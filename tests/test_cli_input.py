"""Odd prompt input for `covey -p` / `covey --bg`: never a traceback, never a recorded session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clitools import CliRun, covey


def covey_bytes(*args: str, cwd: Path, stdin: bytes) -> CliRun:
    proc = subprocess.run(
        [sys.executable, "-m", "covey", *args],
        cwd=cwd,
        env=os.environ,
        input=stdin,
        capture_output=True,
        timeout=120,
    )
    return CliRun(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def _no_sessions(repo: Path) -> None:
    listed = covey("sessions", "--json", "--all", cwd=repo)
    assert listed.code == 0, listed.err
    assert listed.json() == []


@pytest.mark.parametrize(
    ("stdin", "needle"),
    [
        (b"fix the \xff\xfe test", "not UTF-8"),
        (b"caf\xe9 au lait", "0xe9"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "NUL byte"),
    ],
)
@pytest.mark.parametrize("mode", ["-p", "--bg"])
def test_a_prompt_that_is_not_text_is_one_line_exit_2_and_records_nothing(
    git_repo: Path, tmp_path: Path, stdin: bytes, needle: str, mode: str
) -> None:
    script = tmp_path / "s.yaml"
    script.write_text(yaml.safe_dump({"turns": [{"text": "done"}]}))
    run = covey_bytes(mode, "--model", f"scripted:{script}", cwd=git_repo, stdin=stdin)
    assert run.code == 2, (run.out, run.err)
    assert "Traceback" not in run.err
    (line,) = run.err.strip().splitlines()
    assert "standard input" in line and needle in line, line
    _no_sessions(git_repo)


def test_a_utf8_prompt_on_stdin_runs(git_repo: Path, tmp_path: Path) -> None:
    script = tmp_path / "s.yaml"
    script.write_text(yaml.safe_dump({"turns": [{"text": "done"}]}))
    run = covey_bytes(
        "-p", "--model", f"scripted:{script}", cwd=git_repo, stdin="répare ✓\n".encode()
    )
    assert run.code == 0, run.err
    assert run.out == "done\n"


def test_a_prompt_argument_that_is_not_utf8_is_refused_too(git_repo: Path, tmp_path: Path) -> None:
    script = tmp_path / "s.yaml"
    script.write_text(yaml.safe_dump({"turns": [{"text": "done"}]}))
    proc = subprocess.run(
        [sys.executable, "-m", "covey", "-p", b"caf\xe9", "--model", f"scripted:{script}"],
        cwd=git_repo,
        env=os.environ,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.decode().strip().splitlines()
    assert "the prompt argument is not UTF-8 text (invalid byte 0xe9 at offset 3)" in line
    _no_sessions(git_repo)
