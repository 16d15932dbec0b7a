"""The ``App``: one object owning the database, the schema cache, settings and hooks.

Every worker process builds one. Schema and settings are cached in memory and
checked against a version row before each request (:meth:`App.refresh`), so a
change made through any worker or node is seen by the next request anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Coroutine
from typing import Any

import orjson

from keel.core.collection import Collection, collection_from_storage
from keel.core.config import Config
from keel.core.errors import NotFoundError
from keel.core.events import RecordEvent
from keel.core.mail import mailer_from_settings
from keel.core.migrations.runner import migrate
from keel.core.result_cache import ResultCache
from keel.core.settings import load_settings
from keel.hooks import Hook
from keel.mailer.smtp import Mailer
from keel.query.dialect import Dialect, dialect_of
from keel.security.password import Passwords
from keel.storage.db.database import Database, DataVersion, Executor, Row
from keel.storage.db.url import open_database
from keel.storage.files.storage import FileStorage, open_file_storage
from keel.storage.pubsub.pubsub import PubSub, PubSubError, open_pubsub

log = logging.getLogger("keel.app")

#: The row that changes whenever collections or settings change (see bump_version).
_VERSION_SQL = "SELECT value FROM _params WHERE id = 'version'"
#: How long ``stop`` waits for background work (mail) to finish.
STOP_GRACE_SECONDS = 10.0


class App:
    """A Keel application instance.

    Args:
        config: the process configuration.
        db: a database adapter; built from ``config`` when omitted.
    """

    def __init__(self, config: Config, db: Database | None = None) -> None:
        self.config = config
        self.db: Database = db or open_database(
            config.resolved_database_url,
            sqlite_synchronous=config.sqlite_synchronous,
            statement_timeout_ms=config.statement_timeout_ms,
        )
        self.files: FileStorage = open_file_storage(config.resolved_storage_url)
        self.pubsub: PubSub = open_pubsub(config.redis_url or "memory://")
        self.passwords = Passwords(
            config.argon2_time_cost, config.argon2_memory_kib, config.argon2_parallelism
        )
        self._by_name: dict[str, Collection] = {}
        self._by_id: dict[str, Collection] = {}
        self.settings: dict[str, Any] = load_settings(None)
        self._version: str | None = None
        self._checked_at: DataVersion | None = None  # data version of the last refresh
        #: List pages and totals, reused while the data version holds.
        self.results = ResultCache(self.db)
        self.on_record_create: Hook[RecordEvent] = Hook()
        self.on_record_update: Hook[RecordEvent] = Hook()
        self.on_record_delete: Hook[RecordEvent] = Hook()
        self._tasks: set[asyncio.Task[None]] = set()
        self._signal_pending = False
        self._mailer: tuple[str, Mailer | None] | None = None

    # -- lifecycle ------------------------------------------------------------

    async def start(self, *, run_migrations: bool = True) -> None:
        """Connect, apply pending system migrations, and load the schema."""
        await self.db.connect()
        # A new connection counts data versions afresh: nothing seen before holds.
        self._checked_at = None
        self.results.clear()
        if run_migrations:
            await migrate(self.db)
        await self.reload()

    async def stop(self) -> None:
        """Let background work finish (bounded), then close the database."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=STOP_GRACE_SECONDS)
        await self.files.close()
        await self.pubsub.close()
        await self.db.close()

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` in the background; keep a reference until it ends.

        Failures are logged, never raised to anyone.
        """
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def idle(self) -> None:
        """Wait until the background work started so far has finished."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def committed(self) -> None:
        """Tell every worker that records changed (see :mod:`keel.realtime.broker`).

        Commits close together share one signal: every commit is followed by
        a publish that starts after it.
        """
        if not self._signal_pending:
            self._signal_pending = True
            # Also cleared when the task ends, in case it never started.
            self.spawn(self._signal_events()).add_done_callback(self._signal_sent)

    def _signal_sent(self, _: asyncio.Task[None]) -> None:
        self._signal_pending = False

    async def _signal_events(self) -> None:
        self._signal_pending = False  # a commit from now on needs a publish of its own
        try:
            await self.pubsub.publish("events", b"")
        except PubSubError:
            log.warning("could not signal new events; realtime falls back to polling")

    @property
    def mailer(self) -> Mailer | None:
        """The mailer for the current SMTP settings; ``None`` when SMTP is off."""
        smtp = self.settings["smtp"]
        key = orjson.dumps(smtp, option=orjson.OPT_SORT_KEYS).decode()
        if self._mailer is None or self._mailer[0] != key:
            self._mailer = (key, mailer_from_settings(smtp))
        return self._mailer[1]

    # -- schema cache ---------------------------------------------------------

    async def reload(self) -> None:
        """Read collections and settings from the database."""
        version = await self._read_version()
        rows = await self.db.fetch_all("SELECT data FROM _collections ORDER BY created, name")
        collections = [collection_from_storage(orjson.loads(r[0])) for r in rows]
        self._by_name = {c.name.lower(): c for c in collections}
        self._by_id = {c.id: c for c in collections}
        row = await self.db.fetch_one("SELECT value FROM _params WHERE id = 'settings'")
        self.settings = load_settings(orjson.loads(row[0]) if row else None)
        self._version = version

    async def refresh(self) -> DataVersion | None:
        """Reload when another worker or node changed the schema or settings.

        On engines that tell their data version without a statement
        (SQLite), nothing is read while no commit was made anywhere since the
        last check; the others (PostgreSQL) tell it with the version read.

        Returns:
            The data version read before the check (``None`` on engines
            without one): results read from now on are at least that new.
        """
        seen = self.db.data_version()
        if seen is None:
            row, seen = await self.db.fetch_versioned(_VERSION_SQL)
            version = _version_text(row)
        elif seen == self._checked_at:
            return seen
        else:
            version = await self._read_version()
        if version != self._version:
            await self.reload()
        self._checked_at = seen
        return seen

    @property
    def schema_version(self) -> str:
        """Changes whenever collections or settings change (see :meth:`bump_version`)."""
        return self._version or ""

    async def _read_version(self) -> str:
        return _version_text(await self.db.fetch_point(_VERSION_SQL))

    async def bump_version(self, tx: Executor) -> None:
        """Mark the schema or settings changed, inside the changing transaction."""
        await tx.execute(
            "UPDATE _params SET value = ? WHERE id = 'version'", (secrets.token_hex(8),)
        )

    @property
    def dialect(self) -> Dialect:
        return dialect_of(self.db)

    @property
    def collections(self) -> list[Collection]:
        return list(self._by_id.values())

    def find_collection(self, id_or_name: str) -> Collection | None:
        return self._by_id.get(id_or_name) or self._by_name.get(id_or_name.lower())

    def collection(
        self, id_or_name: str, message: str = "Missing collection context."
    ) -> Collection:
        """The collection with this id or name.

        Raises:
            NotFoundError: there is none.
        """
        coll = self.find_collection(id_or_name)
        if coll is None:
            raise NotFoundError(message)
        return coll


def _version_text(row: Row | None) -> str:
    return str(row[0]) if row else ""
