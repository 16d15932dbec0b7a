"""Compile a filter tree to parameterized SQL for a dialect.

Semantics follow PocketBase:

- ``&&`` binds tighter than ``||``.
- ``=`` and ``!=`` are null-safe; comparing with ``''`` or ``null`` matches
  both the empty value and SQL NULL (a missing relation).
- ``~`` / ``!~`` are (case-insensitive) LIKE; a value without ``%`` is
  wrapped as ``%value%`` with ``_``, ``%`` and ``\\`` escaped.
- When one side has several values per row (:class:`Many`), the plain
  operators must hold for *every* value (and at least one), the ``?``
  operators for *any* value. An empty set counts as one NULL value, like
  PocketBase's LEFT JOIN.

Every value is a bound parameter; identifiers come only from the resolver,
which takes them from the schema.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

from keel.query.ast import And, Call, Comparison, Expr, Identifier, Literal, Operand
from keel.query.dialect import Dialect
from keel.query.errors import FilterPlanError
from keel.query.functions import geo_distance, strftime
from keel.query.plan import Column, Kind, Many, Resolved, Resolver, Value

Frag = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: str
    params: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Side:
    """One scalar side of a comparison."""

    sql: str
    params: tuple[Any, ...]
    kind: Kind
    value: Any = None
    is_value: bool = False

    @property
    def empty(self) -> bool:
        return self.is_value and self.value in (None, "")


def _as_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Compiler:
    """Compiles one filter against one resolver; not reusable across filters."""

    def __init__(self, resolver: Resolver, dialect: Dialect, alias_prefix: str = "j") -> None:
        self.resolver = resolver
        self.d = dialect
        self._alias = 0
        self._prefix = alias_prefix
        #: Joins shared by the whole filter, by step key: (alias, SQL, params).
        self.shared: dict[str, tuple[str, str, tuple[Any, ...]]] = {}

    def alias(self) -> str:
        self._alias += 1
        return f"{self._prefix}{self._alias}"

    def render(self, many: Many, *, shared: bool) -> tuple[list[str], tuple[Any, ...], str]:
        """The joins, their parameters and the value expression of ``many``.

        Shared rendering reuses one alias per step key across the filter;
        otherwise every step gets a fresh alias (for match-all subqueries).
        """
        joins: list[str] = []
        params: tuple[Any, ...] = ()
        prev = ""
        alias = ""
        for step in many.steps:
            if shared and step.key in self.shared:
                alias = self.shared[step.key][0]
            else:
                alias = self.alias()
                sql = step.sql.replace("{a}", alias).replace("{p}", prev)
                if shared:
                    self.shared[step.key] = (alias, sql, step.params)
                joins.append(sql)
                params += step.params
            prev = alias
        return joins, params, many.value.replace("{a}", alias)

    # -- expressions ------------------------------------------------------------

    def expr(self, node: Expr) -> Frag:
        if isinstance(node, Comparison):
            return self.comparison(node)
        joiner = " AND " if isinstance(node, And) else " OR "
        parts = [self.expr(item) for item in node.items]
        sql = joiner.join(f"({p[0]})" for p in parts)
        params: tuple[Any, ...] = ()
        for p in parts:
            params += p[1]
        return f"({sql})", params

    def operand(self, node: Operand) -> Resolved:
        if isinstance(node, Literal):
            return Value(node.value)
        if isinstance(node, Identifier):
            return self.resolver.resolve(node.name)
        if isinstance(node, Call):
            return self.call(node)
        raise FilterPlanError("Invalid operand.")  # pragma: no cover - exhaustive

    def call(self, node: Call) -> Column:
        function = FUNCTIONS.get(node.name)
        if function is None:
            raise FilterPlanError(f"Unknown function {node.name}().")
        args: list[Column | Any] = []
        for arg in node.args:
            resolved = self.operand(arg)
            if isinstance(resolved, Many):
                raise FilterPlanError(f"{node.name}() cannot take a multi-valued argument.")
            args.append(resolved.value if isinstance(resolved, Value) else resolved)
        return function(self.d, args)

    def comparison(self, node: Comparison) -> Frag:
        left, right = self.operand(node.left), self.operand(node.right)
        any_of = node.op.startswith("?")
        op = node.op.lstrip("?")
        if isinstance(left, Many) and isinstance(right, Many):
            raise FilterPlanError(
                "Comparing two multi-valued operands is not supported yet; "
                "compare one of them with a single value."
            )
        if isinstance(left, Many) or isinstance(right, Many):
            return self.multi(left, op, right, any_of=any_of)
        return self.scalar(self.side(left), op, self.side(right))

    # -- sides ------------------------------------------------------------------

    def side(self, resolved: Resolved, column: str | None = None) -> _Side:
        if isinstance(resolved, Value):
            return _Side("?", (resolved.value,), resolved.kind, resolved.value, True)
        if isinstance(resolved, Column):
            return _Side(resolved.sql, resolved.params, resolved.kind)
        assert column is not None
        return _Side(column, resolved.params, resolved.kind)

    def multi(self, left: Resolved, op: str, right: Resolved, *, any_of: bool) -> Frag:
        """A comparison on a value set, on the filter's shared joins.

        Any-of holds when the joined row satisfies it. Match-all also needs
        no row of a fresh copy of the joins to break it. The joins themselves
        are added around the whole filter by :func:`compile_filter`.
        """
        many = left if isinstance(left, Many) else right
        assert isinstance(many, Many)
        _, _, value = self.render(many, shared=True)
        cond, params = self.scalar(self.side(left, value), op, self.side(right, value))
        if any_of:
            return cond, params
        joins, join_params, fresh = self.render(many, shared=False)
        bad, bad_params = self.scalar(self.side(left, fresh), op, self.side(right, fresh))
        none_fail = (
            f"NOT EXISTS (SELECT 1 FROM (SELECT 1) AS {self.alias()} {' '.join(joins)} "
            f"WHERE NOT ({bad}))"
        )
        return f"({cond} AND {none_fail})", params + join_params + bad_params

    # -- scalar comparisons -----------------------------------------------------
    #
    # PocketBase runs on SQLite and binds literals natively (numbers as
    # float64, booleans as 1/0), so SQLite's comparison rules are the
    # reference: column affinity converts the bound value where it can, and
    # otherwise NULL < numbers < text. On SQLite Keel binds the same way; on
    # PostgreSQL it reproduces those results explicitly.

    def scalar(self, lhs: _Side, op: str, rhs: _Side) -> Frag:
        if op not in ("=", "!=") and (_is_null(lhs) or _is_null(rhs)):
            return self.d.false, ()  # PocketBase binds nothing to order or match against
        if op in ("~", "!~"):
            return self.like(lhs, op == "!~", rhs)
        if lhs.is_value and rhs.is_value:
            return self._constant(_sqlite_compare(op, lhs.value, rhs.value))
        if op in ("=", "!=") and (lhs.empty or rhs.empty):
            return self.empty_check(lhs, op, rhs)
        if lhs.is_value or rhs.is_value:
            column, value = (rhs, lhs) if lhs.is_value else (lhs, rhs)
            mirrored = _MIRROR[op] if lhs.is_value else op
            return self._column_value(column, mirrored, value.value)
        return self._columns(lhs, op, rhs)

    def _constant(self, truth: bool) -> Frag:
        return (self.d.true if truth else self.d.false), ()

    def _columns(self, lhs: _Side, op: str, rhs: _Side) -> Frag:
        if self.d.name == "postgres" and lhs.kind != rhs.kind:
            lhs, rhs = self._text(lhs), self._text(rhs)
        params = lhs.params + rhs.params
        if op in ("=", "!="):
            compare = "=" if op == "=" else "<>"
            return f"COALESCE({lhs.sql}, '') {compare} COALESCE({rhs.sql}, '')", params
        return f"{lhs.sql} {op} {rhs.sql}", params

    def _column_value(self, column: _Side, op: str, raw: Any) -> Frag:
        sql_op = self.distinct() if op == "!=" else op
        if self.d.name != "postgres":
            return f"{column.sql} {sql_op} ?", (*column.params, _native(raw))
        if column.kind == "json":
            return self._pg_json(column, op, raw)
        if column.kind in ("number", "bool"):
            number = _numeric(raw)
            if number is None:
                # NUMERIC affinity cannot convert it: a number against text.
                return self._number_against_text(column, op)
            expr = column.sql if column.kind == "number" else f"CAST({column.sql} AS INTEGER)"
            return f"{expr} {sql_op} ?", (*column.params, float(number))
        if isinstance(raw, bool):
            raw = str(int(raw))  # bound as the integer 1/0, whose text is '1'/'0'
        elif isinstance(raw, (int, float)):
            raw = _sqlite_real_text(float(raw))  # TEXT affinity: SQLite's text of a REAL
        text = self._text(column)
        return f"{text.sql} {sql_op} ?", (*text.params, _as_text(raw))

    def _number_against_text(self, column: _Side, op: str) -> Frag:
        """``number_column op 'text'``: SQLite orders every number before text."""
        if op == "!=":
            return self.d.true, ()
        if op not in ("<", "<="):
            return self.d.false, ()
        return f"{column.sql} IS NOT NULL", column.params

    def _pg_json(self, column: _Side, op: str, raw: Any) -> Frag:
        """SQLite's typed comparison of a JSON value, on a PostgreSQL ``jsonb``.

        ``J`` marks the JSON expression and ``V`` the bound value in the
        template, so parameters follow the text order whatever the repeats.
        """
        sql_op = self.distinct() if op == "!=" else op
        null_case = self.d.true if op == "!=" else self.d.false
        number = None if isinstance(raw, str) else _numeric(raw)
        if number is not None:
            above = self.d.true if op in (">", ">=", "!=") else self.d.false
            template = (
                f"(CASE WHEN J IS NULL OR jsonb_typeof(J) = 'null' THEN {null_case} "
                "WHEN jsonb_typeof(J) = 'boolean' "
                f"THEN (CASE WHEN (J #>> '{{}}') = 'true' THEN 1.0 ELSE 0.0 END) {sql_op} V "
                "WHEN jsonb_typeof(J) = 'number' "
                f"THEN CAST(J #>> '{{}}' AS DOUBLE PRECISION) {sql_op} V "
                f"ELSE {above} END)"
            )
            return _fill(template, column, float(number))
        below = self.d.true if op in ("<", "<=", "!=") else self.d.false
        template = (
            f"(CASE WHEN J IS NULL OR jsonb_typeof(J) = 'null' THEN {null_case} "
            f"WHEN jsonb_typeof(J) IN ('number', 'boolean') THEN {below} "
            f"WHEN jsonb_typeof(J) = 'string' THEN (J #>> '{{}}') {sql_op} V "
            f"ELSE CAST(J AS TEXT) {sql_op} V END)"
        )
        return _fill(template, column, _as_text(raw))

    def distinct(self) -> str:
        return "IS DISTINCT FROM" if self.d.name == "postgres" else "IS NOT"

    def empty_check(self, lhs: _Side, op: str, rhs: _Side) -> Frag:
        other = rhs if lhs.empty else lhs
        value = lhs.value if lhs.empty else rhs.value
        expr = other.sql
        if other.kind == "json":
            # A JSON value is compared as such: null is not '' (PocketBase uses IS).
            if self.d.name == "postgres":
                is_null = f"({expr} IS NULL OR jsonb_typeof({expr}) = 'null')"
                if value is None:
                    sql = is_null if op == "=" else f"NOT {is_null}"
                    return sql, other.params * 2
                match = f"(jsonb_typeof({expr}) = 'string' AND {expr} #>> '{{}}' = '')"
                sql = match if op == "=" else f"NOT COALESCE({match}, {self.d.false})"
                return sql, other.params * 2
            if value is None:
                return f"{expr} {'IS' if op == '=' else 'IS NOT'} NULL", other.params
            return f"{expr} {'IS' if op == '=' else 'IS NOT'} ''", other.params
        if other.kind in ("number", "bool"):
            if self.d.name == "postgres":
                # SQLite: a number is never '' and never NULL in a stored column.
                return f"{expr} {'IS' if op == '=' else 'IS NOT'} NULL", other.params
            if op == "=":
                return f"({expr} = '' OR {expr} IS NULL)", other.params * 2
            return f"({expr} IS NOT '' AND {expr} IS NOT NULL)", other.params * 2
        text = self._text(other)
        if op == "=":
            return f"({text.sql} = '' OR {text.sql} IS NULL)", text.params * 2
        return f"({text.sql} <> '' AND {text.sql} IS NOT NULL)", text.params * 2

    def _text(self, side: _Side) -> _Side:
        if side.is_value:
            return _Side("?", (_as_text(side.value),), "text", side.value, True)
        if side.kind == "text" or self.d.name != "postgres":
            return _Side(side.sql, side.params, "text")
        if side.kind == "json":
            return _Side(f"({side.sql} #>> '{{}}')", side.params, "text")
        return _Side(f"CAST({side.sql} AS TEXT)", side.params, "text")

    def fold(self, sql: str) -> str:
        """Lower-case ASCII letters only, as SQLite's LIKE and LOWER() do."""
        if self.d.name != "postgres":
            return sql
        return f"TRANSLATE({sql}, '{_UPPER}', '{_UPPER.lower()}')"

    def like(self, lhs: _Side, negate: bool, rhs: _Side) -> Frag:
        keyword = "NOT LIKE" if negate else "LIKE"
        left = self._text(lhs)
        if rhs.is_value:
            pattern = _like_pattern(_like_text(rhs.value))
            if lhs.is_value:
                matched = _sqlite_like(_like_text(lhs.value), pattern) != negate
                return self._constant(matched)
            if self.d.name == "postgres":
                return (
                    f"{self.fold(left.sql)} {keyword} {self.fold('?')} ESCAPE '\\'",
                    (*left.params, pattern),
                )
            return f"{left.sql} {keyword} ? ESCAPE '\\'", (*left.params, pattern)
        right = self._text(rhs)
        wrapped = f"('%' || {right.sql} || '%')"
        return (
            f"{self.fold(left.sql)} {keyword} {self.fold(wrapped)} ESCAPE '\\'",
            left.params + right.params,
        )


