"""Collection use cases: list, view, create, update, delete and import.

Each change writes the ``_collections`` row, the table DDL and the schema
version in one transaction, then reloads the in-memory schema.
"""

from __future__ import annotations

from typing import Any

import orjson

from keel.core.actions.listing import ListParams, page_json
from keel.core.actions.records import delete_auth_rows
from keel.core.app import App
from keel.core.collection import (
    Collection,
    add_timestamps,
    collection_from_json,
    validate_collection,
)
from keel.core.errors import BadRequestError, FieldError, ValidationError
from keel.core.fields.date import now_text
from keel.core.files import delete_after_commit
from keel.core.index import parse_index
from keel.core.rule import rule_errors
from keel.core.schema import alter_table, create_table, drop_table
from keel.core.transaction import write_transaction
from keel.query.dialect import dialect_of
from keel.storage.db.database import Executor
from keel.storage.db.errors import DatabaseError


def list_collections(app: App, params: ListParams) -> dict[str, Any]:
    """A page of collections, sorted by ``sort`` (``name``, ``created``, ``-…``)."""
    items = app.collections
    for part in reversed([p.strip() for p in params.sort.split(",") if p.strip()]):
        key = part.lstrip("-+")
        if key not in {"name", "created", "updated", "type", "id", "system"}:
            raise BadRequestError(f"Invalid sort field {key!r}.")
        items.sort(key=lambda c, k=key: str(getattr(c, k)), reverse=part.startswith("-"))  # type: ignore[misc]
    start = (params.page - 1) * params.per_page
    page = items[start : start + params.per_page]
    total = None if params.skip_total else len(items)
    return page_json(params, [c.to_json() for c in page], total)


async def _write(app: App, tx: Executor, coll: Collection, *, insert: bool) -> None:
    data = orjson.dumps(coll.to_storage()).decode()
    if insert:
        await tx.execute(
            "INSERT INTO _collections (id, name, type, system, data, created, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (coll.id, coll.name, coll.type, coll.system, data, coll.created, coll.updated),
        )
    else:
        await tx.execute(
            "UPDATE _collections SET name = ?, data = ?, updated = ? WHERE id = ?",
            (coll.name, data, coll.updated, coll.id),
        )
    await app.bump_version(tx)


async def _run_ddl(tx: Executor, statements: list[str], message: str) -> None:
    for stmt in statements:
        try:
            await tx.execute(stmt)
        except DatabaseError as exc:
            raise ValidationError(
                message,
                {"indexes": FieldError("validation_invalid_index_expression", str(exc))}
                if "INDEX" in stmt.upper()
                else {},
            ) from exc


def _check_rules(app: App, coll: Collection, schema: list[Collection], message: str) -> None:
    errors = rule_errors(app, coll, schema)
    if errors:
        raise ValidationError(message, dict(errors))


async def _create(
    app: App, tx: Executor, data: Any, schema: list[Collection], *, timestamps: bool = False
) -> Collection:
    message = "Failed to create collection."
    coll, errors = collection_from_json(data)
    if timestamps and not errors:
        add_timestamps(coll)
    validate_collection(coll, schema, errors, message)
    _check_rules(app, coll, schema, message)
    coll.created = coll.updated = now_text()
    await _run_ddl(tx, create_table(dialect_of(tx), coll), message)
    await _write(app, tx, coll, insert=True)
    return coll


async def _update(
    app: App, tx: Executor, old: Collection, data: Any, schema: list[Collection]
) -> Collection:
    message = "Failed to update collection."
    coll, errors = collection_from_json(data, existing=old)
    others = [c for c in schema if c.id != old.id]
    validate_collection(coll, others, errors, message)
    _check_rules(app, coll, others, message)
    if coll.name != old.name:
        renamed = []
        for text in coll.indexes:
            idx = parse_index(text)
            renamed.append(idx.render(coll.name) if idx.table == old.name else text)
        coll.indexes = renamed
    if coll.to_json() == old.to_json():
        return old  # nothing to change: applying the same schema twice is a no-op
    coll.updated = now_text()
    await _run_ddl(tx, alter_table(dialect_of(tx), old, coll), message)
    await _write(app, tx, coll, insert=False)
    return coll


async def create_collection(app: App, data: Any) -> Collection:
    """Create a collection and its table (with ``created``/``updated`` when not named).

    Import and ``schema apply`` take fields exactly as listed instead.

    Raises:
        ValidationError: invalid name, fields, rules or indexes.
    """
    await app.refresh()
    async with app.db.transaction() as tx:
        coll = await _create(app, tx, data, app.collections, timestamps=True)
    await app.reload()
    return coll


async def update_collection(app: App, id_or_name: str, data: Any) -> Collection:
    """Change a collection and migrate its table in one transaction.

    Raises:
        NotFoundError: no such collection.
        ValidationError: invalid changes (type changes, bad names, …).
    """
    await app.refresh()
    old = app.collection(id_or_name, "The requested resource wasn't found.")
    async with app.db.transaction() as tx:
        coll = await _update(app, tx, old, data, app.collections)
    await app.reload()
    return coll


