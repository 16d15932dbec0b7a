"""Record use cases: list, view, create, update and delete.

REST, batch, the CLI and later GraphQL call these, so rules, validation, hooks
and relation integrity are implemented once. Writes take an optional open
transaction (``tx``) so a batch can run several of them atomically.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from keel.core.actions.listing import ListParams, page_json
from keel.core.app import App
from keel.core.collection import Collection
from keel.core.errors import BadRequestError, FieldError, NotFoundError, ValidationError
from keel.core.events import RecordEvent
from keel.core.fields.relation import RelationField
from keel.core.fields.text import generate
from keel.core.files import (
    check_kept_files,
    delete_after_commit,
    delete_keys,
    file_fields,
    file_names,
    has_uploads,
    record_prefix,
    removed_keys,
    stage_uploads,
)
from keel.core.outbox import record_event
from keel.core.record import Record, from_row, insert_sql, select_sql, update_sql
from keel.core.record_form import apply_body, blank_record
from keel.core.request import RequestInfo
from keel.core.result_cache import ResponseKey, cache_key, reusable
from keel.core.rule import (
    ALL_ROWS,
    RuleFilter,
    filter_condition,
    reads_clock,
    rule_filter,
    rule_text,
)
from keel.core.sort import sort_clause
from keel.core.transaction import write_transaction
from keel.core.visibility import records_json
from keel.query.dialect import dialect_of
from keel.storage.db.database import Executor
from keel.storage.db.errors import UniqueViolationError

MAX_CASCADE_DEPTH = 32


@asynccontextmanager
async def _uploads(app: App) -> AsyncIterator[list[str]]:
    """Keys of files stored for this request; deleted again if the request fails."""
    staged: list[str] = []
    try:
        yield staged
    except BaseException:
        if staged:
            await delete_keys(app, staged)
        raise


def _where(
    rule: RuleFilter, extra: str = "", params: tuple[Any, ...] = ()
) -> tuple[str, tuple[Any, ...]]:
    conds = [c for c in (extra, rule.sql) if c]
    if not conds:
        return "", params
    return " WHERE " + " AND ".join(f"({c})" for c in conds), params + rule.params


# -- reads ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The statements of one list request, compiled for its caller.

    ``count_sql`` is empty with ``skipTotal``. ``sources`` are the filter
    texts compiled into the statements: the filter, and the list rule when
    it applies to the caller.
    """

    sql: str
    params: tuple[Any, ...]
    count_sql: str
    count_params: tuple[Any, ...]
    sources: tuple[str, ...]


def list_query(app: App, coll: Collection, info: RequestInfo, params: ListParams) -> ListQuery:
    """The page and count statements of a list request.

    Raises:
        ForbiddenError: the list rule is ``null`` and the caller is no superuser.
        BadRequestError: the filter or the sort is invalid.
    """
    list_rule = rule_filter(app, coll, "listRule", info)
    rule = list_rule & filter_condition(app, coll, params.filter, info)
    dialect = dialect_of(app.db)
    order, order_params = sort_clause(app, coll, params.sort, info)
    where, bound = _where(rule)
    offset = (params.page - 1) * params.per_page
    applied = () if list_rule.unrestricted else (rule_text(coll, "listRule") or "",)
    return ListQuery(
        sql=f"{select_sql(dialect, coll)}{where} ORDER BY {order} LIMIT ? OFFSET ?",
        params=(*bound, *order_params, params.per_page, offset),
        count_sql=""
        if params.skip_total
        else f"SELECT COUNT(*) FROM {dialect.quote(coll.name)}{where}",
        count_params=bound,
        sources=(params.filter, *applied),
    )


async def list_records(
    app: App,
    coll: Collection,
    info: RequestInfo,
    params: ListParams,
    query: ListQuery | None = None,
) -> tuple[dict[str, Any], list[Record]]:
    """One page of records the caller may list, in PocketBase's envelope.

    ``query`` is :func:`list_query`'s result for the same arguments, when
    the caller has it.

    Returns:
        The envelope (items serialized for the caller) and the records.
    """
    if query is None:
        query = list_query(app, coll, info, params)
    page_query = app.results.fetch_all(query.sql, query.params, info.data_version)
    total: int | None = None
    if not query.count_sql:
        rows = await page_query
    else:
        # The count runs beside the page query (another reader thread or pool
        # connection), so a total costs little extra latency.
        rows, total = await asyncio.gather(
            page_query, app.results.count(query.count_sql, query.count_params, info.data_version)
        )
    records = [from_row(coll, r) for r in rows]
    items = await records_json(app, coll, records, info)
    return page_json(params, items, total), records