FUNCTIONS = {"geoDistance": geo_distance, "strftime": strftime}
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ORDER = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_MIRROR = {"=": "=", "!=": "!=", ">": "<", ">=": "<=", "<": ">", "<=": ">="}


def _is_null(side: _Side) -> bool:
    return side.is_value and side.value is None


def _native(value: Any) -> Any:
    """A value bound the way PocketBase binds it: numbers as REAL, booleans as 1/0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return float(value)
    return value


_NUMERIC_TEXT = re.compile(r"^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$")


def _numeric(value: Any) -> float | None:
    """What NUMERIC affinity makes of a bound value (None: it stays text)."""
    if isinstance(value, (bool, int, float)):
        return float(value)
    if isinstance(value, str) and _NUMERIC_TEXT.match(value):
        return float(value)
    return None


def _sqlite_real_text(value: float) -> str:
    """SQLite's text of a REAL (``%!.15g``): ``10.0``, ``1.5``, ``1.0e+20``."""
    text = f"{value:.15g}"
    if "e" in text:
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        return f"{mantissa}e{exponent}"
    return text if "." in text or "n" in text else text + ".0"


def _rank(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, (bool, int, float)):
        return 1
    return 2


def _sqlite_compare(op: str, a: Any, b: Any) -> bool:
    """Two bound values compared as SQLite compares them (no affinity)."""
    a, b = _native(a), _native(b)
    if op in ("=", "!="):
        if a in (None, "") and b in (None, ""):
            return op == "="
        equal = _rank(a) == _rank(b) and a == b
        return equal if op == "=" else not equal
    if a is None or b is None:
        return False
    if _rank(a) != _rank(b):
        a, b = _rank(a), _rank(b)  # different types: SQLite orders numbers before text
    return bool(_ORDER[op](a, b))