async def delete_collection(app: App, id_or_name: str) -> None:
    """Drop a collection and its records.

    Raises:
        NotFoundError: no such collection.
        BadRequestError: a system collection, or other collections relate to it.
    """
    await app.refresh()
    coll = app.collection(id_or_name, "The requested resource wasn't found.")
    if coll.system:
        raise BadRequestError("Failed to delete collection.")
    referrers = sorted(
        {
            other.name
            for other in app.collections
            if other.id != coll.id
            for fld in other.relations()
            if fld.options["collectionId"] == coll.id
        }
    )
    if referrers:
        raise BadRequestError(
            "Failed to delete collection probably due to existing reference in "
            + ", ".join(referrers)
            + "."
        )
    async with write_transaction(app) as tx:
        for stmt in drop_table(dialect_of(tx), coll):
            await tx.execute(stmt)
        await tx.execute("DELETE FROM _collections WHERE id = ?", (coll.id,))
        if coll.is_auth:
            await delete_auth_rows(tx, coll.id)
        delete_after_commit(app, [f"{coll.id}/"])
        await app.bump_version(tx)
    await app.reload()


async def import_collections(app: App, data: Any) -> list[str]:
    """Create or replace many collections at once, all or nothing.

    ``{"collections": [...], "deleteMissing": false}``. Existing collections
    are matched by id, then by name (case-insensitive); ``deleteMissing`` drops
    the non-system collections the list does not mention.

    Returns:
        One line per change, e.g. ``create posts`` (used by ``keel schema apply``).

    Raises:
        ValidationError: the first invalid collection, under ``collections``.
    """
    message = "Failed to import collections."
    if not isinstance(data, dict):
        raise ValidationError("Failed to load the submitted data due to invalid formatting.", {})
    items = data.get("collections")
    if not isinstance(items, list) or not items:
        raise ValidationError(
            "An error occurred while validating the submitted data.",
            {"collections": FieldError("validation_required", "Cannot be blank.")},
        )
    delete_missing = data.get("deleteMissing") is True
    await app.refresh()
    schema = {c.id: c for c in app.collections}
    changes: list[str] = []
    try:
        async with write_transaction(app) as tx:
            for item in items:
                if not isinstance(item, dict):
                    raise ValidationError("Each collection must be an object.", {})
                existing = _match(schema, item)
                if existing is None:
                    coll = await _create(app, tx, item, list(schema.values()))
                    changes.append(f"create {coll.name}")
                else:
                    coll = await _update(app, tx, existing, item, list(schema.values()))
                    diff = _describe(existing, coll)
                    if diff:
                        changes.append(f"update {coll.name}: {diff}")
                schema[coll.id] = coll
            if delete_missing:
                mentioned = {_match(schema, item).id for item in items}  # type: ignore[union-attr]
                for coll in list(schema.values()):
                    if coll.id not in mentioned and not coll.system:
                        for stmt in drop_table(dialect_of(tx), coll):
                            await tx.execute(stmt)
                        await tx.execute("DELETE FROM _collections WHERE id = ?", (coll.id,))
                        if coll.is_auth:
                            await delete_auth_rows(tx, coll.id)
                        delete_after_commit(app, [f"{coll.id}/"])
                        changes.append(f"delete {coll.name}")
                await app.bump_version(tx)
    except ValidationError as exc:
        raise ValidationError(
            message,
            {
                "collections": FieldError(
                    "validation_collections_import_failure",
                    "Failed to import the collections configuration: "
                    + exc.message
                    + " "
                    + orjson.dumps(exc.data).decode(),
                )
            },
        ) from exc
    finally:
        await app.reload()
    return changes


def _match(schema: dict[str, Collection], item: dict[str, Any]) -> Collection | None:
    found = schema.get(str(item.get("id") or ""))
    if found is not None:
        return found
    name = str(item.get("name") or "").lower()
    return next((c for c in schema.values() if c.name.lower() == name), None)


def _describe(old: Collection, new: Collection) -> str:
    """A short human diff of two versions of a collection ("" when equal)."""
    parts: list[str] = []
    if old.name != new.name:
        parts.append(f"rename to {new.name}")
    old_fields = {f.id: f for f in old.fields}
    new_fields = {f.id: f for f in new.fields}
    for fid, fld in new_fields.items():
        before = old_fields.get(fid)
        if before is None:
            parts.append(f"+field {fld.name}")
        elif before.name != fld.name:
            parts.append(f"field {before.name} -> {fld.name}")
        elif before.to_json() != fld.to_json():
            parts.append(f"~field {fld.name}")
    parts += [f"-field {f.name}" for fid, f in old_fields.items() if fid not in new_fields]
    if old.rules != new.rules:
        parts.append("rules")
    parts += [f"+index {i}" for i in new.indexes if i not in old.indexes]
    parts += [f"-index {i}" for i in old.indexes if i not in new.indexes]
    return ", ".join(parts)
