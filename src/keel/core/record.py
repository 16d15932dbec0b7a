"""Records: one row of a collection, in canonical Python values."""

from __future__ import annotations

from typing import Any

from keel.core.collection import Collection
from keel.query.dialect import Dialect
from keel.storage.db.database import Row


class Record:
    """A record of ``collection`` with its values by field name."""

    __slots__ = ("collection", "data")

    def __init__(self, collection: Collection, data: dict[str, Any]) -> None:
        self.collection = collection
        self.data = data

    @property
    def id(self) -> str:
        return str(self.data.get("id", ""))

    def get(self, name: str) -> Any:
        return self.data.get(name)

    def to_json(self, *, show_hidden: bool = False) -> dict[str, Any]:
        """The record as the API shows it; hidden fields only when asked."""
        coll = self.collection
        shown = coll.cached(
            "shown:hidden" if show_hidden else "shown",
            lambda: tuple(
                f
                for f in coll.fields
                if (show_hidden or not f.hidden)
                # secrets are never shown, not even to superusers
                and not (f.type == "password" or (coll.is_auth and f.name == "tokenKey"))
            ),
        )
        data = self.data
        out: dict[str, Any] = {"collectionId": coll.id, "collectionName": coll.name}
        for fld in shown:
            name = fld.name
            out[name] = data[name] if name in data else fld.zero()
        return out


def _columns(dialect: Dialect, coll: Collection) -> str:
    return ", ".join(dialect.quote(f.name) for f in coll.fields)


def select_sql(dialect: Dialect, coll: Collection) -> str:
    """``SELECT <every column> FROM <table>``, cached on the collection."""
    return coll.cached(
        f"select:{dialect.name}",
        lambda: f"SELECT {_columns(dialect, coll)} FROM {dialect.quote(coll.name)}",
    )


def insert_sql(dialect: Dialect, coll: Collection) -> str:
    """``INSERT INTO <table> (<every column>) VALUES (?, …)``, cached on the collection."""

    def build() -> str:
        marks = ", ".join("?" for _ in coll.fields)
        return (
            f"INSERT INTO {dialect.quote(coll.name)} ({_columns(dialect, coll)}) VALUES ({marks})"
        )

    return coll.cached(f"insert:{dialect.name}", build)


def update_sql(dialect: Dialect, coll: Collection) -> str:
    """``UPDATE <table> SET <every column> = ? … WHERE id = ?``, cached on the collection."""

    def build() -> str:
        sets = ", ".join(f"{dialect.quote(f.name)} = ?" for f in coll.fields)
        return f"UPDATE {dialect.quote(coll.name)} SET {sets} WHERE {dialect.quote('id')} = ?"

    return coll.cached(f"update:{dialect.name}", build)


def from_row(coll: Collection, row: Row) -> Record:
    """A record from a row selected with :func:`select_sql`."""
    return Record(coll, {f.name: f.from_db(v) for f, v in zip(coll.fields, row, strict=True)})
