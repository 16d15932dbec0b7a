"""Resolving filter identifiers against a collection's schema and the request.

Implements :class:`keel.query.plan.Resolver`. Supported identifiers:

- fields of the collection (``title``), and paths through relation fields to
  the fields of related collections (``author.team.name``), single relations
  as scalar subqueries, multi relations (and multi selects) as value sets;
- ``@request.auth.<field>``, ``@request.method``, ``@request.context``,
  ``@request.query.<key>``, ``@request.headers.<name>``, ``@request.body.<field>``;
- the date macros (``@now``, ``@todayStart``, ``@monthEnd``, …).

Hidden fields may be referenced by API rules (which administrators write)
but not by a non-superuser's ``filter`` or ``sort``: that answers 400 whatever
the data, so it cannot be used as an oracle.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from keel.core.collection import Collection
from keel.core.errors import ForbiddenError
from keel.core.fields.base import Field
from keel.core.fields.date import format_datetime
from keel.core.fields.relation import RelationField
from keel.core.fields.select import MultiValueField
from keel.core.request import RequestInfo
from keel.query.dialect import Dialect
from keel.query.errors import FilterPlanError
from keel.query.plan import Column, Kind, Many, Resolved, Value

MAX_PATH_DEPTH = 6
MODIFIERS = frozenset({"each", "length", "lower", "isset", "changed"})
JSON_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def field_kind(fld: Field) -> Kind:
    kind = fld.column_kind()
    if kind == "number":
        return "number"
    if kind == "bool":
        return "bool"
    if kind == "json" and fld.type == "json":
        return "json"
    return "text"


def date_macros(now: datetime) -> dict[str, Any]:
    """The values of PocketBase's date macros at ``now`` (UTC)."""
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    last_day = calendar.monthrange(now.year, now.month)[1]
    year_start = month_start.replace(month=1)
    end = timedelta(microseconds=-1000)
    return {
        "@now": format_datetime(now),
        "@second": now.second,
        "@minute": now.minute,
        "@hour": now.hour,
        "@weekday": now.isoweekday() % 7,
        "@day": now.day,
        "@month": now.month,
        "@year": now.year,
        "@yesterday": format_datetime(now - timedelta(days=1)),
        "@tomorrow": format_datetime(now + timedelta(days=1)),
        "@todayStart": format_datetime(day_start),
        "@todayEnd": format_datetime(day_start + timedelta(days=1) + end),
        "@monthStart": format_datetime(month_start),
        "@monthEnd": format_datetime(month_start.replace(day=last_day) + timedelta(days=1) + end),
        "@yearStart": format_datetime(year_start),
        "@yearEnd": format_datetime(year_start.replace(year=now.year + 1) + end),
    }


