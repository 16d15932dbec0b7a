"""The statement time budget: a runaway query is cancelled with a clear error."""

from __future__ import annotations

import pytest

from keel.storage.db.errors import StatementTimeoutError
from keel.storage.db.url import open_database

RUNAWAY = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
    "SELECT COUNT(*) FROM c"
)


async def test_runaway_query_is_cancelled(database_url: str) -> None:
    """A query past the budget raises StatementTimeoutError and the database stays usable."""
    db = open_database(database_url, statement_timeout_ms=200)
    await db.connect()
    try:
        with pytest.raises(StatementTimeoutError):
            await db.fetch_one(RUNAWAY)
        with pytest.raises(StatementTimeoutError):
            async with db.transaction() as tx:
                await tx.fetch_one(RUNAWAY)
        assert (1,) == await db.fetch_one("SELECT 1")
    finally:
        await db.close()
