"""SQL dialects: the few places where SQLite and PostgreSQL text differ.

Statements in Keel are written once with ``?`` placeholders and identifiers
quoted through :meth:`Dialect.quote`; the adapter rewrites placeholders for its
driver. Identifiers only ever come from a validated schema, never from input.
Adapters name their dialect (``dialect_name``) without importing this module,
so ``keel.storage`` and ``keel.query`` stay independent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

ColumnKind = Literal["text", "number", "bool", "json"]


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between SQL engines, as data.

    Attributes:
        name: ``"sqlite"`` or ``"postgres"``.
        column_types: the column type used for each abstract column kind.
        rowid: the expression of the per-table insertion order.
        rowid_column: extra column DDL that provides ``rowid`` ("" if built in).
        true: the literal for boolean true in this dialect.
    """

    name: str
    column_types: dict[str, str]
    rowid: str
    rowid_column: str
    true: str
    false: str

    @staticmethod
    def quote(identifier: str) -> str:
        """Quote an identifier with double quotes (valid in both dialects)."""
        return '"' + identifier.replace('"', '""') + '"'

    def column_type(self, kind: ColumnKind) -> str:
        """The column type for an abstract column kind."""
        return self.column_types[kind]

    def json_text(self, expression: str) -> str:
        """An expression giving the JSON column ``expression`` as text."""
        if self.name == "postgres":
            return f"({expression})::text"
        return expression


SQLITE = Dialect(
    name="sqlite",
    column_types={"text": "TEXT", "number": "NUMERIC", "bool": "BOOLEAN", "json": "TEXT"},
    rowid="rowid",
    rowid_column="",
    true="1",
    false="0",
)

POSTGRES = Dialect(
    name="postgres",
    column_types={
        "text": "TEXT",
        "number": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
        "json": "JSONB",
    },
    rowid='"_rowid"',
    rowid_column='"_rowid" BIGINT GENERATED ALWAYS AS IDENTITY',
    true="TRUE",
    false="FALSE",
)


DIALECTS = {d.name: d for d in (SQLITE, POSTGRES)}


class HasDialect(Protocol):
    """Anything that says which SQL dialect it speaks (a database adapter)."""

    dialect_name: str


def dialect_of(executor: HasDialect) -> Dialect:
    """The dialect of a database adapter or transaction."""
    return DIALECTS[executor.dialect_name]
