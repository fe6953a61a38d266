"""Check an existing store file read-only before anything writes to it.

A file that is not a database, is corrupt, belongs to another program or has a schema newer
than this code knows is reported as a one-line `UserError`; covey never repairs, migrates or
overwrites such a file. The check is cheap (the header, `user_version`, `sqlite_master`), not a
full `PRAGMA quick_check`, so opening a large store stays fast.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from covey.errors import UserError

__all__ = ["MOVE_ASIDE", "check_store_file", "error_code", "newer_schema", "open_failure"]

_MAGIC = b"SQLite format 3\x00"
MOVE_ASIDE = "move it aside; covey never repairs or overwrites it, and creates a new store"

_UNUSABLE = {
    sqlite3.SQLITE_NOTADB: "not an SQLite database",
    sqlite3.SQLITE_CORRUPT: "corrupt",
}
_CANNOT_OPEN = {
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PERM,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_AUTH,
}


def error_code(e: sqlite3.Error) -> int:
    """The primary SQLite result code of an error (extended codes folded), or -1."""
    code = getattr(e, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else -1


def open_failure(path: Path, e: sqlite3.Error) -> UserError | None:
    """The UserError for an sqlite error that means the file cannot be used, else None."""
    code = error_code(e)
    if code in _UNUSABLE:
        return UserError(f"{path}: the covey store is {_UNUSABLE[code]}; {MOVE_ASIDE}")
    if code in _CANNOT_OPEN:
        return UserError(f"{path}: cannot open the covey store ({e}); check its permissions")
    return None


def check_store_file(path: Path, known_version: int) -> None:
    """Raise UserError unless `path` is absent, empty or a covey store this code can migrate."""
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not the covey store; {MOVE_ASIDE}")
    try:
        with path.open("rb") as f:
            head = f.read(len(_MAGIC))
    except FileNotFoundError:
        return
    except OSError as e:
        raise UserError(
            f"{path}: cannot read the covey store ({e.strerror}); check its permissions"
        ) from None
    if not head:
        return  # SQLite treats an empty file as a new database
    if head != _MAGIC:
        raise UserError(f"{path}: the covey store is not an SQLite database; {MOVE_ASIDE}")
    if not os.access(path, os.W_OK):
        raise UserError(f"{path}: cannot write the covey store; check its permissions")
    version, foreign = _inspect(path)
    if version > known_version:
        raise UserError(newer_schema(path, version, known_version))
    if version == 0 and foreign:
        names = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        raise UserError(
            f"{path}: an SQLite database of another program (tables {names}); {MOVE_ASIDE}"
        )


def newer_schema(path: Path, version: int, known_version: int) -> str:
    return (
        f"{path}: the covey store has schema version {version}, newer than this covey knows "
        f"({known_version}); upgrade covey, or {MOVE_ASIDE}"
    )


def _inspect(path: Path) -> tuple[int, list[str]]:
    """`user_version` and the names of the schema's objects, read through a read-only connection."""
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
        conn.execute("BEGIN")  # one snapshot: another process may be migrating the file now
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        ).fetchall()
        conn.execute("COMMIT")
    except sqlite3.Error as e:
        failure = open_failure(path, e)
        if failure is None:
            raise
        raise failure from None
    finally:
        if conn is not None:
            conn.close()
    return version, [str(r[0]) for r in rows]
