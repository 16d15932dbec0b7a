"""PostgreSQL adapter on asyncpg.

Statements arrive with ``?`` placeholders and are rewritten to ``$1, $2, …``
once per distinct text. Identifiers are validated names and values are always
bound, so a ``?`` can only be a placeholder.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import asyncpg
from asyncpg.exceptions._base import DataError as ClientDataError

from keel.storage.db.database import Executor, Params, Row
from keel.storage.db.errors import (
    DatabaseBusyError,
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


#: The oldest server version Keel runs on (``pg_current_snapshot`` is new in 13).
MIN_SERVER_VERSION = 13


@lru_cache(maxsize=64)
def _versioned(sql: str) -> str:
    """``sql`` as one row: the statement's snapshot, whether a row was found, the row.

    ``sql`` is one SELECT without a trailing ``;``, comment or locking
    clause. A standby (a pooler may route reads to one) gives no snapshot:
    there, in-progress transactions are not listed, so a commit need not
    change it.
    """
    return (
        "SELECT CASE WHEN pg_is_in_recovery() THEN NULL "
        "ELSE pg_postmaster_start_time()::text || ' ' || pg_current_snapshot()::text END, "
        "q.* FROM (SELECT 1) AS one "
        f"LEFT JOIN (SELECT TRUE AS found, q0.* FROM ({sql}) AS q0 LIMIT 1) AS q ON TRUE"
    )


#: Every error the driver or its pool can raise.
_DRIVER = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)
#: The connection could not be made or is gone: a server restart, a failover,
#: an administrator ending the session, the network. (asyncpg also raises a
#: plain InterfaceError on a connection closed under it: see _gone.)
_GONE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
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
    if isinstance(exc, (*_GONE, asyncpg.TooManyConnectionsError)):
        return _unreachable(exc)
    return DatabaseError(str(exc))


def _unreachable(exc: BaseException) -> DatabaseBusyError:
    return DatabaseBusyError(f"the database connection failed: {exc}")


def _closed(conn: Any) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:
        return True  # asyncpg hands a connection that closed back to the pool at once


def _gone(conn: Any, exc: BaseException) -> bool:
    """Whether ``exc`` means the connection is gone (not a statement's own error)."""
    if isinstance(exc, _GONE):
        return True
    if isinstance(exc, asyncpg.InternalClientError):
        return True  # the connection's protocol state broke (seen when the server ended it)
    lost = isinstance(exc, asyncpg.InterfaceError) and not isinstance(exc, ClientDataError)
    return lost and _closed(conn)


def _close(conn: Any) -> None:
    """Close ``conn`` so the pool opens a new one in its place."""
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


def _failed(conn: Any, exc: BaseException) -> DatabaseError:
    """``exc`` translated; a connection that is gone is closed and may be retried.

    Other errors (a statement's own, or a bug in Keel's SQL) keep the
    connection and are no :class:`DatabaseBusyError`.
    """
    if not _gone(conn, exc):
        return _translate(exc)
    _close(conn)
    return _unreachable(exc)


async def _roll_back(conn: Any, tx: Any) -> None:
    """Roll back ``tx``; a connection that cannot is closed (the server then rolls back)."""
    try:
        await tx.rollback()
    except _DRIVER:
        _close(conn)


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
        except _DRIVER as exc:
            raise _failed(conn, exc) from exc
        return [_row(r) for r in records]

    async def _conn_execute(self, conn: Any, sql: str, params: Params) -> int:
        try:
            status: str = await conn.execute(_numbered(sql), *params)
        except _DRIVER as exc:
            raise _failed(conn, exc) from exc
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
        #: Connections opened so far: part of the data version (see fetch_versioned).
        self._opened = 0

    async def connect(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self._min,
                max_size=self._max,
                server_settings={"statement_timeout": str(self._timeout)},
                reset=_keep_session,
                init=self._on_open,
            )
            async with self._pool.acquire() as conn:
                major = conn.get_server_version().major
        except _DRIVER as exc:
            await self.close()
            raise DatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc
        if major < MIN_SERVER_VERSION:
            await self.close()
            raise DatabaseError(
                f"PostgreSQL {MIN_SERVER_VERSION} or later is required (the server runs {major})"
            )

    async def _on_open(self, conn: Any) -> None:
        self._opened += 1

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _release(self, conn: Any) -> None:
        # asyncpg closes a connection it cannot reset; nothing more to do here.
        with contextlib.suppress(*_DRIVER):
            await self._pool.release(conn)

    async def _acquire(self) -> Any:
        try:
            return await self._pool.acquire()
        except _DRIVER as exc:
            raise _translate(exc) from exc

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        conn = await self._acquire()
        try:
            return await self._conn_fetch(conn, sql, params)
        finally:
            await self._release(conn)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    def data_version(self) -> None:
        return None  # only with a statement: see fetch_versioned

    async def fetch_versioned(self, sql: str, params: Params = ()) -> tuple[Row | None, str | None]:
        """The row, and the snapshot the statement ran under as the data version.

        On a primary, a snapshot (``xmin:xmax:in-progress ids``) fixes which
        transactions are visible: any commit or abort moves the next
        snapshot's ``xmax`` past its id or takes the id out of the
        in-progress list, so two equal snapshots mean no transaction ended in
        between. That holds within one run of the server: after a crash, a
        failover or a restore, ids are handed out again and a snapshot can
        repeat over other data. Those events end every connection, and every
        connection this pool opens changes the version (one read while a
        connection opens has none), as does the server's start time, so
        versions from before them never match versions after. No version on
        a standby.
        """
        opened = self._opened
        rows = await self.fetch_all(_versioned(sql), params)
        first = rows[0]
        # A connection opened meanwhile (maybe the one this ran on): no version.
        steady = opened == self._opened and first[0] is not None
        return (first[2:] if first[1] else None), (f"{opened}/{first[0]}" if steady else None)

    async def fetch_point(self, sql: str, params: Params = ()) -> Row | None:
        return await self.fetch_one(sql, params)

    async def execute(self, sql: str, params: Params = ()) -> int:
        conn = await self._acquire()
        try:
            return await self._conn_execute(conn, sql, params)
        finally:
            await self._release(conn)

    async def execute_point(self, sql: str, params: Params = ()) -> int:
        return await self.execute(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        conn = await self._acquire()
        try:
            tx = conn.transaction()
            try:
                await tx.start()
            except _DRIVER as exc:
                raise _failed(conn, exc) from exc
            runner = _PostgresTransaction(conn)
            try:
                yield runner
            except BaseException:
                await _roll_back(conn, tx)
                raise
            if runner.failed:
                # PostgreSQL would turn this COMMIT into a silent ROLLBACK.
                await _roll_back(conn, tx)
                raise DatabaseError("transaction aborted by an earlier error; rolled back")
            try:
                await tx.commit()
            except _DRIVER as exc:
                error = _failed(conn, exc)
                if isinstance(error, DatabaseBusyError):
                    # The COMMIT may have been applied: a retry could write twice.
                    raise DatabaseError(
                        "the database connection was lost during COMMIT; the outcome is unknown"
                    ) from exc
                raise error from exc
        finally:
            await self._release(conn)


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
