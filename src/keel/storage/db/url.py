"""Choose a ``Database`` adapter from a URL."""

from __future__ import annotations

from keel.storage.db.database import Database


def open_database(
    url: str, *, sqlite_synchronous: str = "FULL", statement_timeout_ms: int = 10_000
) -> Database:
    """Build (but do not connect) the adapter for ``url``.

    ``sqlite:///path/to/file.db`` or ``postgresql://…`` (``postgres://`` too).
    """
    if url.startswith("sqlite:///"):
        from keel.storage.db.sqlite import SQLiteDatabase

        return SQLiteDatabase(
            url.removeprefix("sqlite:///"),
            synchronous=sqlite_synchronous,
            statement_timeout=statement_timeout_ms / 1000,
        )
    if url.startswith(("postgresql://", "postgres://")):
        from keel.storage.db.postgres import PostgresDatabase

        return PostgresDatabase(url, statement_timeout_ms=statement_timeout_ms)
    raise ValueError(f"unsupported database URL: {url!r} (use sqlite:/// or postgresql://)")
