"""Filter functions: ``geoDistance()`` and ``strftime()``, per dialect.

Both follow PocketBase, whose SQL runs on SQLite: ``geoDistance`` is the
haversine distance in kilometres (NULL where SQLite's ``acos`` is out of its
domain), ``strftime`` is SQLite's. PostgreSQL gets equivalent expressions.
"""

from __future__ import annotations

import re
from typing import Any

from keel.query.dialect import Dialect
from keel.query.errors import FilterPlanError
from keel.query.plan import Column

#: strftime() directives → PostgreSQL to_char() patterns.
_PG_FORMAT = {
    "d": "DD",
    "H": "HH24",
    "j": "DDD",
    "m": "MM",
    "M": "MI",
    "S": "SS",
    "Y": "YYYY",
    "f": "SS.MS",
    "W": "WW",
    "w": "D",
}
_DIRECTIVE = re.compile(r"%(.)")


def _arg(dialect: Dialect, arg: Column | Any) -> tuple[str, tuple[Any, ...]]:
    """SQL and parameters of one argument (a column, or a value to bind)."""
    if isinstance(arg, Column):
        return arg.sql, arg.params
    if dialect.name == "postgres":
        return "CAST(? AS DOUBLE PRECISION)", (float(arg),)
    return "?", (float(arg),)


def geo_distance(dialect: Dialect, args: list[Column | Any]) -> Column:
    """Haversine distance in km between (lonA, latA) and (lonB, latB)."""
    if len(args) != 4:
        raise FilterPlanError("geoDistance() takes 4 arguments: lonA, latA, lonB, latB.")
    for arg in args:
        if not isinstance(arg, Column) and (
            isinstance(arg, bool) or not isinstance(arg, (int, float))
        ):
            raise FilterPlanError("geoDistance() arguments must be numbers or number fields.")
    (lon_a, pa), (lat_a, pla), (lon_b, pb), (lat_b, plb) = (_arg(dialect, a) for a in args)
    cosine = (
        f"cos(radians({lat_a})) * cos(radians({lat_b})) * cos(radians({lon_b}) - radians({lon_a}))"
        f" + sin(radians({lat_a})) * sin(radians({lat_b}))"
    )
    params = pla + plb + pb + pa + pla + plb
    if dialect.name == "postgres":
        # SQLite's acos() is NULL outside [-1, 1]; PostgreSQL's raises.
        sql = f"(CASE WHEN ({cosine}) BETWEEN -1 AND 1 THEN 6371 * acos({cosine}) END)"
        return Column(sql, "number", params * 2)
    return Column(f"(6371 * acos({cosine}))", "number", params)


def _pg_format(fmt: str) -> str:
    parts: list[str] = []
    pos = 0
    for match in _DIRECTIVE.finditer(fmt):
        literal = fmt[pos : match.start()]
        if literal:
            parts.append('"' + literal.replace('"', "") + '"')
        code = match.group(1)
        if code == "%":
            parts.append('"%"')
        elif code in _PG_FORMAT:
            parts.append(_PG_FORMAT[code])
        else:
            raise FilterPlanError(f"strftime() directive %{code} is not supported on PostgreSQL.")
        pos = match.end()
    if fmt[pos:]:
        parts.append('"' + fmt[pos:].replace('"', "") + '"')
    return "".join(parts)


def strftime(dialect: Dialect, args: list[Column | Any]) -> Column:
    """SQLite's ``strftime(format, time, modifiers...)`` over date text."""
    if len(args) < 2 or isinstance(args[0], Column) or not isinstance(args[0], str):
        raise FilterPlanError("strftime() takes a format string, a date and optional modifiers.")
    fmt, value, modifiers = args[0], args[1], args[2:]
    if any(isinstance(m, Column) or not isinstance(m, str) for m in modifiers):
        raise FilterPlanError("strftime() modifiers must be strings.")
    if isinstance(value, Column):
        time_sql, time_params = value.sql, value.params
    else:
        time_sql, time_params = "?", (str(value),)
    if dialect.name != "postgres":
        marks = "".join(", ?" for _ in modifiers)
        return Column(f"strftime(?, {time_sql}{marks})", "text", (fmt, *time_params, *modifiers))
    if modifiers:
        raise FilterPlanError("strftime() modifiers are not supported on PostgreSQL yet.")
    if not isinstance(value, Column):
        time_sql = "CAST(? AS TEXT)"
    pattern = _pg_format(fmt).replace("'", "''")
    sql = (
        f"(CASE WHEN {time_sql} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}' "
        f"THEN to_char(CAST(REPLACE({time_sql}, 'Z', '') AS TIMESTAMP), '{pattern}') END)"
    )
    return Column(sql, "text", time_params * 2)
