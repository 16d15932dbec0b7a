"""The ``Database`` contract, run unchanged against every storage adapter.

Each test opens the adapter for ``database_url`` (a SQLite file, or a fresh
PostgreSQL database of its own) through :func:`keel.storage.db.url.open_database`, so the
same statements with ``?`` placeholders must behave the same on both engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from keel.query.dialect import dialect_of
from keel.storage.db.database import Database
from keel.storage.db.errors import DatabaseError, SchemaMismatchError, UniqueViolationError
from keel.storage.db.sqlite import SQLiteDatabase
from keel.storage.db.url import open_database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A connected adapter with an empty ``items`` table."""
    database = open_database(database_url)
    await database.connect()
    d = dialect_of(database)
    try:
        await database.execute(
            "CREATE TABLE items ("
            "id TEXT PRIMARY KEY NOT NULL, "
            f"name {d.column_type('text')} UNIQUE, "
            f"score {d.column_type('number')}, "
            f"flag {d.column_type('bool')}, "
            f"doc {d.column_type('json')})"
        )
        yield database
    finally:
        await database.close()


async def _ids(db: Database) -> list[str]:
    return [row[0] for row in await db.fetch_all("SELECT id FROM items ORDER BY id")]


# -- statements with ? placeholders --------------------------------------------


async def test_execute_returns_rows_changed(db: Database) -> None:
    """execute binds ? placeholders and returns the number of rows it changed."""
    inserted = await db.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("a", "x"))
    await db.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("b", "y"))
    updated = await db.execute("UPDATE items SET score = ? WHERE id IN (?, ?)", (1, "a", "b"))
    deleted = await db.execute("DELETE FROM items WHERE id = ?", ("missing",))
    assert (1, 2, 0) == (inserted, updated, deleted)


async def test_fetch_all_returns_tuples_in_select_order(db: Database) -> None:
    """fetch_all returns every matching row as a tuple in select-list order."""
    await db.execute("INSERT INTO items (id, name, score) VALUES (?, ?, ?)", ("a", "x", 1))
    await db.execute("INSERT INTO items (id, name, score) VALUES (?, ?, ?)", ("b", "y", 2))
    await db.execute("INSERT INTO items (id, name, score) VALUES (?, ?, ?)", ("c", "z", 3))
    rows = await db.fetch_all("SELECT name, id FROM items WHERE score >= ? ORDER BY id DESC", (2,))
    assert [("z", "c"), ("y", "b")] == rows


async def test_fetch_one_returns_first_row_or_none(db: Database) -> None:
    """fetch_one returns the first row of the result, or None when there is none."""
    await db.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("a", "x"))
    await db.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("b", "y"))
    first = await db.fetch_one("SELECT id FROM items ORDER BY id")
    missing = await db.fetch_one("SELECT id FROM items WHERE id = ?", ("nope",))
    assert (("a",), None) == (first, missing)


# -- transactions ----------------------------------------------------------------


async def test_committed_transaction_is_visible_to_plain_reads(db: Database) -> None:
    """Rows written in a transaction are visible to plain reads once it commits."""
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("a", "x"))
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("b", "y"))
        assert [("a",), ("b",)] == await tx.fetch_all("SELECT id FROM items ORDER BY id")
    assert ["a", "b"] == await _ids(db)


async def test_committed_transaction_is_visible_to_another_adapter(db: Database) -> None:
    """A commit is visible to a second adapter on the same database (another worker)."""
    other = open_database(db.url)
    await other.connect()
    try:
        assert [] == await other.fetch_all("SELECT id FROM items")
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("a", "x"))
        assert [("a",)] == await other.fetch_all("SELECT id FROM items")
    finally:
        await other.close()


async def test_exception_in_transaction_rolls_back(db: Database) -> None:
    """An exception raised inside the block rolls back every statement and propagates."""

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("a", "x"))
            await tx.execute("UPDATE items SET score = ? WHERE id = ?", (5, "a"))
            raise Boom
    assert [] == await _ids(db)


async def test_database_is_usable_after_rollback(db: Database) -> None:
    """After a rolled-back transaction the next transaction commits normally."""
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("a", "x"))
            raise RuntimeError("abort")
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("a", "x"))
    assert ["a"] == await _ids(db)


async def test_concurrent_transactions_all_commit(db: Database) -> None:
    """Concurrent read-modify-write transactions in one process all commit, none lost."""
    await db.execute("INSERT INTO items (id, score) VALUES (?, ?)", ("counter", 0))

    async def bump() -> None:
        async with db.transaction() as tx:
            if tx.dialect_name == "postgres":
                row = await tx.fetch_one(
                    "SELECT score FROM items WHERE id = ? FOR UPDATE", ("counter",)
                )
            else:
                row = await tx.fetch_one("SELECT score FROM items WHERE id = ?", ("counter",))
            assert row is not None
            await tx.execute("UPDATE items SET score = ? WHERE id = ?", (row[0] + 1, "counter"))

    await asyncio.gather(*(bump() for _ in range(20)))
    assert (20,) == await db.fetch_one("SELECT score FROM items WHERE id = ?", ("counter",))


