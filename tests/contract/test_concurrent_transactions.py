"""Concurrent write transactions: each commits or fails on its own.

On SQLite, concurrent transactions share one commit (group commit); these
tests hold both engines to the same outcome.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from keel.storage.db.database import Database
from keel.storage.db.errors import DatabaseError, UniqueViolationError
from keel.storage.db.url import open_database


@pytest.fixture
async def db(database_url: str) -> Database:
    database = open_database(database_url)
    await database.connect()
    await database.execute("CREATE TABLE items (id TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL)")
    yield database  # type: ignore[misc]
    await database.close()


async def test_concurrent_transactions_are_independent(db: Database) -> None:
    """Failures roll back only their own transaction; every acknowledged one is visible."""
    await db.execute("INSERT INTO items (id, n) VALUES ('a0', 0)")

    async def write(i: int) -> str:
        try:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO items (id, n) VALUES (?, ?)", (f"a{i}", i))
                if i % 7 == 3:
                    await tx.execute("INSERT INTO items (id, n) VALUES (?, ?)", ("a0", i))
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


async def test_swallowed_error_never_commits(db: Database) -> None:
    """A transaction whose statement failed is rolled back even if the caller carries on."""
    await db.execute("INSERT INTO items (id, n) VALUES ('x', 1)")

    async def careless() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO items (id, n) VALUES ('y', 1)")
            with contextlib.suppress(UniqueViolationError):
                await tx.execute("INSERT INTO items (id, n) VALUES ('x', 2)")

    async def fine(i: int) -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO items (id, n) VALUES (?, ?)", (f"f{i}", i))

    results = await asyncio.gather(
        careless(), *(fine(i) for i in range(10)), return_exceptions=True
    )
    assert isinstance(results[0], DatabaseError)
    assert all(r is None for r in results[1:])
    ids = {r[0] for r in await db.fetch_all("SELECT id FROM items")}
    assert {"x", *(f"f{i}" for i in range(10))} == ids
