"""Collection indexes, declared as PocketBase's ``CREATE INDEX`` strings.

The string is parsed into a small structure and the DDL is generated from it
for each dialect, so a schema exported from SQLite applies to PostgreSQL.
Only plain column lists are accepted (optionally ``ASC``/``DESC`` and
``COLLATE NOCASE``); expressions and partial-index ``WHERE`` clauses are not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keel.query.dialect import Dialect

_IDENT = r"(?:`([^`]+)`|\"([^\"]+)\"|\[([^\]]+)\]|([A-Za-z_][A-Za-z0-9_]*))"
_INDEX_RE = re.compile(
    r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    + _IDENT
    + r"\s+ON\s+"
    + _IDENT
    + r"\s*\((.+)\)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_COLUMN_RE = re.compile(
    r"^\s*" + _IDENT + r"(?:\s+COLLATE\s+(NOCASE|BINARY))?(?:\s+(ASC|DESC))?\s*$",
    re.IGNORECASE,
)
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _ident(groups: tuple[str | None, ...]) -> str:
    return next(g for g in groups if g is not None)


@dataclass(frozen=True, slots=True)
class IndexColumn:
    name: str
    descending: bool = False
    nocase: bool = False


@dataclass(frozen=True, slots=True)
class Index:
    """A parsed index declaration."""

    name: str
    table: str
    unique: bool
    columns: tuple[IndexColumn, ...]

    def render(self, table: str | None = None) -> str:
        """The PocketBase-style declaration, with backtick-quoted identifiers."""
        cols = ", ".join(
            f"`{c.name}`"
            + (" COLLATE NOCASE" if c.nocase else "")
            + (" DESC" if c.descending else "")
            for c in self.columns
        )
        unique = "UNIQUE " if self.unique else ""
        return f"CREATE {unique}INDEX `{self.name}` ON `{table or self.table}` ({cols})"

    def create_sql(self, dialect: Dialect, table: str) -> str:
        """DDL creating this index on ``table`` in ``dialect``."""
        q = dialect.quote
        parts = []
        for col in self.columns:
            expr = q(col.name)
            if col.nocase:
                expr = f"LOWER({expr})" if dialect.name == "postgres" else f"{expr} COLLATE NOCASE"
                if dialect.name == "postgres":
                    expr = f"({expr})"
            parts.append(expr + (" DESC" if col.descending else ""))
        unique = "UNIQUE " if self.unique else ""
        return f"CREATE {unique}INDEX {q(self.name)} ON {q(table)} ({', '.join(parts)})"

    def drop_sql(self, dialect: Dialect) -> str:
        return f"DROP INDEX IF EXISTS {dialect.quote(self.name)}"


def parse_index(text: str) -> Index:
    """Parse a ``CREATE [UNIQUE] INDEX name ON table (cols)`` declaration.

    Raises:
        ValueError: with a sentence saying what is wrong.
    """
    if not isinstance(text, str) or len(text) > 2000:
        raise ValueError("Invalid index expression.")
    match = _INDEX_RE.match(text)
    if not match:
        raise ValueError(
            "Invalid index expression: expected CREATE [UNIQUE] INDEX name ON table (columns)."
        )
    groups = match.groups()
    unique = bool(groups[0])
    name = _ident(groups[1:5])
    table = _ident(groups[5:9])
    if not _NAME_RE.match(name) or len(name) > 100:
        raise ValueError("Invalid index name.")
    columns = []
    for raw in _split_columns(groups[9]):
        col = _COLUMN_RE.match(raw)
        if not col:
            raise ValueError(f"Unsupported index column expression {raw.strip()!r}.")
        cgroups = col.groups()
        columns.append(
            IndexColumn(
                name=_ident(cgroups[0:4]),
                nocase=(cgroups[4] or "").upper() == "NOCASE",
                descending=(cgroups[5] or "").upper() == "DESC",
            )
        )
    if not columns:
        raise ValueError("An index needs at least one column.")
    return Index(name=name, table=table, unique=unique, columns=tuple(columns))


def _split_columns(text: str) -> list[str]:
    if "(" in text or ")" in text or ";" in text:
        raise ValueError("Index expressions and functions are not supported.")
    return text.split(",")