# -- errors ------------------------------------------------------------------------


async def test_duplicate_unique_value_raises_unique_violation(db: Database) -> None:
    """A duplicate value in a unique column raises UniqueViolationError naming the table."""
    await db.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("a", "x"))
    with pytest.raises(UniqueViolationError) as caught:
        await db.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("b", "x"))
    assert UniqueViolationError is type(caught.value)
    assert "items" == caught.value.table


async def test_unique_violation_in_transaction_rolls_back_everything(db: Database) -> None:
    """A unique violation escaping a transaction rolls back its earlier statements too."""
    await db.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("a", "x"))
    with pytest.raises(UniqueViolationError):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("b", "y"))
            await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("c", "x"))
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("d", "z"))
    assert ["a", "d"] == await _ids(db)


async def test_transaction_is_unusable_after_unique_violation(db: Database) -> None:
    """After a unique violation, further statements in that transaction raise DatabaseError."""
    await db.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("a", "x"))
    with pytest.raises(DatabaseError):
        async with db.transaction() as tx:
            with pytest.raises(UniqueViolationError):
                await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("b", "x"))
            await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("c", "y"))
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("d", "z"))
    assert ["a", "d"] == await _ids(db)


async def test_swallowed_violation_never_reports_a_lost_commit(db: Database) -> None:
    """Leaving a transaction normally either commits its successful statements or raises."""
    succeeded: list[str] = []
    try:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("a", "x"))
            succeeded.append("a")
            with pytest.raises(UniqueViolationError):
                await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("b", "x"))
            # Carry on, as code that handles the violation itself would.
            try:
                await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("c", "y"))
            except DatabaseError:
                pass
            else:
                succeeded.append("c")
    except DatabaseError:
        committed = False
    else:
        committed = True
    # A block that returned normally must have committed what succeeded in it.
    assert (succeeded if committed else []) == await _ids(db)


@pytest.mark.parametrize("method", ["fetch_all", "fetch_one", "execute"])
async def test_missing_table_raises_schema_mismatch(db: Database, method: str) -> None:
    """A statement on a table that does not exist raises SchemaMismatchError."""
    with pytest.raises(SchemaMismatchError):
        await getattr(db, method)("SELECT id FROM no_such_table WHERE id = ?", ("a",))


async def test_missing_table_in_transaction_raises_schema_mismatch(db: Database) -> None:
    """Inside a transaction, a missing table raises SchemaMismatchError and rolls back."""
    with pytest.raises(SchemaMismatchError):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("a", "x"))
            await tx.execute("INSERT INTO no_such_table (id) VALUES (?)", ("a",))
    assert [] == await _ids(db)


async def test_missing_column_raises_schema_mismatch(db: Database) -> None:
    """A statement naming a column that does not exist raises SchemaMismatchError."""
    with pytest.raises(SchemaMismatchError):
        await db.fetch_all("SELECT no_such_column FROM items")


# -- data versions -------------------------------------------------------------------


async def test_fetch_versioned_returns_the_row_or_none(db: Database) -> None:
    """fetch_versioned gives the point read's row (None when there is none) and a version."""
    await db.execute("INSERT INTO items (id, name, score) VALUES (?, ?, ?)", ("a", "x", None))
    found, version = await db.fetch_versioned("SELECT name, score FROM items WHERE id = ?", ("a",))
    missing, _ = await db.fetch_versioned("SELECT name FROM items WHERE id = ?", ("b",))
    assert (("x", None), None) == (found, missing)
    assert version is not None


async def test_versions_hold_while_nothing_commits(db: Database) -> None:
    """Reads between two versioned reads leave the version as it was.

    Note: on PostgreSQL any commit in the cluster moves the version, including
    an autovacuum's ANALYZE; one pair of equal versions in a few tries shows
    the version holds, where a version that moved on every call never would.
    """
    await db.execute("INSERT INTO items (id, name) VALUES (?, ?)", ("a", "x"))
    pairs = []
    for _ in range(5):
        _, before = await db.fetch_versioned("SELECT name FROM items WHERE id = ?", ("a",))
        await db.fetch_all("SELECT id FROM items")
        _, after = await db.fetch_versioned("SELECT name FROM items WHERE id = ?", ("a",))
        pairs.append((before, after))
    assert any(before == after for before, after in pairs), pairs


