"""PostgreSQL adapter on asyncpg.

Statements arrive with ``?`` placeholders and are rewritten to ``$1, $2, …``
once per distinct text. Identifiers are validated names and values are always
bound, so a ``?`` can only be a placeholder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import asyncpg
from asyncpg.exceptions._base import DataError as ClientDataError

from keel.storage.db.database import Executor, Params, Row
from keel.storage.db.errors import (
    DatabaseError,
    IntegrityError,
    InvalidValueError,
    SchemaMismatchError,
    StatementTimeoutError,
    UniqueViolationError,
)


@lru_cache(maxsize=4096)
def _numbered(sql: str) -> str:
    parts = sql.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(f"${i}")
        out.append(part)
    return "".join(out)


@lru_cache(maxsize=64)
def _versioned(sql: str) -> str:
    """``sql`` as one row: the statement's snapshot, whether a row was found, the row."""
    return (
        "SELECT pg_current_snapshot()::text, q.* FROM (SELECT 1) AS one "
        f"LEFT JOIN (SELECT TRUE AS found, q0.* FROM ({sql}) AS q0 LIMIT 1) AS q ON TRUE"
    )


def _translate(exc: BaseException) -> DatabaseError:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return UniqueViolationError(
            str(exc),
            table=getattr(exc, "table_name", "") or "",
            index=getattr(exc, "constraint_name", "") or "",
        )
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(str(exc))
    if isinstance(exc, (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError)):
        return SchemaMismatchError(str(exc))
    if isinstance(exc, asyncpg.QueryCanceledError):
        return StatementTimeoutError(str(exc))
    if isinstance(exc, (asyncpg.DataError, ClientDataError, asyncpg.ProgramLimitExceededError)):
        return InvalidValueError(str(exc))
    return DatabaseError(str(exc))


async def _keep_session(conn: Any) -> None:
    """Return a connection to the pool as it is.

    asyncpg's default reset runs one more statement (``RESET ALL``, ``UNLISTEN
    *``, ``CLOSE ALL``, advisory unlocks) on every release: a round trip per
    statement. Keel changes no session state on pooled connections (settings
    come with the connection, advisory locks are transaction-scoped, nothing
    listens or keeps cursors), and asyncpg still rolls back a transaction left
    open before this runs.
    """


def _row(record: Any) -> Row:
    return tuple(record.values())


class _Runner:
    dialect_name = "postgres"

    async def _conn_fetch(self, conn: Any, sql: str, params: Params) -> list[Row]:
        try:
            records = await conn.fetch(_numbered(sql), *params)
        except (asyncpg.PostgresError, ClientDataError) as exc:
            raise _translate(exc) from exc
        return [_row(r) for r in records]

    async def _conn_execute(self, conn: Any, sql: str, params: Params) -> int:
        try:
            status: str = await conn.execute(_numbered(sql), *params)
        except (asyncpg.PostgresError, ClientDataError) as exc:
            raise _translate(exc) from exc
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0


class PostgresDatabase(_Runner):
    """A :class:`keel.storage.db.database.Database` on PostgreSQL.

    Args:
        url: ``postgresql://user:pass@host:port/dbname``.
        min_size, max_size: connection pool bounds.
        statement_timeout_ms: server-side budget for each statement.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        statement_timeout_ms: int = 10_000,
    ) -> None:
        self.url = url
        self._min = min_size
        self._max = max_size
        self._timeout = statement_timeout_ms
        self._pool: Any = None

    async def connect(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self._min,
                max_size=self._max,
                server_settings={"statement_timeout": str(self._timeout)},
                reset=_keep_session,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._pool.acquire() as conn:
            return await self._conn_fetch(conn, sql, params)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    def data_version(self) -> int | None:
        return None  # only with a statement: see fetch_versioned

    async def fetch_versioned(self, sql: str, params: Params = ()) -> tuple[Row | None, str]:
        """The row, and the snapshot the statement ran under as the data version.

        A snapshot (``xmin:xmax:in-progress ids``) fixes which transactions
        are visible. Any commit moves the next snapshot's ``xmax`` past its
        id or takes the id out of the in-progress list, so two equal
        snapshots mean no transaction committed in between.
        """
        rows = await self.fetch_all(_versioned(sql), params)
        first = rows[0]
        return (first[2:] if first[1] else None), str(first[0])

    async def fetch_point(self, sql: str, params: Params = ()) -> Row | None:
        return await self.fetch_one(sql, params)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._pool.acquire() as conn:
            return await self._conn_execute(conn, sql, params)

    async def execute_point(self, sql: str, params: Params = ()) -> int:
        return await self.execute(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with self._pool.acquire() as conn:
            tx = conn.transaction()
            try:
                await tx.start()
            except asyncpg.PostgresError as exc:
                raise _translate(exc) from exc
            runner = _PostgresTransaction(conn)
            try:
                yield runner
            except BaseException:
                await tx.rollback()
                raise
            else:
                if runner.failed:
                    # PostgreSQL would turn this COMMIT into a silent ROLLBACK.
                    await tx.rollback()
                    raise DatabaseError("transaction aborted by an earlier error; rolled back")
                try:
                    await tx.commit()
                except asyncpg.PostgresError as exc:
                    raise _translate(exc) from exc


class _PostgresTransaction(_Runner):
    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.failed = False

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return await self._conn_fetch(self._conn, sql, params)
        except DatabaseError:
            self.failed = True
            raise

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_point(self, sql: str, params: Params = ()) -> Row | None:
        return await self.fetch_one(sql, params)

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            return await self._conn_execute(self._conn, sql, params)
        except DatabaseError:
            self.failed = True
            raise

    async def execute_point(self, sql: str, params: Params = ()) -> int:
        return await self.execute(sql, params)