def _like_text(value: Any) -> str:
    """A LIKE operand as PocketBase formats it (Go's shortest float text: ``10``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if number.is_integer() and abs(number) < 1e21:
            return str(int(number))
        return repr(number)
    return _as_text(_native(value))


def _sqlite_like(text: str, pattern: str) -> bool:
    """SQLite's ``LIKE … ESCAPE '\\'``: ``%`` and ``_`` wildcards, ASCII case-insensitive."""
    parts = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    fold = str.maketrans(_UPPER, _UPPER.lower())
    regex = "".join(parts).translate(fold)
    return re.fullmatch(regex, text.translate(fold), re.DOTALL) is not None


def _fill(template: str, column: _Side, value: Any) -> Frag:
    """Replace ``J`` (the column) and ``V`` (a bound value) in text order."""
    sql: list[str] = []
    params: list[Any] = []
    for token in re.split(r"\b(J|V)\b", template):
        if token == "J":
            sql.append(column.sql)
            params.extend(column.params)
        elif token == "V":
            sql.append("?")
            params.append(value)
        else:
            sql.append(token)
    return "".join(sql), tuple(params)


def _like_pattern(value: str) -> str:
    """PocketBase's LIKE parameter: used as-is when it has ``%``, else ``%value%``."""
    if "%" in value.replace("\\%", ""):
        return value
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def compile_filter(
    tree: Expr, resolver: Resolver, dialect: Dialect, *, alias_prefix: str = "j"
) -> Compiled:
    """SQL for ``tree``, with every value bound.

    ``alias_prefix`` keeps the aliases of a filter nested inside another
    (a related collection's rule) apart from the outer ones.

    Raises:
        FilterPlanError: the tree names something the resolver refuses.
    """
    compiler = Compiler(resolver, dialect, alias_prefix)
    sql, params = compiler.expr(tree)
    if compiler.shared:
        # Multi-valued paths join once for the whole filter (LEFT JOINs, so an
        # empty set is one NULL row), and the row matches when some
        # combination of joined rows satisfies the filter.
        joins = " ".join(join for _, join, _ in compiler.shared.values())
        join_params = tuple(
            p for _, _, step_params in compiler.shared.values() for p in step_params
        )
        root = compiler.alias()
        sql = f"EXISTS (SELECT 1 FROM (SELECT 1) AS {root} {joins} WHERE {sql})"
        params = join_params + params
    return Compiled(sql, params)
