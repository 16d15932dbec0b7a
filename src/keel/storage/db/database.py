"""The ``Database`` protocol every storage engine implements.

Statements use ``?`` placeholders; rows come back as tuples in select order.
Writes that must be atomic run inside :meth:`Database.transaction`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

Row = tuple[Any, ...]
Params = Sequence[Any]
#: A value that changes whenever any connection commits (see :meth:`Database.data_version`).
DataVersion = int | str


class Executor(Protocol):
    """Something statements can run on: a database or an open transaction."""

    #: ``"sqlite"`` or ``"postgres"``: see ``keel.query.dialect``.
    dialect_name: str

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query and return every row."""
        ...

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query and return its first row, or ``None``."""
        ...

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement and return the number of rows it changed."""
        ...

    async def fetch_point(self, sql: str, params: Params = ()) -> Row | None:
        """Like :meth:`fetch_one`, for a lookup bounded by a primary key.

        Engines may run it without leaving the event loop (SQLite does: a
        point read takes microseconds, far less than a thread hand-off).
        """
        ...

    async def execute_point(self, sql: str, params: Params = ()) -> int:
        """Like :meth:`execute`, for a write bounded by a primary key.

        The statement inserts one row, or changes or deletes rows found by
        primary key, and nothing it fires does more. Engines may run it
        without leaving the event loop (SQLite does inside a transaction
        whose write lock is already held).
        """
        ...


class Database(Executor, Protocol):
    """A storage engine: reads anywhere, writes inside transactions."""

    def data_version(self) -> DataVersion | None:
        """A value that changes whenever any connection commits, or ``None``.

        Lets callers cache derived results (e.g. counts) with exact
        invalidation; engines that cannot tell without a statement return
        ``None`` and tell it through :meth:`fetch_versioned`.
        """
        ...

    async def fetch_versioned(
        self, sql: str, params: Params = ()
    ) -> tuple[Row | None, DataVersion | None]:
        """Like :meth:`Executor.fetch_point`, with the data version the read saw.

        Two calls that return equal versions had no commit, by any
        connection, between them; a result computed after the first call
        therefore still holds at the second. ``None`` where the engine cannot
        tell.
        """
        ...

    url: str

    async def connect(self) -> None:
        """Open connections; safe to call once per process."""
        ...

    async def close(self) -> None:
        """Close every connection this object opened."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Executor]:
        """A write transaction: commits on normal exit, rolls back on error.

        Transactions do not nest; inside one, run statements on the executor it
        yields, never on the database itself.
        """
        ...
