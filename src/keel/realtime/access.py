"""Whether a subscriber may see one version of a record, decided at event time.

The API rule (``listRule`` for ``collection/*`` topics, ``viewRule`` for
``collection/id``) and the subscription's ``filter`` are compiled exactly as
for the REST API, then evaluated against the record's values *as the event
carries them*: a one-row derived table named like the collection stands in
for it. So deletes (whose row is gone) and updates (whose old version is gone)
are judged on the right data, and relations in rules still join the live
tables.
"""

from __future__ import annotations

from typing import Any

from keel.core.app import App
from keel.core.collection import Collection
from keel.core.errors import ForbiddenError
from keel.core.request import RequestInfo
from keel.core.rule import RuleFilter, filter_condition, rule_filter


def condition(
    app: App, coll: Collection, rule_name: str, info: RequestInfo, filter_text: str
) -> RuleFilter | None:
    """The caller's condition for a topic; ``None`` when it may see nothing.

    Raises:
        BadRequestError: the subscription's filter is invalid.
    """
    try:
        rule = rule_filter(app, coll, rule_name, info)
    except ForbiddenError:
        return None
    if filter_text:
        rule = rule & filter_condition(app, coll, filter_text, info)
    return rule


def _row_sql(app: App, coll: Collection, data: dict[str, Any]) -> tuple[str, list[Any]]:
    d = app.dialect
    cols: list[str] = []
    params: list[Any] = []
    for fld in coll.fields:
        value = fld.to_db(data.get(fld.name, fld.zero()))
        mark = "?"
        if d.name == "postgres":
            mark = f"CAST(? AS {d.column_type(fld.column_kind())})"
        cols.append(f"{mark} AS {d.quote(fld.name)}")
        params.append(value)
    return f"(SELECT {', '.join(cols)}) AS {d.quote(coll.name)}", params


async def matches(app: App, coll: Collection, data: dict[str, Any], cond: RuleFilter) -> bool:
    """Whether a record with these values meets ``cond``."""
    if cond.unrestricted:
        return True
    table, params = _row_sql(app, coll, data)
    row = await app.db.fetch_one(f"SELECT 1 FROM {table} WHERE {cond.sql}", (*params, *cond.params))
    return row is not None
