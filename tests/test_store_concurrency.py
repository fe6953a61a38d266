"""Many processes writing one store at once: every write lands, none sees "database is locked"."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from covey.store import (
    SessionRow,
    Store,
    acquire_lease,
    insert_session,
    read_entries,
    read_events,
)

PROCESSES = 16
ROUNDS = 150

_WRITER = """
import pathlib, sys, time
from covey.store import (SessionRow, Store, acquire_lease, append_entry, append_event,
                         insert_session)
path, gate, index, rounds, shared_epoch = sys.argv[1:]
index, rounds, shared_epoch = int(index), int(rounds), int(shared_epoch)
sid = f"proc{index:04d}"
store = Store.open(pathlib.Path(path))
with store.write() as conn:
    insert_session(conn, SessionRow(id=sid, kind="background", cwd="/r", model="m",
                                    state="working"))
    epoch = acquire_lease(conn, sid, f"host-{index}", 60, now=time.time())
gate = pathlib.Path(gate)
(gate.parent / f"ready-{index}").touch()
while not gate.exists():
    time.sleep(0.005)
for i in range(rounds):
    with store.write() as conn:
        append_event(conn, sid, "tick", {"i": i})
    with store.write() as conn:
        assert append_entry(conn, sid, epoch, "message", {"i": i}) == i + 1
    with store.write() as conn:
        assert append_entry(conn, "shared01", shared_epoch, "message", {"p": index, "i": i})
print(store.statistics().busy_retries)
store.close()
"""


def test_sixteen_processes_append_at_once_and_every_row_lands(tmp_path: Path) -> None:
    path, gate = tmp_path / "covey.db", tmp_path / "go"
    with Store.open(path) as store:
        with store.write() as conn:
            insert_session(
                conn, SessionRow(id="shared01", kind="teammate", cwd="/r", model="m", state="idle")
            )
            shared_epoch = acquire_lease(conn, "shared01", "lead", 60, now=time.time())
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _WRITER,
                    str(path),
                    str(gate),
                    str(i),
                    str(ROUNDS),
                    str(shared_epoch),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(PROCESSES)
        ]
        while len(list(tmp_path.glob("ready-*"))) < PROCESSES and all(
            p.poll() is None for p in procs
        ):
            time.sleep(0.01)
        gate.touch()
        outputs = [p.communicate() for p in procs]
        failures = [err for _, err in outputs if err]
        assert [p.returncode for p in procs] == [0] * PROCESSES, failures[:1]
        assert not any("locked" in err or "busy" in err.lower() for _, err in outputs)

        with store.read() as conn:
            events = read_events(conn)
            shared = read_entries(conn, "shared01")
            own = {i: read_entries(conn, f"proc{i:04d}") for i in range(PROCESSES)}
    assert len(events) == PROCESSES * ROUNDS
    for i in range(PROCESSES):
        assert [e.data["i"] for e in own[i]] == list(range(ROUNDS))
        assert [e.data["i"] for e in events if e.session_id == f"proc{i:04d}"] == list(
            range(ROUNDS)
        )
        assert [e.data["i"] for e in shared if e.data["p"] == i] == list(range(ROUNDS))
    assert [e.seq for e in shared] == list(range(1, PROCESSES * ROUNDS + 1))


def test_a_thread_waits_for_another_threads_write_without_busy_errors(tmp_path: Path) -> None:
    """Threads of one process queue for the write lock in Python: a writer held up for
    several of SQLite's busy timeouts (50 ms) neither fails nor counts a busy retry."""
    store = Store.open(tmp_path / "covey.db")
    inside, let_go = threading.Event(), threading.Event()

    def holder() -> None:
        with store.write() as conn:
            insert_session(conn, SessionRow.new(id="first", kind="background", cwd="/r", model="m"))
            inside.set()
            let_go.wait(10)

    def writer() -> None:
        with store.write() as conn:
            insert_session(
                conn, SessionRow.new(id="second", kind="background", cwd="/r", model="m")
            )

    first = threading.Thread(target=holder)
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=writer)
    second.start()
    time.sleep(0.3)
    assert second.is_alive()  # still waiting for the first to commit
    let_go.set()
    first.join(10)
    second.join(10)
    with store.read() as conn:
        ids = {r[0] for r in conn.execute("SELECT id FROM sessions")}
    assert ids == {"first", "second"}
    assert store.statistics().busy_retries == 0
    store.close()
