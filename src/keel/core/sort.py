"""The ``sort`` list parameter: fields, relation paths, ``@random`` and ``@rowid``.

``sort=-views,author.name`` resolves each term through the same resolver as
filters, so hidden fields are refused to non-superusers and relation paths
work as scalar subqueries. The insertion order is always the last key, so
pages never overlap. On PostgreSQL the order reproduces SQLite's (PocketBase's
engine): NULLs first, and JSON values ordered by type, then value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.core.collection import Collection
from keel.core.errors import BadRequestError
from keel.core.request import RequestInfo
from keel.core.resolver import RecordResolver
from keel.core.result_cache import BoundedCache
from keel.core.schema import nullable
from keel.query.errors import FilterError
from keel.query.plan import Column

if TYPE_CHECKING:
    from keel.core.app import App

MAX_SORT_TERMS = 8
#: Distinct sorts kept per collection (the least recently used go first).
MAX_KEPT_SORTS = 256


def _pg_json_keys(sql: str) -> list[str]:
    """Sort keys putting ``jsonb`` values in SQLite's order: null, numbers, text."""
    kind = f"jsonb_typeof({sql})"
    return [
        f"(CASE WHEN {sql} IS NULL OR {kind} = 'null' THEN 0 "
        f"WHEN {kind} IN ('number', 'boolean') THEN 1 ELSE 2 END)",
        f"(CASE WHEN {kind} = 'number' THEN CAST({sql} #>> '{{}}' AS DOUBLE PRECISION) "
        f"WHEN {kind} = 'boolean' "
        f"THEN (CASE WHEN ({sql} #>> '{{}}') = 'true' THEN 1 ELSE 0 END) END)",
        f"(CASE WHEN {kind} = 'string' THEN {sql} #>> '{{}}' ELSE CAST({sql} AS TEXT) END)",
    ]


def _own_column(coll: Collection, name: str) -> bool:
    """Whether ``name`` is a field of ``coll`` itself stored in a NOT NULL column."""
    if "." in name or ":" in name:
        return False
    fld = coll.field(name)
    return fld is not None and not nullable(fld)


def sort_clause(
    app: App, coll: Collection, sort: str, info: RequestInfo
) -> tuple[str, tuple[Any, ...]]:
    """The ``ORDER BY`` body and its parameters for a ``sort`` value.

    A sort of the collection's own fields depends only on the schema and on
    whether hidden fields may be used, so it is built once and kept on the
    collection (which a schema change replaces). Relation paths apply the
    related collections' rules for the caller and are built every time.

    Raises:
        BadRequestError: an unknown or hidden field, a multi-valued path, or
            too many terms.
    """
    superuser = info.auth.is_superuser and info.auth.unrestricted
    if "." in sort or ":" in sort:
        return _build(app, coll, sort, info, superuser)
    kept: BoundedCache[tuple[str, bool], tuple[str, tuple[Any, ...]]] = coll.cached(
        "sorts", lambda: BoundedCache(MAX_KEPT_SORTS)
    )
    key = (sort, superuser)
    clause = kept.get(key)
    if clause is None:
        clause = _build(app, coll, sort, info, superuser)  # raises before anything is kept
        kept.put(key, clause)
    return clause


def _build(
    app: App, coll: Collection, sort: str, info: RequestInfo, superuser: bool
) -> tuple[str, tuple[Any, ...]]:
    dialect = app.dialect
    resolver = RecordResolver(
        app.find_collection,
        coll,
        info,
        dialect,
        allow_hidden=superuser,
        allow_request=superuser,
        related_rules=not superuser,
    )
    terms: list[str] = []
    params: tuple[Any, ...] = ()
    parts = [p.strip() for p in sort.split(",") if p.strip()]
    if len(parts) > MAX_SORT_TERMS:
        raise BadRequestError(f"Too many sort fields (at most {MAX_SORT_TERMS}).")
    for part in parts:
        direction = "ASC"
        name = part
        if part.startswith("-"):
            direction, name = "DESC", part[1:]
        elif part.startswith("+"):
            name = part[1:]
        if name == "@random":
            terms.append("RANDOM()")
            continue
        if name == "@rowid":
            terms.append(f"{dialect.rowid} {direction}")
            continue
        if name.startswith("@"):
            raise BadRequestError(f"Invalid sort field {name!r}.")
        try:
            resolved = resolver.resolve(name)
        except FilterError as exc:
            raise BadRequestError(f"Invalid sort field {name!r}: {exc.message}") from exc
        if not isinstance(resolved, Column):
            raise BadRequestError(f"Sorting by the multi-valued {name!r} is not supported.")
        if dialect.name == "postgres" and resolved.kind == "json" and not resolved.params:
            terms += [f"{key} {direction}" for key in _pg_json_keys(resolved.sql)]
        elif dialect.name == "postgres":
            # PostgreSQL puts NULLs last when ascending, SQLite first, so the
            # order is spelled out; not for the collection's own columns,
            # which are NOT NULL: there it changes nothing but keeps
            # PostgreSQL from reading an index in order (a full sort per page).
            if _own_column(coll, name):
                terms.append(f"{resolved.sql} {direction}")
            else:
                nulls = "NULLS FIRST" if direction == "ASC" else "NULLS LAST"
                terms.append(f"{resolved.sql} {direction} {nulls}")
            params += resolved.params
        else:
            terms.append(f"{resolved.sql} {direction}")
            params += resolved.params
    terms.append(f"{dialect.rowid} ASC")
    return ", ".join(terms), params
