"""`$COVEY_HOME` holds transcripts (code, command output): the directory is 0700 and the files
covey keeps there 0600, also when the directory already existed with looser modes."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bgtools import supervisor
from clitools import covey
from covey.store import Store

__all__ = ["supervisor"]  # the fixture, used by name


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common umask (files 0644, directories 0755 unless asked otherwise)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_home_is_0700_and_the_store_files_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "fresh" / "home"
    monkeypatch.setenv("COVEY_HOME", str(home))
    store = Store.open()
    with store.write() as conn:
        conn.execute("PRAGMA user_version")
    with store.read() as conn:
        conn.execute("SELECT 1")
    try:
        assert mode(home) == 0o700
        for name in ("covey.db", "covey.db-wal", "covey.db-shm"):
            assert mode(home / name) == 0o600, name
    finally:
        store.close()


def test_an_existing_loose_home_is_tightened(covey_home: Path) -> None:
    covey_home.chmod(0o755)
    (covey_home / "logs").mkdir(mode=0o755)
    for name in ("supervisor.pid", "logs/supervisor.log"):
        (covey_home / name).touch(mode=0o644)
    (covey_home / "settings.json").write_text("{}")
    (covey_home / "settings.json").chmod(0o644)
    Store.open().close()
    assert mode(covey_home) == 0o700 and mode(covey_home / "logs") == 0o700
    for name in ("covey.db", "supervisor.pid", "logs/supervisor.log"):
        assert mode(covey_home / name) == 0o600, name
    assert mode(covey_home / "settings.json") == 0o644  # the person's file, not covey's


def test_an_existing_loose_store_is_tightened(covey_home: Path) -> None:
    Store.open().close()
    for name in ("covey.db", "covey.db-wal", "covey.db-shm"):
        if (covey_home / name).exists():
            (covey_home / name).chmod(0o644)
    covey_home.chmod(0o755)
    Store.open().close()
    assert mode(covey_home) == 0o700 and mode(covey_home / "covey.db") == 0o600


def test_the_supervisors_pid_lock_and_log_files_are_0600(
    supervisor: Path, covey_home: Path
) -> None:
    covey_home.rmdir()  # the supervisor makes it
    started = covey("daemon", "start", cwd=supervisor)
    assert started.code == 0, started.err
    assert mode(covey_home) == 0o700
    for name in ("supervisor.pid", "supervisor.lock", "logs/supervisor.log", "covey.db"):
        assert mode(covey_home / name) == 0o600, name
    assert mode(covey_home / "logs") == 0o700
