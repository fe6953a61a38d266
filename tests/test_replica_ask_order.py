"""The reply that answers a node session's question is sent to the node however the ids of
the tree's commands fall: a reply sent before the node's `needs_input` row came home, then a
child's command forwarded meanwhile (a higher id), must not hide the answer for good."""

from __future__ import annotations

from pathlib import Path

from covey.executors.replica import claim_forwarded
from covey.executors.replica_ask import forwardable_commands
from covey.store import Store
from covey.store._json import dump_json
from covey.store.commands import enqueue_command
from covey.store.session_meta import Pending, SessionMeta
from covey.store.sessions import SessionRow, insert_session


def test_an_answer_older_than_a_forwarded_childs_command_is_still_sent(tmp_path: Path) -> None:
    with Store.open(tmp_path / "user.db") as store:
        root = SessionRow.new(id="root", kind="background", cwd=str(tmp_path), model="m",
                              state="working", now=1.0)  # fmt: skip
        child = SessionRow.new(id="kid", kind="subagent", cwd=str(tmp_path), model="m",
                               state="working", parent_id="root", now=1.0)  # fmt: skip
        with store.write() as conn:
            insert_session(conn, root)
            insert_session(conn, child)
            answer = enqueue_command(conn, "root", "reply", {"text": "yes"})  # sent early
            stop = enqueue_command(conn, "kid", "stop")
        forwarded = forwardable_commands(store, "root", 0)
        assert [c.id for c in forwarded] == [stop]  # the row does not wait yet
        claim_forwarded(store, forwarded, "pump")
        asked = Pending(kind="permission", text="Run `make`?", options=["yes", "no"],
                        tool="Bash", input={"command": "make"})  # fmt: skip
        with store.write() as conn:  # the node's question comes home (asked before the reply)
            conn.execute(
                "UPDATE sessions SET state = 'needs_input', meta = ?, updated_at = 0.5"
                " WHERE id = 'root'",
                (dump_json(SessionMeta(pending=asked).dump()),),
            )
        assert [c.id for c in forwardable_commands(store, "root", stop)] == [answer]
