"""SQLite adapter: WAL mode, one writer thread, a small pool of reader threads.

Concurrency model:
- Every worker process opens its own connections to the same file.
- Writes run on one dedicated thread per process, one transaction at a time
  (an ``asyncio.Lock``), opened with ``BEGIN IMMEDIATE`` so the write lock is
  taken up front and a transaction never fails half-way on a lock upgrade.
  Between processes the lock is polled for (about every millisecond) until
  ``lock_wait`` seconds have passed; only then does the caller get
  :class:`DatabaseBusyError`, never a raw "database is locked".
  Point statements (``fetch_point``/``execute_point``) of a transaction run
  on the event loop thread once the write lock is held (see below).
- Reads run on reader threads in autocommit mode, so each statement sees every
  transaction committed before it started, in any process.

Durability: ``synchronous=FULL`` by default, so an acknowledged write survives
power loss (WAL + FULL syncs the log on every commit). ``NORMAL`` is faster and
survives process crashes but may lose the last commits on power loss.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

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

T = TypeVar("T")

_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")
_SCHEMA = re.compile(r"no such (table|column)")


def _translate(exc: sqlite3.Error | ValueError) -> DatabaseError:
    message = str(exc)
    if isinstance(exc, (ValueError, sqlite3.DataError)):
        # OverflowError and UnicodeEncodeError (lone surrogates) are ValueErrors.
        return InvalidValueError(message)
    if isinstance(exc, sqlite3.IntegrityError):
        match = _UNIQUE.search(message)
        if match:
            parts = [p.strip() for p in match.group(1).split(",")]
            table = parts[0].split(".", 1)[0] if parts else ""
            columns = tuple(p.split(".", 1)[-1] for p in parts)
            return UniqueViolationError(message, table=table, columns=columns)
        return IntegrityError(message)
    if isinstance(exc, sqlite3.OperationalError):
        if message == "interrupted":
            return StatementTimeoutError("The statement ran past its time budget.")
        if "locked" in message or "busy" in message:
            return DatabaseBusyError(message)
        if _SCHEMA.search(message):
            return SchemaMismatchError(message)
    return DatabaseError(message)


class _Connection(sqlite3.Connection):
    """A connection whose statements stop at a deadline (the time budget).

    A progress handler runs every few thousand VM steps and interrupts the
    statement once ``deadline`` (a ``time.monotonic()`` value) has passed.
    """

    deadline = math.inf

    def run(self, sql: str, params: Params, budget: float, mode: str) -> Any:
        """Execute and fetch (``mode``: ``all``, ``one`` or ``count``) within ``budget`` s."""
        self.deadline = time.monotonic() + budget
        try:
            cursor = self.execute(sql, tuple(params))
            if mode == "all":
                return cursor.fetchall()
            if mode == "one":
                return cursor.fetchone()
            return cursor.rowcount
        finally:
            self.deadline = math.inf


def _progress(conn: _Connection) -> Callable[[], int]:
    def check() -> int:
        return 1 if time.monotonic() > conn.deadline else 0

    return check


MAX_GROUP = 64
#: Event-loop turns a new group waits at most for more members (see _gather_members).
GATHER_TURNS = 8


def _nothing() -> None:
    """Run on the writer thread to wait for the work queued there before it."""


@dataclass(slots=True)
class _Group:
    """One shared SQLite transaction and the future its members wait on."""

    done: asyncio.Future[None]
    size: int = 0
    begun: bool = False  # BEGIN runs with the group's first statement
    broken: bool = False  # a savepoint could not be ended: undo the whole group
    flush_due: bool = False  # a _flush task will commit it if nobody else does


class _Connector:
    """Opens configured connections to one database file."""

    def __init__(self, path: str, synchronous: str, busy_timeout_ms: int) -> None:
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms

    def open(self, *, read_only: bool) -> _Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=0,
            factory=_Connection,
        )
        conn.set_progress_handler(_progress(conn), 5000)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -16000")
        if read_only:
            conn.execute("PRAGMA query_only = 1")
        return conn


class SQLiteDatabase:
    """A :class:`keel.storage.db.database.Database` on one SQLite file.

    Args:
        path: the database file; created with its folder if missing.
        synchronous: ``"FULL"`` (default, durable on power loss) or ``"NORMAL"``.
        readers: number of reader threads.
        lock_wait: seconds a writer waits for another process's write lock.
        statement_timeout: seconds one statement may run before it is
            interrupted (:class:`StatementTimeoutError`).
    """

    dialect_name = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        readers: int = 2,
        lock_wait: float = 30.0,
        statement_timeout: float = 10.0,
    ) -> None:
        self.statement_timeout = statement_timeout
        if synchronous.upper() not in {"FULL", "NORMAL", "EXTRA", "OFF"}:
            raise ValueError(f"invalid synchronous setting: {synchronous!r}")
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._connector = _Connector(str(self.path), synchronous.upper(), 5000)
        self._readers = readers
        self._lock_wait = lock_wait
        self._write_pool: ThreadPoolExecutor | None = None
        self._read_pool: ThreadPoolExecutor | None = None
        self._writer: _Connection | None = None
        self._inline: _Connection | None = None
        self._local = threading.local()
        self._reader_conns: list[_Connection] = []
        self._reader_lock = threading.Lock()
        self._write_lock = asyncio.Lock()
        self._pending = 0  # transactions waiting for the write lock
        self._group: _Group | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        #: Savepoints of finished transactions, ended by the next writer call.
        self._deferred: list[tuple[_SQLiteTransaction, bool]] = []

    async def connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="keel-sqlite-w")
        self._read_pool = ThreadPoolExecutor(self._readers, thread_name_prefix="keel-sqlite-r")
        self._writer = await self._on_writer(self._open_writer)
        # Used on the event loop thread for primary-key point reads only.
        self._inline = self._connector.open(read_only=True)

    def _open_writer(self) -> _Connection:
        conn = self._connector.open(read_only=False)
        conn.execute("PRAGMA busy_timeout = 0")  # see _begin
        deadline = time.monotonic() + self._lock_wait
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return conn
            except sqlite3.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise _translate(exc) from exc
                time.sleep(0.01)

    async def close(self) -> None:
        for pool in (self._read_pool, self._write_pool):
            if pool is not None:
                pool.shutdown(wait=True)
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        self._read_pool = self._write_pool = None

    # -- reads ---------------------------------------------------------------

    def _reader(self) -> _Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connector.open(read_only=True)
            self._local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    async def _on_reader(self, fn: Callable[[], T]) -> T:
        assert self._read_pool is not None, "database is not connected"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, fn)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        def run() -> list[Row]:
            try:
                rows: list[Row] = self._reader().run(sql, params, self.statement_timeout, "all")
                return rows
            except (sqlite3.Error, ValueError) as exc:
                raise _translate(exc) from exc

        return await self._on_reader(run)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        def run() -> Row | None:
            try:
                row: Row | None = self._reader().run(sql, params, self.statement_timeout, "one")
                return row
            except (sqlite3.Error, ValueError) as exc:
                raise _translate(exc) from exc

        return await self._on_reader(run)

    def data_version(self) -> int | None:
        # PRAGMA data_version on a connection that never writes changes on
        # every commit by any other connection, in any process.
        assert self._inline is not None, "database is not connected"
        row = self._inline.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    async def fetch_versioned(self, sql: str, params: Params = ()) -> tuple[Row | None, int | None]:
        version = self.data_version()  # read first: a commit after it changes it
        return await self.fetch_point(sql, params), version

    async def fetch_point(self, sql: str, params: Params = ()) -> Row | None:
        # Note: runs on the event loop thread. Callers only pass primary-key
        # lookups, which take microseconds; a thread hop costs far more.
        assert self._inline is not None, "database is not connected"
        try:
            row: Row | None = self._inline.run(sql, params, self.statement_timeout, "one")
        except (sqlite3.Error, ValueError) as exc:
            raise _translate(exc) from exc
        return row

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, params)

    async def execute_point(self, sql: str, params: Params = ()) -> int:
        async with self.transaction() as tx:
            return await tx.execute_point(sql, params)

    # -- writes --------------------------------------------------------------

    async def _on_writer(self, fn: Callable[[], T]) -> T:
        assert self._write_pool is not None, "database is not connected"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_pool, fn)

    def _begin(self) -> None:
        """Take the write lock, polling every millisecond or so while another
        process holds it.

        The writer connection has no busy handler: SQLite's own sleeps grow to
        100 ms, which under two busy workers made write latency tails of
        hundreds of milliseconds. Short jittered polls hand the lock over as
        soon as it is free.
        """
        assert self._writer is not None
        deadline = time.monotonic() + self._lock_wait
        while True:
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise _translate(exc) from exc
                time.sleep(random.uniform(0.0002, 0.0015))

    def _finish(self, commit: bool) -> None:
        assert self._writer is not None
        if not self._writer.in_transaction:
            return
        if commit:
            deadline = time.monotonic() + self._lock_wait
            while True:
                try:
                    self._writer.execute("COMMIT")
                    return
                except sqlite3.OperationalError as exc:
                    busy = "locked" in str(exc) or "busy" in str(exc)
                    if not busy or time.monotonic() > deadline:
                        self._writer.execute("ROLLBACK")
                        raise _translate(exc) from exc
                    time.sleep(random.uniform(0.0002, 0.0015))
        else:
            self._writer.execute("ROLLBACK")

    def _prepare(self) -> None:
        """Writer thread, before a statement: open the group, end finished savepoints.

        Deferring BEGIN and the ends of savepoints to the next call that goes
        to the writer thread anyway saves two thread hand-offs per write.
        """
        group = self._group
        if group is not None and not group.begun:
            self._begin()
            group.begun = True
        try:
            self._drain()
        except sqlite3.Error:
            if group is not None:
                group.broken = True
            raise

    def _drain(self) -> None:
        assert self._writer is not None
        while self._deferred:
            tx, keep = self._deferred.pop(0)
            if not keep:
                self._writer.execute(f'ROLLBACK TO "{tx.savepoint}"')
            self._writer.execute(f'RELEASE "{tx.savepoint}"')

    def _close_group(self, commit: bool) -> None:
        """Writer thread: end the deferred savepoints, then COMMIT or ROLLBACK."""
        try:
            if commit:
                self._drain()
        finally:
            self._deferred.clear()
            self._finish(commit)

    async def _commit_group(self, group: _Group) -> None:
        """Commit the open group transaction and tell every member the outcome."""
        self._group = None
        if group.broken:
            await asyncio.shield(self._on_writer(lambda: self._close_group(False)))
            group.done.set_exception(DatabaseError("group transaction rolled back"))
            return
        try:
            await asyncio.shield(self._on_writer(lambda: self._close_group(True)))
        except (DatabaseError, sqlite3.Error) as exc:
            group.done.set_exception(exc if isinstance(exc, DatabaseError) else _translate(exc))
        else:
            group.done.set_result(None)

    async def _commit_and_unlock(self, group: _Group) -> None:
        """Commit ``group`` with the write lock held by the caller; release it after."""
        try:
            await self._commit_group(group)
        finally:
            self._write_lock.release()

    async def _flush(self, group: _Group) -> None:
        """Commit ``group`` if no later transaction took it over (liveness guard)."""
        async with self._write_lock:
            if self._group is group:
                await self._commit_group(group)

    async def _gather_members(self) -> None:
        """Before a group opens: let requests already under way reach the lock first.

        SQLite's write lock is held from a group's first statement to its
        commit, and the event loop serves every other request in between. A
        few loop turns first, while more transactions keep queueing, let them
        do their work before the lock rather than inside it, so the group
        holds the lock for less time and another process waits less. It
        stops after two turns in a row in which nobody joined the queue, so
        a lone write costs two loop turns.
        """
        idle = 0
        for _ in range(GATHER_TURNS):
            queued = self._pending
            await asyncio.sleep(0)
            idle = idle + 1 if self._pending == queued else 0
            if idle == 2:
                return

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        """A write transaction, committed together with concurrent ones (group commit).

        Logical transactions run one at a time, each inside a savepoint of a
        shared SQLite transaction. When one ends and others are already
        waiting, the shared transaction stays open for them; the last one (or
        the :data:`MAX_GROUP`-th) commits it, with one fsync for the group.
        Each caller returns only after the commit that contains its work, so
        an acknowledged write is durable and visible to every reader. A
        failed logical transaction rolls back to its savepoint only.
        """
        self._pending += 1
        try:
            await self._write_lock.acquire()
        finally:
            self._pending -= 1
        error: BaseException | None = None
        failed = False
        group: _Group | None = None
        commit: asyncio.Task[None] | None = None
        try:
            if self._group is None:
                await self._gather_members()
                self._group = _Group(asyncio.get_running_loop().create_future())
            group = self._group
            group.size += 1
            tx = _SQLiteTransaction(self, f"keel_{group.size}", group)
            try:
                yield tx
            except BaseException as exc:
                error = exc
            finally:
                tx.closed = True
            if error is not None:
                # A caller cancelled mid-statement leaves that statement running
                # on the writer thread: let it finish before anything else (a
                # point statement on this thread, or reading ``tx.started``)
                # touches the connection.
                await asyncio.shield(self._on_writer(_nothing))
            # Like PostgreSQL, a transaction with a failed statement never commits.
            failed = tx.failed
            if tx.started:
                self._deferred.append((tx, error is None and not failed))
        except BaseException:
            if group is not None and self._group is group:
                # The shared transaction is in an unknown state: undo all of it.
                group.broken = True
            raise
        finally:
            if group is not None and self._group is group:
                if self._pending == 0 or group.size >= MAX_GROUP or group.broken:
                    # The commit runs in a task of its own that releases the
                    # lock when done: a caller cancelled here (a client that
                    # went away) must not leave the group's outcome unset.
                    commit = asyncio.get_running_loop().create_task(self._commit_and_unlock(group))
                    self._flushes.add(commit)
                    commit.add_done_callback(self._flushes.discard)
                elif not group.flush_due:
                    # One guard per group: it commits the group if no later
                    # transaction does (all of them cancelled, say).
                    group.flush_due = True
                    task = asyncio.get_running_loop().create_task(self._flush(group))
                    self._flushes.add(task)
                    task.add_done_callback(self._flushes.discard)
            if commit is None:
                self._write_lock.release()
        if commit is not None:
            await asyncio.shield(commit)
        if error is not None:
            raise error
        if failed:
            raise DatabaseError("transaction aborted by an earlier error; rolled back")
        await group.done


class _SQLiteTransaction:
    """The executor handed out by :meth:`SQLiteDatabase.transaction`."""

    dialect_name = "sqlite"

    def __init__(self, db: SQLiteDatabase, savepoint: str, group: _Group) -> None:
        self._db = db
        self.savepoint = savepoint
        self._group = group
        self.started = False  # the savepoint is opened with the first statement
        self.closed = False
        self.failed = False

    def _run(self, sql: str, params: Params, mode: str) -> Any:
        if self.closed:
            raise DatabaseError("transaction is closed")
        if self.failed:
            raise DatabaseError("transaction aborted by an earlier error")
        writer = self._db._writer
        assert writer is not None
        if not self.started:
            try:
                self._db._prepare()
                writer.execute(f'SAVEPOINT "{self.savepoint}"')
            except (sqlite3.Error, DatabaseError) as exc:
                self.failed = True
                raise exc if isinstance(exc, DatabaseError) else _translate(exc) from exc
            self.started = True
        try:
            return writer.run(sql, params, self._db.statement_timeout, mode)
        except (sqlite3.Error, ValueError) as exc:
            self.failed = True
            raise _translate(exc) from exc

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        rows: list[Row] = await self._db._on_writer(lambda: self._run(sql, params, "all"))
        return rows

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = await self._db._on_writer(lambda: self._run(sql, params, "one"))
        return row

    async def execute(self, sql: str, params: Params = ()) -> int:
        count: int = await self._db._on_writer(lambda: self._run(sql, params, "count"))
        return count

    # Point statements run on the event loop thread once the group's BEGIN
    # IMMEDIATE has run: this process then holds SQLite's write lock, so they
    # never wait for another process, and a primary-key statement takes
    # microseconds where a hand-off to the writer thread and back costs far
    # more and keeps the write lock held while the loop serves other requests.
    # BEGIN (which may poll for the lock) and COMMIT (fsync) stay on the
    # writer thread.

    async def fetch_point(self, sql: str, params: Params = ()) -> Row | None:
        if not self._group.begun:
            return await self.fetch_one(sql, params)
        row: Row | None = self._run(sql, params, "one")
        return row

    async def execute_point(self, sql: str, params: Params = ()) -> int:
        if not self._group.begun:
            return await self.execute(sql, params)
        count: int = self._run(sql, params, "count")
        return count
