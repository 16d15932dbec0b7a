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

from dataclasses import dataclass
from typing import Any

from keel.query.ast import And, Call, Comparison, Expr, Identifier, Literal, Operand
from keel.query.dialect import Dialect
from keel.query.errors import FilterPlanError
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


def _text_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip()) if value.strip() else None
        except ValueError:
            return None
    return None


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

    def __init__(self, resolver: Resolver, dialect: Dialect) -> None:
        self.resolver = resolver
        self.d = dialect
        self._alias = 0

    def alias(self) -> str:
        self._alias += 1
        return f"mm{self._alias}"

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
            raise FilterPlanError(f"The function {node.name}() is not supported yet.")
        raise FilterPlanError("Invalid operand.")  # pragma: no cover - exhaustive

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
        return _Side(column, (), resolved.kind)

    def multi(self, left: Resolved, op: str, right: Resolved, *, any_of: bool) -> Frag:
        many = left if isinstance(left, Many) else right
        assert isinstance(many, Many)
        alias = self.alias()
        item = f"{alias}.v"
        lhs = self.side(left, item)
        rhs = self.side(right, item)
        cond, cond_params = self.scalar(lhs, op, rhs)
        values = (
            f"(SELECT {many.value} AS v {many.source} "
            f"UNION ALL SELECT NULL WHERE NOT EXISTS (SELECT 1 {many.source}))"
        )
        values_params = many.params + many.params
        exists = f"EXISTS (SELECT 1 FROM {values} {alias} WHERE {cond})"
        exists_params = values_params + cond_params
        if any_of:
            return exists, exists_params
        other = self.alias()
        cond2, cond2_params = self.scalar(
            self.side(left, f"{other}.v"), op, self.side(right, f"{other}.v")
        )
        none_fail = (
            f"NOT EXISTS (SELECT 1 FROM {values} {other} "
            f"WHERE NOT COALESCE({cond2}, {self.d.false}))"
        )
        return (
            f"({exists} AND {none_fail})",
            exists_params + values_params + cond2_params,
        )

    # -- scalar comparisons -----------------------------------------------------

    def scalar(self, lhs: _Side, op: str, rhs: _Side) -> Frag:
        if op in ("~", "!~"):
            return self.like(lhs, op == "!~", rhs)
        if op in ("=", "!=") and (lhs.empty or rhs.empty):
            return self.empty_check(lhs, op, rhs)
        lhs, rhs = self.coerce(lhs, rhs)
        params = lhs.params + rhs.params
        if op == "=":
            if not lhs.is_value and not rhs.is_value and lhs.kind in ("text", "json", "any"):
                return f"COALESCE({lhs.sql}, '') = COALESCE({rhs.sql}, '')", params
            return f"{lhs.sql} = {rhs.sql}", params
        if op == "!=":
            if not lhs.is_value and not rhs.is_value and lhs.kind in ("text", "json", "any"):
                return f"COALESCE({lhs.sql}, '') <> COALESCE({rhs.sql}, '')", params
            return f"{lhs.sql} {self.distinct()} {rhs.sql}", params
        return f"{lhs.sql} {op} {rhs.sql}", params

    def distinct(self) -> str:
        return "IS DISTINCT FROM" if self.d.name == "postgres" else "IS NOT"

    def empty_check(self, lhs: _Side, op: str, rhs: _Side) -> Frag:
        if lhs.empty and rhs.empty:
            return (self.d.true if op == "=" else self.d.false), ()
        other = rhs if lhs.empty else lhs
        if other.is_value:
            empty = other.value in (None, "")
            return (self.d.true if (empty == (op == "=")) else self.d.false), ()
        expr = other.sql
        textual = other.kind in ("text", "any")
        if other.kind == "json":
            expr = self.d.json_text(expr)
            textual = True
        if op == "=":
            if textual:
                return f"({expr} = '' OR {expr} IS NULL)", other.params + other.params
            return f"{expr} IS NULL", other.params
        if textual:
            return f"({expr} <> '' AND {expr} IS NOT NULL)", other.params + other.params
        return f"{expr} IS NOT NULL", other.params

    def coerce(self, lhs: _Side, rhs: _Side) -> tuple[_Side, _Side]:
        """Make both sides comparable: bind values in the other side's kind."""
        if lhs.is_value and not rhs.is_value:
            rhs, lhs = self.coerce(rhs, lhs)
            return lhs, rhs
        if rhs.is_value and not lhs.is_value:
            return self._bind_for(lhs, rhs)
        if not lhs.is_value and not rhs.is_value and lhs.kind != rhs.kind:
            return self._text(lhs), self._text(rhs)
        if lhs.is_value and rhs.is_value:
            return self._value_pair(lhs, rhs)
        return lhs, rhs

    def _bind_for(self, column: _Side, value: _Side) -> tuple[_Side, _Side]:
        raw = value.value
        if column.kind == "number":
            number = _text_number(raw)
            if raw is True or raw is False:
                number = 1.0 if raw else 0.0
            if number is not None:
                return column, _Side("?", (number,), "number", number, True)
            return self._text(column), _Side("?", (_as_text(raw),), "text", raw, True)
        if column.kind == "bool":
            flag = {"true": True, "1": True, "false": False, "0": False}.get(_as_text(raw).lower())
            if isinstance(raw, bool):
                flag = raw
            elif isinstance(raw, (int, float)) and raw in (0, 1):
                flag = bool(raw)
            if flag is not None:
                return column, _Side("?", (flag,), "bool", flag, True)
            return self._text(column), _Side("?", (_as_text(raw),), "text", raw, True)
        if column.kind == "json":
            return self._text(column), _Side("?", (_as_text(raw),), "text", raw, True)
        if column.kind == "any" and self.d.name == "sqlite":
            # A JSON path value keeps its JSON type in SQLite; compare like with like.
            return column, _Side("?", (raw,), "any", raw, True)
        if column.kind == "any":
            return self._text(column), _Side("?", (_as_text(raw),), "text", raw, True)
        return column, _Side("?", (_as_text(raw),), "text", raw, True)

    def _value_pair(self, lhs: _Side, rhs: _Side) -> tuple[_Side, _Side]:
        # Two bound values give the engine no column to infer types from.
        a, b = _text_number(lhs.value), _text_number(rhs.value)
        if a is not None and b is not None:
            mark = self._typed("number")
            return (
                _Side(mark, (a,), "number", a, True),
                _Side(mark, (b,), "number", b, True),
            )
        mark = self._typed("text")
        return (
            _Side(mark, (_as_text(lhs.value),), "text", lhs.value, True),
            _Side(mark, (_as_text(rhs.value),), "text", rhs.value, True),
        )

    def _typed(self, kind: str) -> str:
        if self.d.name != "postgres":
            return "?"
        return "CAST(? AS DOUBLE PRECISION)" if kind == "number" else "CAST(? AS TEXT)"

    def _text(self, side: _Side) -> _Side:
        if side.is_value:
            return _Side("?", (_as_text(side.value),), "text", side.value, True)
        if side.kind == "json":
            return _Side(self.d.json_text(side.sql), side.params, "text")
        if side.kind == "text" or self.d.name != "postgres":
            return _Side(side.sql, side.params, "text")
        return _Side(f"CAST({side.sql} AS TEXT)", side.params, "text")

    def like(self, lhs: _Side, negate: bool, rhs: _Side) -> Frag:
        keyword = ("NOT " if negate else "") + ("ILIKE" if self.d.name == "postgres" else "LIKE")
        left = self._text(lhs)
        if rhs.is_value:
            pattern = _like_pattern(_as_text(rhs.value) if rhs.value is not None else "")
            return f"{left.sql} {keyword} ? ESCAPE '\\'", (*left.params, pattern)
        right = self._text(rhs)
        return (
            f"{left.sql} {keyword} ('%' || {right.sql} || '%') ESCAPE '\\'",
            left.params + right.params,
        )


def _like_pattern(value: str) -> str:
    """PocketBase's LIKE parameter: used as-is when it has ``%``, else ``%value%``."""
    if "%" in value.replace("\\%", ""):
        return value
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def compile_filter(tree: Expr, resolver: Resolver, dialect: Dialect) -> Compiled:
    """SQL for ``tree``, with every value bound.

    Raises:
        FilterPlanError: the tree names something the resolver refuses.
    """
    sql, params = Compiler(resolver, dialect).expr(tree)
    return Compiled(sql, params)
