"""A disk that refuses the store's writes (full, or a file-size limit): one line naming the
file, exit 1, the transaction rolled back and the store intact."""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clitools import covey
from covey.store import Store
from covey.store.db import StoreWriteFailed

BIG = "x" * 3_000_000


def test_a_full_store_names_the_file_and_keeps_what_was_committed(tmp_path: Path) -> None:
    path = tmp_path / "covey.db"
    store = Store.open(path)
    try:
        with store.write() as conn:
            conn.execute("CREATE TABLE scratch (body TEXT)")
            conn.execute("INSERT INTO scratch VALUES ('kept')")
        with store.write() as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            # SQLite answers SQLITE_FULL once the file would outgrow this, as on a full disk.
            conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        with pytest.raises(StoreWriteFailed) as caught, store.write() as conn:
            conn.execute("INSERT INTO scratch VALUES ('half')")
            conn.execute("INSERT INTO scratch VALUES (?)", (BIG,))
        message = str(caught.value)
        assert message.startswith(f"{path}: cannot write the covey store: the disk is full")
        assert "\n" not in message
        assert caught.value.exit_code == 1
        with store.read() as conn:
            rows = [r[0] for r in conn.execute("SELECT body FROM scratch")]
        assert rows == ["kept"], "the failed transaction was rolled back whole"
        with store.write() as conn:  # space again: the store goes on
            conn.execute("PRAGMA max_page_count = 1073741823")
            conn.execute("INSERT INTO scratch VALUES (?)", (BIG,))
    finally:
        store.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert check.execute("SELECT count(*) FROM scratch").fetchone()[0] == 2


def _limit_file_size() -> None:
    """In the child: no file may grow past 1 MB (writes beyond fail with EFBIG; Python
    ignores SIGXFSZ), so the store's WAL cannot take a 3 MB reply."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))


def test_covey_p_whose_store_cannot_grow_fails_in_one_line(
    git_repo: Path, tmp_path: Path, covey_home: Path
) -> None:
    script = tmp_path / "s.yaml"
    script.write_text(yaml.safe_dump({"turns": [{"text": BIG}]}))
    proc = subprocess.run(
        [sys.executable, "-m", "covey", "-p", "say a lot", "--model", f"scripted:{script}"],
        cwd=git_repo,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_file_size,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"covey: {covey_home / 'covey.db'}: cannot write the covey store"), line
    assert proc.stdout == ""
    with sqlite3.connect(covey_home / "covey.db") as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = Store.open(covey_home / "covey.db")
    try:
        with store.read() as conn:
            (state, reason) = conn.execute("SELECT state, reason FROM sessions").fetchone()
            kinds = [r[0] for r in conn.execute("SELECT kind FROM transcript")]
    finally:
        store.close()
    assert state == "failed" and reason.startswith("store_write_failed: "), reason
    assert "message" in kinds  # the prompt was saved; the reply that did not fit was not
    # with room again, the session resumes from its last saved step
    script.write_text(yaml.safe_dump({"turns": [{"text": "resumed fine"}]}))
    sid = json.loads(covey("sessions", "--json", cwd=git_repo).out)[0]["id"]
    resumed = covey("-p", "--resume", sid, "go on", cwd=git_repo)
    assert resumed.code == 0, resumed.err
    assert resumed.out == "resumed fine\n"