class RecordResolver:
    """Resolves identifiers for filters and rules on one collection.

    Args:
        lookup: finds related collections by id.
        coll: the collection the filter applies to; its columns are referred
            to as ``"<table>"."<column>"``.
        info: the request (``@request.*`` values).
        dialect: the SQL dialect to write.
        allow_hidden: True for API rules and superusers.
        allow_request: whether ``@request.*`` may be used (not in a
            non-superuser's ``filter`` parameter, as in PocketBase).
        now: the moment the date macros refer to.
    """

    def __init__(
        self,
        lookup: Callable[[str], Collection | None],
        coll: Collection,
        info: RequestInfo,
        dialect: Dialect,
        *,
        allow_hidden: bool,
        allow_request: bool = True,
        now: datetime | None = None,
    ) -> None:
        self.allow_request = allow_request
        self.lookup = lookup
        self.coll = coll
        self.info = info
        self.d = dialect
        self.allow_hidden = allow_hidden
        self.now = now or datetime.now(UTC)
        self._alias = 0

    def _next(self, prefix: str) -> str:
        self._alias += 1
        return f"{prefix}{self._alias}"

    def resolve(self, name: str) -> Resolved:
        base, _, modifier = name.partition(":")
        if modifier and modifier not in MODIFIERS:
            raise FilterPlanError(f"Unknown modifier {modifier!r} in {name!r}.")
        if base.startswith("@"):
            if base.startswith("@request.") and not self.allow_request:
                raise ForbiddenError("Only superusers can filter by @request.")
            resolved = self._macro(base, modifier)
        else:
            resolved = self._path(base, modifier)
        if modifier == "lower":
            return _lower(resolved)
        return resolved

    # -- @request and macros ------------------------------------------------------

    def _macro(self, name: str, modifier: str = "") -> Resolved:
        if modifier in ("each", "changed"):
            raise FilterPlanError(f"The :{modifier} modifier is not supported here yet.")
        if name.startswith("@request.body.") and modifier in ("isset", "length"):
            key = name.removeprefix("@request.body.")
            if modifier == "isset":
                return Value(key in self.info.body, "bool")
            raw = self.info.body.get(key)
            return Value(len(raw) if isinstance(raw, (list, str)) else 0, "number")
        if modifier in ("isset", "length"):
            raise FilterPlanError(f"The :{modifier} modifier is not supported on {name!r}.")
        macros = date_macros(self.now)
        if name in macros:
            value = macros[name]
            return Value(value, "number" if isinstance(value, int) else "text")
        parts = name.split(".")
        if parts[0] != "@request" or len(parts) < 2:
            if parts[0] == "@collection":
                raise FilterPlanError("@collection references are not supported yet.")
            raise FilterPlanError(f"Unknown identifier {name!r}.")
        info = self.info
        head, rest = parts[1], parts[2:]
        if head == "method" and not rest:
            return Value(info.method)
        if head == "context" and not rest:
            return Value(info.context)
        if head == "query" and len(rest) == 1:
            return Value(info.query.get(rest[0]))
        if head == "headers" and len(rest) == 1:
            return Value(info.headers.get(rest[0].lower().replace("_", "-")))
        if head == "body" and len(rest) == 1:
            return Value(_plain(info.body.get(rest[0])))
        if head == "auth" and len(rest) == 1:
            return Value(self._auth_value(rest[0]))
        if head == "auth" and len(rest) > 1:
            raise FilterPlanError("Relation paths from @request.auth are not supported yet.")
        raise FilterPlanError(f"Unknown identifier {name!r}.")

    def _auth_value(self, key: str) -> Any:
        auth = self.info.auth
        if auth.record is None or auth.collection is None:
            return ""
        if key == "collectionId":
            return auth.collection.id
        if key == "collectionName":
            return auth.collection.name
        fld = auth.collection.field(key)
        if fld is None or fld.type == "password" or key == "tokenKey":
            return ""
        value = auth.record.data.get(fld.name)
        return _plain(value)

    # -- field paths ----------------------------------------------------------------

    def _field(self, coll: Collection, name: str) -> Field:
        fld = coll.field(name)
        if fld is None:
            raise FilterPlanError(f"Unknown field {name!r} in {coll.name}.")
        hidden = fld.hidden or fld.type == "password" or (coll.is_auth and fld.name == "tokenKey")
        if hidden and (not self.allow_hidden or fld.type == "password" or fld.name == "tokenKey"):
            raise FilterPlanError(f"The field {name!r} cannot be used in a filter.")
        return fld

    def _path(self, name: str, modifier: str = "") -> Resolved:
        parts = name.split(".")
        if len(parts) > MAX_PATH_DEPTH:
            raise FilterPlanError(f"Field paths are limited to {MAX_PATH_DEPTH} parts.")
        if modifier in ("isset", "changed"):
            raise FilterPlanError(f"The :{modifier} modifier only applies to @request.body fields.")
        q = self.d.quote
        coll = self.coll
        fld = self._field(coll, parts[0])
        column = f"{q(coll.name)}.{q(fld.name)}"
        if fld.type == "json" and len(parts) > 1:
            return self._json_path(column, parts[1:])
        if len(parts) == 1:
            return self._final(fld, column, "", modifier, multi=False)
        joins: list[str] = []
        where = ""
        multi = False
        for step, part in enumerate(parts[1:]):
            if not isinstance(fld, RelationField):
                raise FilterPlanError(
                    f"{fld.name!r} is not a relation field; JSON paths are not supported yet."
                )
            target = self.lookup(fld.options["collectionId"])
            if target is None:
                raise FilterPlanError(f"The relation {fld.name!r} points to a missing collection.")
            alias = self._next("r")
            if fld.multiple:
                multi = True
                elem = self._next("je")
                joins.append(("CROSS JOIN " if joins else "") + self._each(column, elem))
                joins.append(f"JOIN {q(target.name)} {alias} ON {alias}.{q('id')} = {elem}.value")
            elif step == 0:
                joins.append(f"{q(target.name)} {alias}")
                where = f" WHERE {alias}.{q('id')} = {column}"
            else:
                joins.append(f"JOIN {q(target.name)} {alias} ON {alias}.{q('id')} = {column}")
            coll = target
            fld = self._field(coll, part)
            column = f"{alias}.{q(fld.name)}"
        return self._final(fld, column, _from(joins) + where, modifier, multi=multi)

    def _final(
        self, fld: Field, column: str, source: str, modifier: str, *, multi: bool
    ) -> Resolved:
        """The last field of a path, in the row (no ``source``) or in a subquery."""
        is_array = isinstance(fld, MultiValueField) and fld.multiple
        if modifier == "each" or (is_array and source and modifier != "length"):
            if not is_array:
                raise FilterPlanError(
                    f"The :each modifier needs a multi-valued field, not {fld.name!r}."
                )
            return self._elements(column, source, "text")
        if modifier == "length":
            if not is_array:
                raise FilterPlanError(
                    f"The :length modifier needs a multi-valued field, not {fld.name!r}."
                )
            column = f"{'jsonb' if self.d.name == 'postgres' else 'json'}_array_length({column})"
            kind: Kind = "number"
        else:
            # A multi-valued field itself compares as its JSON text, as in PocketBase.
            kind = "json" if is_array else field_kind(fld)
        if not source:
            return Column(column, kind)
        if multi:
            return Many(column, source, kind)
        return Column(f"(SELECT {column} {source})", kind)

    def _json_path(self, column: str, keys: list[str]) -> Column:
        for key in keys:
            if not JSON_KEY.match(key):
                raise FilterPlanError(f"Invalid JSON path key {key!r}.")
        if self.d.name == "postgres":
            return Column(f"({column} #>> CAST(? AS TEXT[]))", "any", (list(keys),))
        path = "$" + "".join(f"[{k}]" if k.isdigit() else f".{k}" for k in keys)
        return Column(f"json_extract({column}, ?)", "any", (path,))

    def _each(self, column: str, alias: str) -> str:
        if self.d.name == "postgres":
            return f"jsonb_array_elements_text({column}) AS {alias}(value)"
        return f"json_each({column}) {alias}"

    def _elements(self, column: str, source: str, kind: Kind) -> Many:
        """The elements of a JSON array column, optionally inside ``source``."""
        elem = self._next("je")
        each = self._each(column, elem)
        if not source:
            return Many(f"{elem}.value", f"FROM {each}", kind)
        # ``source`` is "FROM a JOIN b … [WHERE …]": add the array after the joins.
        head, sep, tail = source.partition(" WHERE ")
        joined = f"{head} CROSS JOIN {each}"
        return Many(f"{elem}.value", joined + (sep + tail if sep else ""), kind)


def _lower(resolved: Resolved) -> Resolved:
    if isinstance(resolved, Value):
        value = resolved.value
        return Value(value.lower() if isinstance(value, str) else value, resolved.kind)
    if isinstance(resolved, Column):
        return Column(f"LOWER({resolved.sql})", "text", resolved.params)
    return Many(f"LOWER({resolved.value})", resolved.source, "text", resolved.params)


def _from(joins: list[str]) -> str:
    if not joins:
        return ""
    first, rest = joins[0], joins[1:]
    return "FROM " + " ".join([first, *rest])


def _plain(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    return value
