"""Concurrent write transactions: each commits or fails on its own.

On SQLite, concurrent transactions share one commit (group commit); these
tests hold both engines to the same outcome. Each runs with plain and with
point statements: SQLite runs point statements of a transaction on the event
loop thread once its group holds the write lock, and they must keep the same
per-transaction outcome.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from keel.storage.db.database import Database
from keel.storage.db.errors import DatabaseError, UniqueViolationError
from keel.storage.db.url import open_database

STATEMENTS = pytest.mark.parametrize("method", ["execute", "execute_point"])


@pytest.fixture
async def db(database_url: str) -> Database:
    database = open_database(database_url)
    await database.connect()
    await database.execute("CREATE TABLE items (id TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL)")
    yield database  # type: ignore[misc]
    await database.close()


@STATEMENTS
async def test_concurrent_transactions_are_independent(db: Database, method: str) -> None:
    """Failures roll back only their own transaction; every acknowledged one is visible."""
    await db.execute("INSERT INTO items (id, n) VALUES ('a0', 0)")

    async def write(i: int) -> str:
        try:
            async with db.transaction() as tx:
                run = getattr(tx, method)
                await run("INSERT INTO items (id, n) VALUES (?, ?)", (f"a{i}", i))
                if i % 7 == 3:
                    await run("INSERT INTO items (id, n) VALUES (?, ?)", ("a0", i))
                if i % 11 == 5:
                    raise RuntimeError("caller gave up")
        except UniqueViolationError:
            return "unique"
        except RuntimeError:
            return "raised"
        return "ok"

    outcomes = await asyncio.gather(*(write(i) for i in range(1, 60)))
    expected_ok = {f"a{i}" for i in range(1, 60) if i % 7 != 3 and i % 11 != 5}
    rows = await db.fetch_all("SELECT id FROM items")
    assert expected_ok | {"a0"} == {r[0] for r in rows}
    assert len(expected_ok) == outcomes.count("ok")


@STATEMENTS
async def test_swallowed_error_never_commits(db: Database, method: str) -> None:
    """A transaction whose statement failed is rolled back even if the caller carries on."""
    await db.execute("INSERT INTO items (id, n) VALUES ('x', 1)")

    async def careless() -> None:
        async with db.transaction() as tx:
            run = getattr(tx, method)
            await run("INSERT INTO items (id, n) VALUES ('y', 1)")
            with contextlib.suppress(UniqueViolationError):
                await run("INSERT INTO items (id, n) VALUES ('x', 2)")

    async def fine(i: int) -> None:
        async with db.transaction() as tx:
            await getattr(tx, method)("INSERT INTO items (id, n) VALUES (?, ?)", (f"f{i}", i))

    results = await asyncio.gather(
        careless(), *(fine(i) for i in range(10)), return_exceptions=True
    )
    assert isinstance(results[0], DatabaseError)
    assert all(r is None for r in results[1:])
    ids = {r[0] for r in await db.fetch_all("SELECT id FROM items")}
    assert {"x", *(f"f{i}" for i in range(10))} == ids


@STATEMENTS
async def test_point_statements_see_their_own_transaction(db: Database, method: str) -> None:
    """Point reads and writes see the transaction's earlier statements and roll back with it."""

    async def move(i: int, fail: bool) -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO items (id, n) VALUES (?, ?)", (f"m{i}", i))
            await getattr(tx, method)("UPDATE items SET n = n + 100 WHERE id = ?", (f"m{i}",))
            assert (i + 100,) == await tx.fetch_point(
                "SELECT n FROM items WHERE id = ?", (f"m{i}",)
            )
            if fail:
                raise RuntimeError("caller gave up")

    results = await asyncio.gather(
        *(move(i, i % 3 == 0) for i in range(12)), return_exceptions=True
    )
    assert [isinstance(r, RuntimeError) for r in results] == [i % 3 == 0 for i in range(12)]
    rows = await db.fetch_all("SELECT id, n FROM items ORDER BY n")
    assert [(f"m{i}", i + 100) for i in range(12) if i % 3] == [tuple(r) for r in rows]


#: A statement that keeps the engine busy for a few hundred milliseconds.
SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) "
    "SELECT COUNT(*) FROM c"
)


async def test_cancelled_mid_statement_never_commits(db: Database) -> None:
    """A caller cancelled while its statement runs commits nothing; the next ones all commit."""
    running = asyncio.Event()

    async def slow() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO items (id, n) VALUES ('slow', 1)")
            running.set()
            await tx.fetch_one(SLOW)

    async def quick(i: int) -> None:
        async with db.transaction() as tx:
            await tx.execute_point("INSERT INTO items (id, n) VALUES (?, ?)", (f"q{i}", i))
            await tx.execute_point("UPDATE items SET n = n + 1 WHERE id = ?", (f"q{i}",))

    task = asyncio.create_task(slow())
    await running.wait()
    others = [asyncio.create_task(quick(i)) for i in range(8)]
    task.cancel()
    assert [None] * 8 == await asyncio.gather(*others)
    with pytest.raises(asyncio.CancelledError):
        await task
    rows = await db.fetch_all("SELECT id, n FROM items ORDER BY id")
    assert [(f"q{i}", i + 1) for i in range(8)] == [tuple(r) for r in rows]


async def test_a_transaction_cancelled_before_its_first_statement(db: Database) -> None:
    """Cancelled while it waits to open (SQLite gathers a group first), it leaves no trace."""
    started = asyncio.Event()

    async def write(turns: int) -> None:
        started.set()
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO items (id, n) VALUES (?, 1)", (f"lost{turns}",))

    for turns in range(4):
        task = asyncio.get_running_loop().create_task(write(turns))
        await started.wait()
        for _ in range(turns):
            await asyncio.sleep(0)  # cancel it at each of its first awaits in turn
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        started.clear()
        # A bound, so a write lock left held fails the test instead of hanging it.
        async with asyncio.timeout(30), db.transaction() as tx:
            await tx.execute("INSERT INTO items (id, n) VALUES (?, ?)", (f"kept{turns}", turns))
    rows = await db.fetch_all("SELECT id FROM items ORDER BY id")
    assert {"kept0", "kept1", "kept2", "kept3"} <= {r[0] for r in rows}
