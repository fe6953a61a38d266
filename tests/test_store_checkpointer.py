"""The WAL checkpointed on a thread of the store's own (`Store.checkpoint_in_background`),
not inside the commits of the thread that writes (the supervisor's event loop)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from covey.store import Store
from covey.store.events import append_event


def write_pages(store: Store, count: int) -> None:
    for i in range(count):
        with store.write() as conn:
            append_event(conn, None, "filler", {"i": i, "pad": "x" * 3000})


def test_a_background_thread_checkpoints_and_stops_with_the_store(tmp_path: Path) -> None:
    """~300 pages written: under SQLite's own threshold of 1,000, so only the background
    thread copies them; it is gone once the store is closed."""
    path = tmp_path / "covey.db"
    store = Store.open(path)
    store.checkpoint_in_background()
    checkpointer = store._checkpointer
    assert checkpointer is not None
    write_pages(store, 300)
    deadline = time.monotonic() + 10
    while checkpointer.checkpoints == 0:
        assert time.monotonic() < deadline, "no checkpoint from the background thread"
        time.sleep(0.05)
    store.close()
    assert not [t for t in threading.enumerate() if t.name == "covey-checkpoint"]