def list_key(app: App, coll: Collection, info: RequestInfo, query: ListQuery) -> ResponseKey | None:
    """The data version, and everything else a list response depends on.

    As :func:`view_key`, for the statements of ``query`` (the rule, the
    filter, the sort and the page are all in them).
    """
    statements = ((query.sql, query.params), (query.count_sql, query.count_params))
    return _response_key(app, coll, info, statements, query.sources)


async def find_record(
    ex: Executor, coll: Collection, record_id: str, rule: RuleFilter, *, lock: bool = False
) -> Record | None:
    """The record with this id that also matches ``rule``, or ``None``.

    ``lock`` (inside a write transaction) keeps concurrent writers of the row
    waiting until this transaction ends, so a read-modify-write of the whole
    row cannot lose another's change. SQLite serializes writers anyway.
    """
    where, bound = _where(rule, f"{dialect_of(ex).quote('id')} = ?", (record_id,))
    suffix = " FOR UPDATE" if lock and dialect_of(ex).name == "postgres" else ""
    sql = f"{select_sql(dialect_of(ex), coll)}{where}{suffix}"
    # Without a rule it is a bare primary-key lookup, which the engine may
    # serve without leaving the event loop; a rule may join other tables.
    fetch = ex.fetch_point if rule.unrestricted else ex.fetch_one
    row = await fetch(sql, bound)
    return from_row(coll, row) if row else None


async def view_record(
    app: App, coll: Collection, record_id: str, info: RequestInfo, rule: RuleFilter | None = None
) -> Record:
    """The record, if the caller may view it.

    ``rule`` is the view rule as compiled for ``info``, when the caller has it.

    Raises:
        ForbiddenError: the view rule is superusers-only.
        NotFoundError: no such record, or the rule hides it.
    """
    if rule is None:
        rule = rule_filter(app, coll, "viewRule", info)
    record = await find_record(app.db, coll, record_id, rule)
    if record is None:
        raise NotFoundError()
    return record


def view_key(
    app: App, coll: Collection, record_id: str, info: RequestInfo, rule: RuleFilter | None = None
) -> ResponseKey | None:
    """The data version, and everything else a view response depends on.

    ``rule`` is the view rule as compiled for ``info``, when the caller has it.

    The response is a function of the data, the schema, the view rule as
    compiled for this caller (its SQL and bound values: the caller's id,
    headers or date macros it uses), the ``fields`` asked for, and whether
    hidden fields show. While the data version holds, equal keys mean equal
    responses. ``None`` where that does not cover everything: ``expand``
    (other collections' rules), auth collections (``emailVisibility`` and
    ``manageRule``), requests without a data version (PostgreSQL tells it only
    through the request's schema check, :meth:`App.refresh`), and rules that
    read the clock or draw at random.

    Raises:
        ForbiddenError: the rule is ``null`` and the caller is no superuser,
            or the caller's API key has no scope to view this collection.
    """
    if rule is None:
        rule = rule_filter(app, coll, "viewRule", info)
    sources = () if rule.unrestricted else (rule_text(coll, "viewRule") or "",)
    return _response_key(app, coll, info, ((rule.sql, rule.params),), sources, record_id)


def _response_key(
    app: App,
    coll: Collection,
    info: RequestInfo,
    statements: tuple[tuple[str, tuple[Any, ...]], ...],
    sources: tuple[str, ...],
    *extra: Any,
) -> ResponseKey | None:
    """The key of a response made from ``statements`` (SQL and bound values) and ``extra``.

    ``sources`` are the filter texts compiled into the statements. ``None``
    where a key cannot cover everything (see :func:`view_key`).
    """
    version = info.data_version if info.data_version is not None else app.db.data_version()
    if version is None or coll.is_auth or info.query.get("expand"):
        return None
    if not all(reusable(sql) for sql, _ in statements):
        return None
    if any(reads_clock(text) for text in sources if text):
        # Bound date values change every millisecond: entries would never be
        # hit again and would only push useful ones out.
        return None
    return version, (
        app.schema_version,
        coll.id,
        *extra,
        *(part for sql, params in statements for part in cache_key(sql, params)),
        info.query.get("fields", ""),
        info.auth.is_superuser and info.auth.unrestricted,
    )


