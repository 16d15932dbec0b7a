"""The PostgreSQL adapter's connection pool: what a connection carries back into it.

Connections go back to the pool without asyncpg's reset statement (one round
trip per statement saved); these tests pin what that may and may not keep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from keel.storage.db.postgres import PostgresDatabase

pytestmark = pytest.mark.parametrize("engine", ["postgres"])


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[PostgresDatabase]:
    """An adapter whose pool holds exactly one connection, so every call reuses it."""
    database = PostgresDatabase(database_url, min_size=1, max_size=1)
    await database.connect()
    try:
        await database.execute("CREATE TABLE items (id TEXT PRIMARY KEY NOT NULL)")
        yield database
    finally:
        await database.close()


async def _in_transaction(db: PostgresDatabase) -> bool:
    """Whether the pooled connection is inside a transaction left open earlier.

    ``now()`` is the start of the current transaction: two statements of their
    own see two times, two statements inside one open transaction the same.
    """
    first = await db.fetch_one("SELECT now()")
    await asyncio.sleep(0.01)
    second = await db.fetch_one("SELECT now()")
    return first == second


async def test_release_runs_no_reset_statement(pool: PostgresDatabase) -> None:
    """A released connection comes back as it was: no RESET ALL ran in between."""
    await pool.fetch_one("SELECT set_config('application_name', 'keel-pool-probe', false)")
    row = await pool.fetch_one("SHOW application_name")
    assert ("keel-pool-probe",) == row


async def test_failed_transaction_is_rolled_back_before_reuse(pool: PostgresDatabase) -> None:
    """A transaction ended by an error leaves neither its rows nor an open transaction."""
    with pytest.raises(RuntimeError):
        async with pool.transaction() as tx:
            await tx.execute("INSERT INTO items (id) VALUES (?)", ("a",))
            raise RuntimeError("abort")
    assert not await _in_transaction(pool)
    assert [] == await pool.fetch_all("SELECT id FROM items")


async def test_cancelled_transaction_is_rolled_back_before_reuse(pool: PostgresDatabase) -> None:
    """A caller cancelled inside a transaction (a client gone) leaves nothing open."""
    inside = asyncio.Event()

    async def abandoned() -> None:
        async with pool.transaction() as tx:
            await tx.execute("INSERT INTO items (id) VALUES (?)", ("a",))
            inside.set()
            await tx.fetch_one("SELECT pg_sleep(5)")

    task = asyncio.create_task(abandoned())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await _in_transaction(pool)
    assert [] == await pool.fetch_all("SELECT id FROM items")
