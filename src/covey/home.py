"""`$COVEY_HOME` kept private: the directory 0700, the files covey keeps there 0600.

Transcripts hold code and command output, so the store (`covey.db` and SQLite's `-wal` and
`-shm`, which SQLite creates with the store's own mode), the supervisor's pid, lock and log
files are readable by their owner only. A home made by an older covey, or by hand, with looser
modes is narrowed the next time covey opens it; the person's own files there (settings,
credentials, agents) are left as they are.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from covey.errors import UserError

__all__ = ["PRIVATE_FILES", "covey_home", "private_file", "private_home"]

PRIVATE_FILES = ("covey.db", "covey.db-wal", "covey.db-shm", "supervisor.pid", "supervisor.lock")
"""Files covey keeps in `$COVEY_HOME`, readable by their owner only (transcripts hold code and
command output); `logs/` and everything in it too."""


def covey_home() -> Path:
    """Where user state lives: `$COVEY_HOME`, or `~/.covey`."""
    return Path(os.environ.get("COVEY_HOME") or "~/.covey").expanduser()


def private_home() -> Path:
    """`covey_home()`, made with mode 0700 when missing. An existing one loses any group and
    other permissions, and so do the files covey keeps in it (`PRIVATE_FILES`, `logs/`):
    directories become at most 0700, files at most 0600."""
    home = covey_home()
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{home}: cannot create covey's directory ({e.strerror})") from None
    _narrow(home, 0o700)
    for name in PRIVATE_FILES:
        _narrow(home / name, 0o600)
    logs = home / "logs"
    if _narrow(logs, 0o700):
        with contextlib.suppress(OSError):
            for entry in logs.iterdir():
                _narrow(entry, 0o600)
    return home


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists (then narrow it to at most 0600)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        _narrow(path, 0o600)


def _narrow(path: Path, allowed: int) -> bool:
    """Drop the permission bits of `path` that `allowed` lacks (symlinks and files of other
    owners are left alone); False when there is no such path."""
    try:
        st = path.lstat()
    except OSError:
        return False
    if not stat.S_ISLNK(st.st_mode) and st.st_uid == os.getuid() and st.st_mode & 0o777 & ~allowed:
        with contextlib.suppress(OSError):
            os.chmod(path, stat.S_IMODE(st.st_mode) & allowed)
    return True
