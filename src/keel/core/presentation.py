"""A record as one caller sees it: visible fields, ``expand`` and ``fields``.

The REST routes, auth responses and realtime events all present records
through :func:`present`, so a subscriber sees exactly what the same request to
the REST API would show.
"""

from __future__ import annotations

from typing import Any

from keel.core.app import App
from keel.core.collection import Collection
from keel.core.expand import expand_records
from keel.core.projection import Projection, parse_fields, project
from keel.core.record import Record
from keel.core.request import RequestInfo
from keel.core.visibility import records_json


def projection_of(info: RequestInfo) -> Projection | None:
    """The ``fields`` projection the request asks for, if any.

    Raises:
        BadRequestError: a malformed ``fields`` value.
    """
    text = info.query.get("fields", "")
    return parse_fields(text) if text else None


async def present(
    app: App, coll: Collection, record: Record, info: RequestInfo, projection: Projection | None
) -> Any:
    """One record as the caller may see it, expanded and projected."""
    item = (await records_json(app, coll, [record], info))[0]
    expand = info.query.get("expand", "")
    if expand:
        await expand_records(app, coll, [record], [item], expand, info)
    return project(item, projection) if projection is not None else item
