"""What a caller sees of a record: hidden fields, and the email of auth records.

Hidden fields are shown to superusers only. The ``email`` of an auth record is
shown when its ``emailVisibility`` is on, to the record itself, to superusers,
and to callers its collection's ``manageRule`` lets manage it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.core.collection import Collection
from keel.core.record import Record
from keel.core.request import Auth, RequestInfo
from keel.core.rule import rule_filter
from keel.query.dialect import dialect_of

if TYPE_CHECKING:
    from keel.core.app import App


def is_owner(auth: Auth, record: Record) -> bool:
    """Whether ``auth`` is ``record`` itself."""
    return (
        auth.collection is not None
        and auth.collection.id == record.collection.id
        and auth.id == record.id
    )


def record_json(record: Record, auth: Auth, manageable: bool = False) -> dict[str, Any]:
    """``record`` as the API shows it to ``auth``."""
    admin = auth.is_superuser and auth.unrestricted
    out = record.to_json(show_hidden=admin)
    if (
        record.collection.is_auth
        and not admin
        and not manageable
        and not record.data.get("emailVisibility")
        and not is_owner(auth, record)
    ):
        out.pop("email", None)
    return out


async def manageable_ids(
    app: App, coll: Collection, records: list[Record], info: RequestInfo
) -> set[str]:
    """Ids among ``records`` that the caller may manage under ``manageRule``."""
    rule = coll.options.get("manageRule") if coll.is_auth else None
    if rule is None or info.auth.record is None or info.auth.is_superuser or not records:
        return set()
    condition = rule_filter(app, coll, "manageRule", info)
    q = dialect_of(app.db).quote
    marks = ", ".join("?" for _ in records)
    where = f"{q('id')} IN ({marks})"
    if condition.sql:
        where += f" AND ({condition.sql})"
    rows = await app.db.fetch_all(
        f"SELECT {q('id')} FROM {q(coll.name)} WHERE {where}",
        (*(r.id for r in records), *condition.params),
    )
    return {str(row[0]) for row in rows}


async def records_json(
    app: App, coll: Collection, records: list[Record], info: RequestInfo
) -> list[dict[str, Any]]:
    """Every record as the caller may see it."""
    manageable = await manageable_ids(app, coll, records, info)
    return [record_json(r, info.auth, r.id in manageable) for r in records]