# -- writes ---------------------------------------------------------------------


async def _check_relations(
    ex: Executor, app: App, coll: Collection, record: Record, names: set[str], message: str
) -> None:
    errors: dict[str, Any] = {}
    for fld in coll.relations():
        if fld.name not in names:
            continue
        ids = fld.values_of(record.data.get(fld.name))
        if not ids:
            continue
        target = app.find_collection(fld.options["collectionId"])
        if target is None:
            errors[fld.name] = FieldError(
                "validation_missing_rel_records",
                "Failed to find all relation records with the provided ids.",
            )
            continue
        marks = ", ".join("?" for _ in ids)
        rows = await ex.fetch_all(
            f"SELECT id FROM {dialect_of(ex).quote(target.name)} WHERE id IN ({marks})", tuple(ids)
        )
        if len(rows) != len(set(ids)):
            errors[fld.name] = FieldError(
                "validation_missing_rel_records",
                "Failed to find all relation records with the provided ids.",
            )
    if errors:
        raise ValidationError(message, errors)


def _unique_error(coll: Collection, exc: UniqueViolationError, message: str) -> ValidationError:
    columns = list(exc.columns)
    if not columns and exc.index:
        for idx in coll.parsed_indexes():
            if idx.name == exc.index:
                columns = [c.name for c in idx.columns]
        if exc.index.endswith("_pkey"):
            columns = ["id"]
    if not columns:
        columns = ["id"]
    return ValidationError(
        message,
        {c: FieldError("validation_not_unique", "Value must be unique.") for c in columns},
    )


def _values(coll: Collection, record: Record) -> list[Any]:
    return [f.to_db(record.data.get(f.name, f.zero())) for f in coll.fields]


async def create_record(
    app: App,
    coll: Collection,
    body: dict[str, Any],
    info: RequestInfo,
    tx: Executor | None = None,
    *,
    trusted: bool = False,
) -> Record:
    """Validate and insert a record, then check the create rule on it.

    ``trusted`` lets Keel's own flows (OAuth2 sign-up) set the auth fields
    only a manager may set, while the create rule still applies to ``info``.

    Raises:
        ForbiddenError: the create rule is superusers-only.
        ValidationError: invalid values, missing relations, duplicates, or the
            create rule rejects the new record (all 400).
    """
    if not has_uploads(body):
        return await _create(app, coll, body, info, tx, trusted)
    async with _uploads(app) as staged:
        rule_filter(app, coll, "createRule", info)  # refuse before storing anything
        body = dict(body)
        body = await stage_uploads(app, coll, _new_record_id(coll, body), body, staged)
        record = await _create(app, coll, body, info, tx, trusted)
        _drop_unused(app, coll, record, staged)
        return record


def _truthy(coll: Collection, value: Any) -> bool:
    """A ``verified`` body value as the bool field reads it (form ``"false"`` is false)."""
    fld = coll.field("verified")
    try:
        return bool(fld.normalize(value)) if fld is not None else False
    except FieldError:
        return False


def _drop_unused(app: App, coll: Collection, record: Record, staged: list[str]) -> None:
    """Delete uploads the saved record does not name (e.g. sent as ``field-``)."""
    if not staged:
        return
    kept = {name for names in file_names(coll, record).values() for name in names}
    unused = [key for key in staged if key.rsplit("/", 1)[-1] not in kept]
    if unused:
        app.spawn(delete_keys(app, unused))


def _new_record_id(coll: Collection, body: dict[str, Any]) -> str:
    """The id a new record will have; chosen before its files are stored under it.

    Raises:
        ValidationError: the body's ``id`` is invalid.
    """
    id_field = coll.field("id")
    assert id_field is not None
    raw = body.get("id")
    if raw in (None, ""):
        body["id"] = generate(id_field.options["autogeneratePattern"] or "[a-z0-9]{15}")
        return str(body["id"])
    try:
        id_field.validate(id_field.normalize(raw))
    except FieldError as exc:
        raise ValidationError("Failed to create record.", {"id": exc}) from exc
    return str(raw)


