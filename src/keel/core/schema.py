"""DDL for collections: create a table, and migrate it from one schema to the next.

Every statement list returned here runs inside the same transaction as the
``_collections`` row change, so a schema change is applied whole or not at all.
Columns are matched by field id, so a renamed field keeps its data.
"""

from __future__ import annotations

from keel.core.collection import Collection
from keel.core.fields.base import Field
from keel.query.dialect import Dialect


def column_sql(dialect: Dialect, fld: Field, name: str | None = None) -> str:
    """The column definition of a field, with the default its zero value has."""
    q = dialect.quote(name or fld.name)
    kind = fld.column_kind()
    ctype = dialect.column_type(kind)
    if getattr(fld, "options", {}).get("primaryKey"):
        return f"{q} {ctype} PRIMARY KEY NOT NULL"
    if kind == "number":
        return f"{q} {ctype} DEFAULT 0 NOT NULL"
    if kind == "bool":
        return f"{q} {ctype} DEFAULT {dialect.false} NOT NULL"
    if kind == "json":
        if nullable(fld):
            return f"{q} {ctype} DEFAULT NULL"
        return f"{q} {ctype} DEFAULT '[]' NOT NULL"
    return f"{q} {ctype} DEFAULT '' NOT NULL"


def nullable(fld: Field) -> bool:
    """Whether the field's column may hold NULL: only JSON fields (their zero is null)."""
    return fld.column_kind() == "json" and fld.zero() != []


def create_table(dialect: Dialect, coll: Collection) -> list[str]:
    """Statements creating the table and indexes of a new collection."""
    columns = [column_sql(dialect, f) for f in coll.fields]
    if dialect.rowid_column:
        columns.append(dialect.rowid_column)
    stmts = [f"CREATE TABLE {dialect.quote(coll.name)} ({', '.join(columns)})"]
    stmts += [idx.create_sql(dialect, coll.name) for idx in coll.parsed_indexes()]
    return stmts


def drop_table(dialect: Dialect, coll: Collection) -> list[str]:
    stmts = [idx.drop_sql(dialect) for idx in coll.parsed_indexes()]
    stmts.append(f"DROP TABLE IF EXISTS {dialect.quote(coll.name)}")
    return stmts


def _convert(dialect: Dialect, column: str, old: Field, new: Field) -> str:
    """An expression turning ``column`` stored as ``old`` into ``new``'s storage."""
    q = dialect.quote(column)
    old_multi, new_multi = old.zero() == [], new.zero() == []
    if old_multi and not new_multi:
        if dialect.name == "postgres":
            return f"COALESCE({q}->>-1, '')"
        return f"COALESCE(json_extract({q}, '$[#-1]'), '')"
    if new_multi and not old_multi:
        if dialect.name == "postgres":
            return (
                f"CASE WHEN {q} IS NULL OR {q} = '' THEN '[]'::jsonb "
                f"ELSE jsonb_build_array({q}) END"
            )
        return f"CASE WHEN {q} IS NULL OR {q} = '' THEN '[]' ELSE json_array({q}) END"
    return q


def alter_table(dialect: Dialect, old: Collection, new: Collection) -> list[str]:
    """Statements migrating ``old``'s table to ``new`` without losing kept data.

    Order: drop the old indexes; rename the table; drop removed columns; move
    renamed or re-typed columns through temporary names (so swaps work); add
    new columns; create the new indexes.
    """
    q = dialect.quote
    table = q(new.name)
    stmts = [idx.drop_sql(dialect) for idx in old.parsed_indexes()]
    if old.name != new.name:
        stmts.append(f"ALTER TABLE {q(old.name)} RENAME TO {table}")
    new_by_id = {f.id: f for f in new.fields}
    old_by_id = {f.id: f for f in old.fields}
    for fld in old.fields:
        if fld.id not in new_by_id:
            stmts.append(f"ALTER TABLE {table} DROP COLUMN {q(fld.name)}")
    final: list[tuple[str, Field]] = []
    for fld in new.fields:
        before = old_by_id.get(fld.id)
        if before is None:
            continue
        storage_changed = before.column_kind() != fld.column_kind() or before.zero() != fld.zero()
        if storage_changed:
            tmp = f"_keel_tmp_{fld.id}"
            stmts.append(f"ALTER TABLE {table} ADD COLUMN {column_sql(dialect, fld, tmp)}")
            stmts.append(
                f"UPDATE {table} SET {q(tmp)} = {_convert(dialect, before.name, before, fld)}"
            )
            stmts.append(f"ALTER TABLE {table} DROP COLUMN {q(before.name)}")
            final.append((tmp, fld))
        elif before.name != fld.name:
            tmp = f"_keel_tmp_{fld.id}"
            stmts.append(f"ALTER TABLE {table} RENAME COLUMN {q(before.name)} TO {q(tmp)}")
            final.append((tmp, fld))
    for tmp, fld in final:
        stmts.append(f"ALTER TABLE {table} RENAME COLUMN {q(tmp)} TO {q(fld.name)}")
    for fld in new.fields:
        if fld.id not in old_by_id:
            stmts.append(f"ALTER TABLE {table} ADD COLUMN {column_sql(dialect, fld)}")
    stmts += [idx.create_sql(dialect, new.name) for idx in new.parsed_indexes()]
    return stmts
