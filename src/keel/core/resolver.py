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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from keel.core.collection import Collection
from keel.core.errors import FieldError, ForbiddenError
from keel.core.fields.base import Field
from keel.core.fields.date import format_datetime
from keel.core.fields.relation import RelationField
from keel.core.fields.select import MultiValueField
from keel.core.request import RequestInfo
from keel.query.dialect import Dialect
from keel.query.errors import FilterError, FilterPlanError
from keel.query.parser import parse
from keel.query.plan import Column, Kind, Many, Resolved, Step, Value
from keel.query.sql import compile_filter

MAX_PATH_DEPTH = 6
MODIFIERS = frozenset({"each", "length", "lower", "isset", "changed"})
JSON_KEY = re.compile(r"^[A-Za-z0-9_]+$")
ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ASCII_LOWER = str.maketrans(ASCII_UPPER, ASCII_UPPER.lower())


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


#: The names of the date macros.
DATE_MACROS = frozenset(date_macros(datetime(2000, 1, 1, tzinfo=UTC)))


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
        related_rules: join only related records that pass their own
            collection's ``listRule`` (a non-superuser's ``filter``), so a
            filter cannot probe records the caller may not list.
        root_ref: how the SQL refers to the filtered collection's row.
        prefix: added to every alias, to nest one filter in another.
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
        related_rules: bool = False,
        root_ref: str | None = None,
        prefix: str = "",
    ) -> None:
        self.related_rules = related_rules
        self.root_ref = root_ref or dialect.quote(coll.name)
        self.prefix = prefix
        self.allow_request = allow_request
        self.lookup = lookup
        self.coll = coll
        self.info = info
        self.d = dialect
        self.allow_hidden = allow_hidden
        self.now = now or datetime.now(UTC)
        self._alias = 0
        self._aliases: dict[str, str] = {}

    def _next(self, prefix: str) -> str:
        self._alias += 1
        return f"{self.prefix}{prefix}{self._alias}"

    def resolve(self, name: str) -> Resolved:
        if name.startswith("@collection."):
            resolved = self._collection(name)
            return resolved
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
            return self._lower(resolved)
        return resolved

    def _lower(self, resolved: Resolved) -> Resolved:
        """``:lower``: ASCII letters only, like SQLite's LOWER() (PocketBase's engine)."""
        if isinstance(resolved, Value):
            value = resolved.value
            return Value(value.translate(ASCII_LOWER) if isinstance(value, str) else value)
        if isinstance(resolved, Column):
            return Column(self._fold(resolved.sql, resolved.kind), "text", resolved.params)
        return Many(
            resolved.steps, self._fold(resolved.value, resolved.kind), "text", resolved.params
        )

    def _fold(self, sql: str, kind: Kind) -> str:
        if self.d.name != "postgres":
            return f"LOWER({sql})"
        text = f"({sql} #>> '{{}}')" if kind == "json" else f"CAST({sql} AS TEXT)"
        return f"TRANSLATE({text}, '{ASCII_UPPER}', '{ASCII_UPPER.lower()}')"

    # -- @request and macros ------------------------------------------------------

    def _macro(self, name: str, modifier: str = "") -> Resolved:
        if name.startswith("@request.body.") and modifier in ("isset", "length", "each", "changed"):
            return self._body(name.removeprefix("@request.body."), modifier)
        if modifier in ("isset", "length", "each", "changed"):
            raise FilterPlanError(f"The :{modifier} modifier is not supported on {name!r}.")
        if name in DATE_MACROS:
            value = date_macros(self.now)[name]
            return Value(value, "number" if isinstance(value, int) else "text")
        parts = name.split(".")
        if parts[0] != "@request" or len(parts) < 2:
            if parts[0] == "@collection":
                if not self.allow_request:
                    raise ForbiddenError("Only superusers can filter by @collection.")
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
            return self._auth_path(".".join(rest), modifier)
        raise FilterPlanError(f"Unknown identifier {name!r}.")

    def _body(self, key: str, modifier: str) -> Resolved:
        """``@request.body.<field>`` with ``:isset``, ``:length``, ``:each``, ``:changed``."""
        body = self.info.body
        raw = body.get(key)
        if modifier == "isset":
            return Value(key in body, "bool")
        if modifier == "length":
            return Value(len(raw) if isinstance(raw, (list, str)) else 0, "number")
        if modifier == "each":
            items = raw if isinstance(raw, list) else ([] if raw is None else [raw])
            mark = "CAST(? AS TEXT)" if self.d.name == "postgres" else "?"
            rows = " UNION ALL ".join(f"SELECT {mark} AS value" for _ in items)
            values = tuple(str(_plain(item)) for item in items)
            step = Step(
                f"@request.body.{key}:each",
                f"LEFT JOIN ({rows or 'SELECT NULL AS value'}) {{a}} ON 1 = 1",
                values,
            )
            return Many((step,), "{a}.value", "text")
        # :changed — submitted, and different from the record's current value.
        fld = self.coll.field(key)
        if fld is None:
            raise FilterPlanError(f"Unknown field {key!r} in {self.coll.name}.")
        if key not in body:
            return Value(False, "bool")
        try:
            stored = fld.to_db(fld.normalize(raw))
        except FieldError:
            return Value(True, "bool")  # not even a valid value: certainly a change
        column = f"{self.root_ref}.{self.d.quote(fld.name)}"
        if self.d.name == "postgres":
            cast = "CAST(? AS JSONB)" if fld.column_kind() == "json" else "?"
            return Column(f"({column} IS DISTINCT FROM {cast})", "bool", (stored,))
        return Column(f"({column} IS NOT ?)", "bool", (stored,))

    def _auth_path(self, path: str, modifier: str) -> Resolved:
        """``@request.auth.team.name``: a path starting at the caller's own record."""
        auth = self.info.auth
        if auth.record is None or auth.collection is None:
            return Value(None)
        coll = auth.collection
        q = self.d.quote
        root = Step(
            "@request.auth", f"LEFT JOIN {q(coll.name)} {{a}} ON {{a}}.{q('id')} = ?", (auth.id,)
        )
        return self._path(path, modifier, coll=coll, steps=[root], key="@request.auth")

    def _collection(self, name: str) -> Resolved:
        """``@collection.news[:alias].field``: rows of any collection, joined by alias."""
        if not self.allow_request:
            raise ForbiddenError("Only superusers can filter by @collection.")
        rest = name.removeprefix("@collection.")
        head, _, path = rest.partition(".")
        coll_name, _, alias = head.partition(":")
        path, _, modifier = path.partition(":")
        if modifier and modifier not in MODIFIERS:
            raise FilterPlanError(f"Unknown modifier {modifier!r} in {name!r}.")
        target = self.lookup(coll_name)
        if target is None or not path or (alias and not JSON_KEY.match(alias)):
            raise FilterPlanError(f"Invalid @collection reference {name!r}.")
        key = f"@collection.{target.id}:{alias}"
        root = Step(key, f"LEFT JOIN {self.d.quote(target.name)} {{a}} ON 1 = 1")
        resolved = self._path(path, modifier, coll=target, steps=[root], key=key)
        return self._lower(resolved) if modifier == "lower" else resolved

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

    def _path(
        self,
        name: str,
        modifier: str = "",
        *,
        coll: Collection | None = None,
        steps: list[Step] | None = None,
        key: str = "",
    ) -> Resolved:
        """A field path from the filtered row, or from the last of ``steps``.

        ``key`` prefixes the join keys, so paths from different roots never
        share a join by accident.
        """
        parts = name.split(".")
        if len(parts) > MAX_PATH_DEPTH:
            raise FilterPlanError(f"Field paths are limited to {MAX_PATH_DEPTH} parts.")
        if modifier in ("isset", "changed"):
            raise FilterPlanError(f"The :{modifier} modifier only applies to @request.body fields.")
        q = self.d.quote
        steps = list(steps or [])
        coll = coll or self.coll
        # The current table: the filtered row, or the last join's alias.
        ref = "{a}" if steps else self.root_ref
        single: list[Join] = []  # joins of a scalar path through single relations
        prefix = key
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            prefix = f"{prefix}.{part}" if prefix else part
            if "_via_" in part:
                coll, step = self._back_relation(coll, part, ref, prefix)
                steps += [*self._lift(single), step]
                single = []
                ref = "{a}"
                if last:
                    return self._many(steps, f"{{a}}.{q('id')}", "text", modifier)
                continue
            fld = self._field(coll, part)
            column = f"{ref}.{q(fld.name)}"
            if coll.is_auth and fld.name == "email" and not self.allow_hidden:
                # As in PocketBase, a client's filter or sort sees only public
                # emails; otherwise comparisons would reveal hidden addresses.
                column = f"(CASE WHEN {ref}.{q('emailVisibility')} THEN {column} END)"
            if fld.type == "json" and not last:
                return self._wrap(self._json_path(column, parts[i + 1 :]), steps, single)
            if last:
                return self._final(fld, column, steps, single, modifier)
            if not isinstance(fld, RelationField):
                raise FilterPlanError(f"{fld.name!r} is not a relation field.")
            target = self.lookup(fld.options["collectionId"])
            if target is None:
                raise FilterPlanError(f"The relation {fld.name!r} points to a missing collection.")
            if fld.multiple or steps:
                steps += self._lift(single)
                single = []
                table = q(target.name)
                if fld.multiple:
                    steps.append(Step(prefix + "#each", self._join_each(_prev(column))))
                    on = f"{{a}}.{q('id')} = {{p}}.value"
                else:
                    on = f"{{a}}.{q('id')} = {_prev(column)}"
                visible, params = self._visible(target, "{a}")
                steps.append(Step(prefix, f"LEFT JOIN {table} {{a}} ON {on}{visible}", params))
                ref = "{a}"
            else:
                # One alias per path prefix, so repeated paths share their joins.
                alias = self._aliases.setdefault(prefix, self._next("r"))
                visible, params = self._visible(target, alias)
                on = f"{alias}.{q('id')} = {column}{visible}"
                single.append(Join(f"{q(target.name)} {alias}", on, params))
                ref = alias
            coll = target
        raise FilterPlanError(f"Invalid field path {name!r}.")  # pragma: no cover

    def _lift(self, single: list[Join]) -> list[Step]:
        """Single-relation joins met before a multi-valued step become steps too."""
        return [
            Step(f"single:{j.table}", f"LEFT JOIN {j.table} ON {j.on}", j.params) for j in single
        ]

    def _visible(self, target: Collection, ref: str) -> tuple[str, tuple[Any, ...]]:
        """`` AND <target's listRule>`` for a join, when related rules apply."""
        if not self.related_rules:
            return "", ()
        rule = target.rules.get("listRule")
        if rule is None:
            return f" AND {self.d.false}", ()  # superusers only: nothing is visible
        if not rule.strip():
            return "", ()
        nested_prefix = self._next("n") + "_"
        nested = RecordResolver(
            self.lookup,
            target,
            self.info,
            self.d,
            allow_hidden=True,
            now=self.now,
            root_ref=ref,
            prefix=nested_prefix,
        )
        try:
            compiled = compile_filter(parse(rule), nested, self.d, alias_prefix=nested_prefix + "j")
        except FilterError:
            return f" AND {self.d.false}", ()  # a rule that no longer compiles hides all
        return f" AND ({compiled.sql})", compiled.params

    def _back_relation(
        self, coll: Collection, part: str, ref: str, prefix: str
    ) -> tuple[Collection, Step]:
        source_name, _, field_name = part.partition("_via_")
        source = self.lookup(source_name)
        fld = source.field(field_name) if source is not None else None
        if (
            source is None
            or not isinstance(fld, RelationField)
            or fld.options["collectionId"] != coll.id
        ):
            raise FilterPlanError(f"Invalid back-relation {part!r}.")
        self._field(source, field_name)
        q = self.d.quote
        column = f"{{a}}.{q(fld.name)}"
        target_id = f"{_prev(ref)}.{q('id')}"
        if not fld.multiple:
            cond = f"{column} = {target_id}"
        elif self.d.name == "postgres":
            cond = f"{column} @> jsonb_build_array({target_id})"
        else:
            cond = f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = {target_id})"
        visible, params = self._visible(source, "{a}")
        return source, Step(prefix, f"LEFT JOIN {q(source.name)} {{a}} ON {cond}{visible}", params)

    def _join_each(self, column: str) -> str:
        if self.d.name == "postgres":
            return f"LEFT JOIN LATERAL jsonb_array_elements_text({column}) AS {{a}}(value) ON TRUE"
        return f"LEFT JOIN json_each({column}) {{a}} ON 1 = 1"

    def _many(self, steps: list[Step], value: str, kind: Kind, modifier: str) -> Many:
        if modifier in ("each", "length"):
            raise FilterPlanError(f"The :{modifier} modifier needs a multi-valued field.")
        return Many(tuple(steps), value, kind)

    def _wrap(self, column: Column, steps: list[Step], single: list[Join]) -> Resolved:
        if steps:
            return Many(tuple(steps), column.sql, column.kind, column.params)
        if single:
            body, params = _single_from(single)
            return Column(f"(SELECT {column.sql} FROM {body})", column.kind, column.params + params)
        return column

    def _final(
        self, fld: Field, column: str, steps: list[Step], single: list[Join], modifier: str
    ) -> Resolved:
        """The last field of a path: a column, a scalar subquery, or a value set."""
        is_array = isinstance(fld, MultiValueField) and fld.multiple
        if modifier in ("each", "length") and not is_array:
            raise FilterPlanError(f"The :{modifier} modifier needs a multi-valued field.")
        nested = bool(steps or single)
        if modifier == "each" or (is_array and nested and modifier != "length"):
            all_steps = [*steps, *self._lift(single)]
            all_steps.append(Step(f"{column}#each", self._join_each(_prev(column))))
            return Many(tuple(all_steps), "{a}.value", "text")
        if modifier == "length":
            fn = "jsonb_array_length" if self.d.name == "postgres" else "json_array_length"
            return self._wrap(Column(f"{fn}({column})", "number"), steps, single)
        if fld.type == "json":
            return self._wrap(self._json_path(column, []), steps, single)
        if is_array:
            # A multi-valued field itself compares as its JSON text, as in PocketBase.
            text = f"CAST({column} AS TEXT)" if self.d.name == "postgres" else column
            return self._wrap(Column(text, "text"), steps, single)
        return self._wrap(Column(column, field_kind(fld)), steps, single)

    def _json_path(self, column: str, keys: list[str]) -> Column:
        """A JSON value (typed, like SQLite's ``json_extract``), whole or at a path.

        Keys are checked against a strict pattern, so like field names they
        can be written into the SQL text.
        """
        for key in keys:
            if not JSON_KEY.match(key):
                raise FilterPlanError(f"Invalid JSON path key {key!r}.")
        if self.d.name == "postgres":
            if not keys:
                return Column(column, "json")
            return Column(f"({column} #> '{{{','.join(keys)}}}')", "json")
        path = "$" + "".join(f"[{k}]" if k.isdigit() else f".{k}" for k in keys)
        return Column(f"json_extract({column}, '{path}')", "json")


def _prev(sql: str) -> str:
    """Refer to the previous step: inside a step, ``{a}`` is the step's own alias."""
    return sql.replace("{a}", "{p}")


@dataclass(frozen=True, slots=True)
class Join:
    """A join of a scalar path: ``table`` (with alias) ``ON on``."""

    table: str
    on: str
    params: tuple[Any, ...] = ()


def _single_from(joins: list[Join]) -> tuple[str, tuple[Any, ...]]:
    """``FROM`` body of a scalar path: the first join's ON becomes the WHERE."""
    first, *rest = joins
    body = " ".join([first.table, *(f"JOIN {j.table} ON {j.on}" for j in rest)])
    params = tuple(p for j in rest for p in j.params) + first.params
    return f"{body} WHERE {first.on}", params


def _plain(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    return value