async def _create(
    app: App,
    coll: Collection,
    body: dict[str, Any],
    info: RequestInfo,
    tx: Executor | None,
    trusted: bool,
) -> Record:
    message = "Failed to create record."
    rule = rule_filter(app, coll, "createRule", info)
    record = blank_record(coll)
    # Setting ``verified`` on create takes a manager; with a manageRule that is
    # checked against the inserted record, before the commit.
    manage_rule = coll.options.get("manageRule") if coll.is_auth else None
    check_manager = (
        coll.is_auth
        and not info.auth.is_superuser
        and manage_rule is not None
        and _truthy(coll, body.get("verified"))
        and not trusted
    )
    manager = trusted or info.auth.is_superuser or check_manager or not coll.is_auth
    changed = await apply_body(
        coll,
        record,
        body,
        creating=True,
        message=message,
        passwords=app.passwords,
        manager=manager,
    )
    if coll.is_auth:
        record.data["tokenKey"] = generate("[a-zA-Z0-9]{50}")
    async with write_transaction(app, tx) as ex:
        await _check_relations(ex, app, coll, record, changed, message)

        async def insert(e: RecordEvent) -> None:
            try:
                await ex.execute_point(insert_sql(dialect_of(ex), coll), _values(coll, e.record))
            except UniqueViolationError as exc:
                raise _unique_error(coll, exc, message) from exc
            if not rule.unrestricted and await find_record(ex, coll, e.record.id, rule) is None:
                raise BadRequestError(message)
            await record_event(ex, coll, "create", e.record)
            if check_manager:
                manage = rule_filter(app, coll, "manageRule", info)
                if await find_record(ex, coll, e.record.id, manage) is None:
                    mismatch = FieldError("validation_values_mismatch", "Values don't match.")
                    raise ValidationError(message, {"verified": mismatch})

        await app.on_record_create.trigger(RecordEvent(coll, record, info, ex), insert)
    return record


async def update_record(
    app: App,
    coll: Collection,
    record_id: str,
    body: dict[str, Any],
    info: RequestInfo,
    tx: Executor | None = None,
    *,
    renew_key: bool = False,
) -> Record:
    """Apply a body to an existing record the caller may update.

    ``renew_key`` renews an auth record's ``tokenKey`` (signing out every
    token); a password change always does.

    Raises:
        ForbiddenError: the update rule is superusers-only.
        NotFoundError: no such record, or the rule hides it.
        ValidationError: invalid values, missing relations or duplicates.
    """
    if not has_uploads(body):
        return await _update(app, coll, record_id, body, info, tx, renew_key)
    async with _uploads(app) as staged:
        rule_filter(app, coll, "updateRule", info)  # refuse before storing anything
        if await find_record(app.db, coll, record_id, ALL_ROWS) is None:
            raise NotFoundError()
        body = await stage_uploads(app, coll, record_id, body, staged)
        record = await _update(app, coll, record_id, body, info, tx, renew_key)
        _drop_unused(app, coll, record, staged)
        return record


async def _update(
    app: App,
    coll: Collection,
    record_id: str,
    body: dict[str, Any],
    info: RequestInfo,
    tx: Executor | None,
    renew_key: bool,
) -> Record:
    message = "Failed to update record."
    rule = rule_filter(app, coll, "updateRule", info)
    async with write_transaction(app, tx) as ex:
        record = await find_record(ex, coll, record_id, rule, lock=True)
        if record is None:
            raise NotFoundError()
        before = file_names(coll, record)
        old = Record(coll, dict(record.data))
        manager = not coll.is_auth or await _can_manage(app, ex, coll, record, info)
        changed = await apply_body(
            coll,
            record,
            body,
            creating=False,
            message=message,
            passwords=app.passwords,
            manager=manager,
        )
        if coll.is_auth and ("password" in changed or renew_key):
            record.data["tokenKey"] = generate("[a-zA-Z0-9]{50}")
        check_kept_files(coll, record, before, message)
        await _check_relations(ex, app, coll, record, changed, message)

        async def update(e: RecordEvent) -> None:
            try:
                await ex.execute_point(
                    update_sql(dialect_of(ex), coll), (*_values(coll, e.record), record_id)
                )
            except UniqueViolationError as exc:
                raise _unique_error(coll, exc, message) from exc
            await record_event(ex, coll, "update", e.record, old)

        await app.on_record_update.trigger(RecordEvent(coll, record, info, ex), update)
        if before:
            delete_after_commit(app, removed_keys(coll, record, before))
    return record


