"""The PostgreSQL adapter's connection pool: what a connection carries back into it.

Connections go back to the pool without asyncpg's reset statement (one round
trip per statement saved); these tests pin what that may and may not keep.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from keel.storage.db.errors import (
    DatabaseBusyError,
    DatabaseError,
    SchemaMismatchError,
    UniqueViolationError,
)
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
    """Whether the pooled connection is inside a transaction left open after a write.

    A statement of its own has no transaction id; one inside a transaction
    that wrote has that transaction's (and inside one that failed, PostgreSQL
    refuses the statement).
    """
    row = await db.fetch_one("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
    assert row is not None
    return bool(row[0])


async def _backend(db: PostgresDatabase) -> int:
    row = await db.fetch_one("SELECT pg_backend_pid()")
    assert row is not None
    return int(row[0])


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


async def test_a_new_connection_starts_a_new_data_version(pool: PostgresDatabase) -> None:
    """Versions read on connections opened later never match earlier ones.

    A crash, failover or restore hands transaction ids out again, so a
    snapshot can repeat over other data; all of them end every connection.
    """
    version_sql = "SELECT id FROM items WHERE id = ?"
    row, before = await pool.fetch_versioned(version_sql, ("a",))
    assert row is None
    assert before is not None
    pid = await _backend(pool)
    other = PostgresDatabase(pool.url, min_size=1, max_size=1)
    await other.connect()
    try:
        await other.fetch_one("SELECT pg_terminate_backend(?)", (pid,))
    finally:
        await other.close()
    after = None
    for _ in range(3):
        # The first statement may find the connection gone (busy), and one
        # that opens a new connection gets no version.
        with contextlib.suppress(DatabaseBusyError):
            _, after = await pool.fetch_versioned(version_sql, ("a",))
        if after is not None:
            break
    assert after is not None
    assert before.split("/")[0] != after.split("/")[0]


async def test_a_connection_ended_by_the_server_is_a_busy_error(pool: PostgresDatabase) -> None:
    """A statement whose session the server ends (a restart, an administrator) may be retried."""
    pid = await _backend(pool)
    other = PostgresDatabase(pool.url, min_size=1, max_size=1)
    await other.connect()
    try:
        running = asyncio.create_task(pool.fetch_one("SELECT pg_sleep(30)"))
        sleeping = None
        for _ in range(10_000):  # until the sleep is under way
            sleeping = await other.fetch_one(
                "SELECT 1 FROM pg_stat_activity WHERE pid = ? AND wait_event = 'PgSleep'", (pid,)
            )
            if sleeping is not None:
                break
        assert sleeping is not None
        await other.fetch_one("SELECT pg_terminate_backend(?)", (pid,))
        with pytest.raises(DatabaseBusyError):
            await running
    finally:
        await other.close()
    assert [] == await pool.fetch_all("SELECT id FROM items")  # and the pool recovers


@pytest.mark.parametrize(
    ("sql", "params", "error"),
    [
        ("INSERT INTO items (id) VALUES (?)", ("a",), UniqueViolationError),
        ("SELECT id FROM items WHERE id = ? AND id = ?", ("a",), DatabaseError),
        ("SELECT no_such_column FROM items", (), SchemaMismatchError),
    ],
)
async def test_a_statement_error_keeps_the_connection(
    pool: PostgresDatabase, sql: str, params: tuple[str, ...], error: type[Exception]
) -> None:
    """A statement's own error (or a wrong call) is no lost connection: no retry, no reconnect."""
    await pool.execute("INSERT INTO items (id) VALUES (?)", ("a",))
    pid = await _backend(pool)
    with pytest.raises(error) as raised:
        await pool.execute(sql, params)
    assert not isinstance(raised.value, DatabaseBusyError)
    assert pid == await _backend(pool)
