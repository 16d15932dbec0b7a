"""List parameters: ``page``, ``perPage``, ``sort`` and ``skipTotal``.

Parsing follows PocketBase: ``perPage`` defaults to 30 and is capped at 1000,
values below 1 fall back to the defaults, and ``skipTotal`` makes
``totalItems``/``totalPages`` ``-1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keel.core.errors import BadRequestError

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 1000
MAX_PAGE = 2**31


@dataclass(frozen=True, slots=True)
class ListParams:
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    sort: str = ""
    skip_total: bool = False
    filter: str = ""


def _positive(raw: str | None, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw) if len(raw) <= 20 else MAX_PAGE + 1
    except ValueError:
        raise BadRequestError(f"Invalid {name} parameter, expected an integer.") from None
    return value if value > 0 else default


def parse_list_params(query: dict[str, str]) -> ListParams:
    """Read the list parameters from a query string mapping.

    Raises:
        BadRequestError: ``page`` or ``perPage`` is not an integer.
    """
    page = _positive(query.get("page"), 1, "page")
    if page > MAX_PAGE:
        raise BadRequestError(f"Invalid page parameter, the maximum is {MAX_PAGE}.")
    per_page = min(_positive(query.get("perPage"), DEFAULT_PER_PAGE, "perPage"), MAX_PER_PAGE)
    skip = query.get("skipTotal", "").lower() in {"1", "true", "t", "yes"}
    return ListParams(
        page=page,
        per_page=per_page,
        sort=query.get("sort", ""),
        skip_total=skip,
        filter=query.get("filter", ""),
    )


def page_json(params: ListParams, items: list[dict[str, Any]], total: int | None) -> dict[str, Any]:
    """PocketBase's list envelope."""
    if total is None:
        total_items = total_pages = -1
    else:
        total_items = total
        total_pages = (total + params.per_page - 1) // params.per_page
    return {
        "page": params.page,
        "perPage": params.per_page,
        "totalItems": total_items,
        "totalPages": total_pages,
        "items": items,
    }
