"""The migrations, their long ones split into named groups of statements, make the store they
always made: `sqlite_master`'s text of a fresh store, byte for byte, as
`tests/data/schema_landed.sql` recorded it from the migrations as they landed (m0001..m0007;
one added later comes on top and leaves this record alone)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from covey.store import Store
from covey.store.migrations import MIGRATIONS, Migration

RECORDED = Path(__file__).parent / "data" / "schema_landed.sql"
LANDED = 6
"""How many migrations the record covers: those on main when it was made (m0001..m0005 and
m0007)."""


def schema_text(conn: sqlite3.Connection) -> str:
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid")
    return (
        "\n".join(f"-- {kind} {name} on {table}\n{sql};" for kind, name, table, sql in rows if sql)
        + "\n"
    )


def made_by(migrations: tuple[Migration, ...]) -> str:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for migration in migrations:
            migration(conn)
        return schema_text(conn)
    finally:
        conn.close()


def test_the_landed_migrations_make_the_schema_they_made_when_they_landed() -> None:
    assert made_by(MIGRATIONS[:LANDED]) == RECORDED.read_text()


def test_a_fresh_store_has_the_schema_of_its_migrations(covey_home: Path) -> None:
    with Store.open() as store, store.read() as conn:
        assert schema_text(conn) == made_by(MIGRATIONS)
