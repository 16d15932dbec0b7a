"""Query results reused while the database has not changed.

Only engines that report a data version get reuse (SQLite through
:meth:`Database.data_version`, PostgreSQL through the snapshot of the request's
schema check, :meth:`Database.fetch_versioned`): the version changes on every
commit by any connection, in any process or node, so an entry is exact until
then and useless after. Each entry
holds the version read *before* its query ran, so a commit racing with the
query makes the entry stale, never wrong. A caller may pass the version it
read earlier in the same request (:attr:`RequestInfo.data_version`): a hit
then answers with data at least as new as the request, and what it stores is
still keyed by a version read before the query.

A result is a function of the data and the bound parameters only when the SQL
calls nothing that reads the clock or draws at random: ``RANDOM()`` (the
``@random`` sort) and ``strftime()`` (whose time may be ``'now'``) are never
reused. Date macros such as ``@now`` are bound parameters, so they are part of
the key.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from keel.storage.db.database import Database, DataVersion, Row

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

#: What an entry is found by: for results, the SQL, its bound values and their
#: types (:func:`cache_key`); for responses, that and what else they depend on.
Key = tuple[Any, ...]
#: A response's key from the core actions (``view_key``, ``list_key``): the
#: data version it holds for, and what else it depends on.
ResponseKey = tuple[DataVersion, Key]

#: SQL fragments whose result can change while the data does not.
_VOLATILE = ("RANDOM(", "strftime(")
#: Pages larger than this are not kept (rows, and characters of text).
MAX_ROWS = 100
MAX_TEXT = 256 * 1024


class BoundedCache(Generic[K, V]):
    """A small least-recently-used map."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def clear(self) -> None:
        """Forget every entry."""
        self._data.clear()

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self._size:
            self._data.popitem(last=False)


def reusable(sql: str) -> bool:
    """Whether the result of ``sql`` depends only on the data and its parameters."""
    return not any(part in sql for part in _VOLATILE)


def cache_key(sql: str, params: tuple[Any, ...]) -> tuple[Any, ...]:
    """A key for ``sql`` with ``params``: equal keys bind equal values of equal types.

    Types count: ``True == 1 == 1.0`` in Python, but SQLite compares ``'1'``
    with 1, 1.0 and TRUE differently.
    """
    return (sql, params, tuple(type(p) for p in params))


def _small(rows: list[Row]) -> bool:
    if len(rows) > MAX_ROWS:
        return False
    text = 0
    for row in rows:
        for value in row:
            if isinstance(value, (str, bytes)):
                text += len(value)
    return text <= MAX_TEXT


class ResultCache:
    """Counts and small pages of rows, reused until the next commit anywhere.

    Args:
        db: the database the queries run on.
        size: entries kept for counts and for pages, each.

    Note:
        Memory is bounded by ``size`` pages of at most :data:`MAX_ROWS` rows
        and :data:`MAX_TEXT` characters of text each, per worker process.
    """

    def __init__(self, db: Database, size: int = 128) -> None:
        self._db = db
        self._counts: BoundedCache[Key, tuple[DataVersion, int]] = BoundedCache(4 * size)
        self._pages: BoundedCache[Key, tuple[DataVersion, list[Row]]] = BoundedCache(size)

    def clear(self) -> None:
        """Forget everything (the database connection was opened anew)."""
        self._counts.clear()
        self._pages.clear()

    async def count(
        self, sql: str, params: tuple[Any, ...], version: DataVersion | None = None
    ) -> int:
        """The single integer ``sql`` selects (a ``COUNT(*)``); 0 without a row.

        ``version`` is a data version the caller read earlier in the same
        request, if any (see the module docstring).
        """

        async def run() -> int:
            row = await self._db.fetch_one(sql, params)
            return int(row[0]) if row else 0

        return await _reuse(self._db, self._counts, sql, params, version, run, lambda _: True)

    async def fetch_all(
        self, sql: str, params: tuple[Any, ...], version: DataVersion | None = None
    ) -> list[Row]:
        """Every row of ``sql``; a hit answers without leaving the event loop.

        ``version`` as for :meth:`count`. Callers must not change the
        returned list.
        """

        def run() -> Awaitable[list[Row]]:
            return self._db.fetch_all(sql, params)

        return await _reuse(self._db, self._pages, sql, params, version, run, _small)


async def _reuse(
    db: Database,
    cache: BoundedCache[Key, tuple[DataVersion, T]],
    sql: str,
    params: tuple[Any, ...],
    version: DataVersion | None,
    run: Callable[[], Awaitable[T]],
    keep: Callable[[T], bool],
) -> T:
    """The result ``run`` gives for ``sql``, reused while the data version holds."""
    if not reusable(sql):
        version = None
    elif version is None:
        version = db.data_version()
    key = cache_key(sql, params)
    if version is not None:
        hit = cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
    result = await run()
    if version is not None and keep(result):
        cache.put(key, (version, result))
    return result