async def test_versions_change_with_every_commit(db: Database) -> None:
    """A commit through this adapter or another one (another worker) changes the version."""
    other = open_database(db.url)
    await other.connect()
    try:
        seen = []
        for n, writer in enumerate([db, other, db, other]):
            _, version = await db.fetch_versioned("SELECT 1 FROM items WHERE id = ?", ("a",))
            seen.append(version)
            async with writer.transaction() as tx:
                await tx.execute("INSERT INTO items (id, name) VALUES (?, ?)", (f"r{n}", f"n{n}"))
        _, version = await db.fetch_versioned("SELECT 1 FROM items WHERE id = ?", ("a",))
        seen.append(version)
        assert len(seen) == len(set(seen)), seen
    finally:
        await other.close()


# -- values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "score", "flag", "doc"),
    [
        ("plain", 1.5, True, {"a": [1, 2, {"b": None}], "c": "d"}),
        ("unicode ✓ 'quoted' ? placeholders-looking", -1234.0625, False, [1, "two", 3.5]),
        ("", 0.0, True, "just a string"),
        ("nulls", None, None, None),
    ],
)
async def test_values_round_trip(
    db: Database, name: str, score: float | None, flag: bool | None, doc: Any
) -> None:
    """str, float, bool, None and JSON text come back as they were written."""
    doc_text = None if doc is None else orjson.dumps(doc).decode()
    async with db.transaction() as tx:
        await tx.execute(
            "INSERT INTO items (id, name, score, flag, doc) VALUES (?, ?, ?, ?, ?)",
            ("r", name, score, flag, doc_text),
        )
    row = await db.fetch_one(
        f"SELECT name, score, flag, {dialect_of(db).json_text('doc')} FROM items WHERE id = ?",
        ("r",),
    )
    assert row is not None
    read_name, read_score, read_flag, read_doc = row
    decoded = None if read_doc is None else orjson.loads(read_doc)
    # SQLite has no boolean or float storage class: 1/0 and integral NUMERICs
    # come back as ints, which the field layer converts; compare by value.
    assert (name, score, flag, doc) == (
        read_name,
        None if read_score is None else float(read_score),
        None if read_flag is None else bool(read_flag),
        decoded,
    )


# -- SQLite across processes ---------------------------------------------------------

WRITER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from keel.storage.db.sqlite import SQLiteDatabase

    async def main(path, worker, count):
        db = SQLiteDatabase(path)
        await db.connect()
        try:
            print("ready", flush=True)
            sys.stdin.readline()  # start together with the other writers
            for i in range(count):
                async with db.transaction() as tx:
                    await tx.execute(
                        "INSERT INTO items (id, name) VALUES (?, ?)",
                        (f"{worker}-{i}", f"{worker}-{i}"),
                    )
                    await tx.execute("UPDATE counter SET n = n + 1")
        finally:
            await db.close()
        print("done", flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def test_sqlite_writers_in_separate_processes_all_commit(tmp_path: Path) -> None:
    """Four processes writing the same SQLite file concurrently all commit, none fails."""
    path = tmp_path / "shared.db"
    setup = SQLiteDatabase(path)
    await setup.connect()
    try:
        await setup.execute("CREATE TABLE items (id TEXT PRIMARY KEY NOT NULL, name TEXT)")
        await setup.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
        await setup.execute("INSERT INTO counter (n) VALUES (0)")
    finally:
        await setup.close()

    processes, per_process = 4, 50
    results = await asyncio.to_thread(_run_writers, path, processes, per_process)
    for returncode, stdout, stderr in results:
        assert (0, "ready\ndone\n", "") == (returncode, stdout, stderr)

    check = SQLiteDatabase(path)
    await check.connect()
    try:
        counts = (
            await check.fetch_one("SELECT COUNT(*) FROM items"),
            await check.fetch_one("SELECT n FROM counter"),
        )
    finally:
        await check.close()
    total = processes * per_process
    assert ((total,), (total,)) == counts


def _run_writers(path: Path, processes: int, per_process: int) -> list[tuple[int, str, str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_SCRIPT, str(path), f"w{n}", str(per_process)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    try:
        # Each writer prints "ready" once connected (or exits on a crash, giving EOF).
        deadline = time.monotonic() + 60
        first_lines = []
        for proc in procs:
            assert proc.stdout is not None
            remaining = max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([proc.stdout], [], [], remaining)
            first_lines.append(proc.stdout.readline() if readable else "")
        for proc in procs:  # release every writer before waiting for any
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):  # a crashed writer reports below
                proc.stdin.write("go\n")
                proc.stdin.flush()
        results = []
        for proc, first in zip(procs, first_lines, strict=True):
            out, err = proc.communicate(timeout=60)
            results.append((proc.returncode, first + out, err))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
