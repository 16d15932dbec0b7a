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
        out: dict[str, Any] = {"collectionId": coll.id, "collectionName": coll.name}
        for fld in coll.fields:
            if fld.hidden and not show_hidden:
                continue
            if fld.type == "password" or (coll.is_auth and fld.name == "tokenKey"):
                continue  # secrets are never shown, not even to superusers
            out[fld.name] = self.data.get(fld.name, fld.zero())
        return out


def select_sql(dialect: Dialect, coll: Collection) -> str:
    """``SELECT <every column> FROM <table>``, cached on the collection."""
    key = f"select:{dialect.name}"
    sql: str | None = coll.cache.get(key)
    if sql is None:
        cols = ", ".join(dialect.quote(f.name) for f in coll.fields)
        sql = f"SELECT {cols} FROM {dialect.quote(coll.name)}"
        coll.cache[key] = sql
    return sql


def insert_sql(dialect: Dialect, coll: Collection) -> str:
    """``INSERT INTO <table> (<every column>) VALUES (?, …)``, cached on the collection."""
    key = f"insert:{dialect.name}"
    sql: str | None = coll.cache.get(key)
    if sql is None:
        cols = ", ".join(dialect.quote(f.name) for f in coll.fields)
        marks = ", ".join("?" for _ in coll.fields)
        sql = f"INSERT INTO {dialect.quote(coll.name)} ({cols}) VALUES ({marks})"
        coll.cache[key] = sql
    return sql


def update_sql(dialect: Dialect, coll: Collection) -> str:
    """``UPDATE <table> SET <every column> = ? … WHERE id = ?``, cached on the collection."""
    key = f"update:{dialect.name}"
    sql: str | None = coll.cache.get(key)
    if sql is None:
        sets = ", ".join(f"{dialect.quote(f.name)} = ?" for f in coll.fields)
        sql = f"UPDATE {dialect.quote(coll.name)} SET {sets} WHERE {dialect.quote('id')} = ?"
        coll.cache[key] = sql
    return sql


def from_row(coll: Collection, row: Row) -> Record:
    """A record from a row selected with :func:`select_sql`."""
    return Record(coll, {f.name: f.from_db(v) for f, v in zip(coll.fields, row, strict=True)})