async def _can_manage(
    app: App, ex: Executor, coll: Collection, record: Record, info: RequestInfo
) -> bool:
    """Superusers, and callers the auth collection's ``manageRule`` matches."""
    if info.auth.is_superuser:
        return True
    if coll.options.get("manageRule") is None or info.auth.record is None:
        return False
    manage = rule_filter(app, coll, "manageRule", info)
    return await find_record(ex, coll, record.id, manage) is not None


async def delete_record(
    app: App, coll: Collection, record_id: str, info: RequestInfo, tx: Executor | None = None
) -> None:
    """Delete a record the caller may delete, and keep relations consistent.

    Records pointing at it through a ``cascadeDelete`` relation are deleted
    too; other references are removed from their relation fields. A record
    still required by a relation cannot be deleted (400).
    """
    rule = rule_filter(app, coll, "deleteRule", info)
    async with write_transaction(app, tx) as ex:
        record = await find_record(ex, coll, record_id, rule, lock=True)
        if record is None:
            raise NotFoundError()
        await _delete(app, ex, record, info, depth=0)


async def _delete(app: App, ex: Executor, record: Record, info: RequestInfo, depth: int) -> None:
    if depth > MAX_CASCADE_DEPTH:
        raise BadRequestError("Failed to delete record: the cascade is too deep.")
    coll = record.collection

    async def delete(e: RecordEvent) -> None:
        await _release_references(app, ex, e.record, info, depth)
        q = dialect_of(ex).quote
        await ex.execute_point(f"DELETE FROM {q(coll.name)} WHERE {q('id')} = ?", (e.record.id,))
        await record_event(ex, coll, "delete", e.record)
        if coll.is_auth:
            await delete_auth_rows(ex, coll.id, e.record.id)
        if file_fields(coll):
            delete_after_commit(app, [record_prefix(coll, e.record.id)])

    await app.on_record_delete.trigger(RecordEvent(coll, record, info, ex), delete)


#: System collections holding rows that belong to an auth record.
AUTH_ROW_TABLES = ("_externalAuths", "_mfas", "_otps", "_apiKeys")


async def delete_auth_rows(ex: Executor, collection_id: str, record_id: str | None = None) -> None:
    """Delete the OAuth2 links, pending MFA, OTPs and API keys of an auth record.

    With ``record_id`` ``None``, those of every record of the collection.
    """
    q = dialect_of(ex).quote
    where = f"{q('collectionRef')} = ?"
    params: tuple[str, ...] = (collection_id,)
    if record_id is not None:
        where += f" AND {q('recordRef')} = ?"
        params += (record_id,)
    for table in AUTH_ROW_TABLES:
        await ex.execute(f"DELETE FROM {q(table)} WHERE {where}", params)


def _references(ex: Executor, fld: RelationField) -> str:
    q = dialect_of(ex).quote(fld.name)
    if not fld.multiple:
        return f"{q} = ?"
    if dialect_of(ex).name == "postgres":
        return f"{q} @> jsonb_build_array(?::text)"
    return f"EXISTS (SELECT 1 FROM json_each({q}) WHERE json_each.value = ?)"


async def _release_references(
    app: App, ex: Executor, record: Record, info: RequestInfo, depth: int
) -> None:
    for other in app.collections:
        for fld in other.relations():
            if fld.options["collectionId"] != record.collection.id:
                continue
            rows = await ex.fetch_all(
                f"{select_sql(dialect_of(ex), other)} WHERE {_references(ex, fld)}", (record.id,)
            )
            for row in rows:
                ref = from_row(other, row)
                if ref.collection.id == record.collection.id and ref.id == record.id:
                    continue
                if fld.options["cascadeDelete"]:
                    await _delete(app, ex, ref, info, depth + 1)
                    continue
                remaining = [v for v in fld.values_of(ref.data[fld.name]) if v != record.id]
                if fld.required and not remaining:
                    raise BadRequestError(
                        "Failed to delete record. Make sure that the record is not part of a "
                        "required relation reference."
                    )
                value = remaining if fld.multiple else ""
                q = dialect_of(ex).quote
                await ex.execute(
                    f"UPDATE {q(other.name)} SET {q(fld.name)} = ? WHERE {q('id')} = ?",
                    (fld.to_db(value), ref.id),
                )
                unlinked = Record(other, {**ref.data, fld.name: value})
                await record_event(ex, other, "update", unlinked, ref)
