"""Apply pending system migrations, once, even with several processes starting."""

from __future__ import annotations

from keel.core.fields.date import now_text
from keel.core.migrations.system import MIGRATIONS
from keel.query.dialect import dialect_of
from keel.storage.db.database import Database
from keel.storage.db.errors import SchemaMismatchError


async def pending(db: Database) -> list[str]:
    """Names of migrations not applied yet."""
    try:
        rows = await db.fetch_all("SELECT name FROM _migrations")
    except SchemaMismatchError:  # a new database has no _migrations table yet
        return [name for name, _ in MIGRATIONS]
    done = {r[0] for r in rows}
    return [name for name, _ in MIGRATIONS if name not in done]


async def migrate(db: Database) -> list[str]:
    """Apply every pending migration in one transaction; return their names.

    The transaction takes the write lock first (SQLite ``BEGIN IMMEDIATE``, a
    PostgreSQL advisory lock), so concurrent starters apply each migration once.
    """
    applied: list[str] = []
    async with db.transaction() as tx:
        if dialect_of(tx).name == "postgres":
            await tx.execute("SELECT pg_advisory_xact_lock(7215)")
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS _migrations "
            "(name TEXT PRIMARY KEY NOT NULL, applied TEXT NOT NULL)"
        )
        done = {r[0] for r in await tx.fetch_all("SELECT name FROM _migrations")}
        for name, migration in MIGRATIONS:
            if name in done:
                continue
            await migration(tx)
            await tx.execute(
                "INSERT INTO _migrations (name, applied) VALUES (?, ?)", (name, now_text())
            )
            applied.append(name)
    return applied
