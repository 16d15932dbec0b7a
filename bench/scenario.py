"""The scenarios: what each row of the table sends, and to which path.

Every scenario is a wrk Lua script from ``bench/lua/`` plus a path; the
scripts that need ids or unique bodies read them from ``BENCH_*`` variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

RECORDS = "/api/collections/posts/records"
FILTER = "views>500 && published=true"
ID_COUNT = 1000


@dataclass(frozen=True)
class Scenario:
    """One row of the table.

    ``needs`` names a feature a system may not have yet (``filter``): such a
    scenario first sends one probe request, and a system that does not
    answer it with 200 shows ``n/a (filter not implemented: HTTP 400)``.
    """

    key: str
    label: str
    script: str
    path: str
    env: dict[str, str] = field(default_factory=dict)
    needs: str = ""
    is_list: bool = False


def _list(key: str, label: str, query: str, **kw: Any) -> Scenario:
    return Scenario(key, label, "get.lua", f"{RECORDS}?{query}", is_list=True, **kw)


_FILTERED = f"filter={quote(FILTER)}&sort=-views&perPage=20"

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "view", "view by id (1,000 ids)", "view.lua", RECORDS, {"BENCH_ID_COUNT": str(ID_COUNT)}
    ),
    _list("list_total", "list -views, perPage 20, total", "sort=-views&perPage=20"),
    _list("list_skip", "list -views, perPage 20, skipTotal", "sort=-views&perPage=20&skipTotal=1"),
    _list(
        "list_filter_total",
        f"list `{FILTER}` -views, total",
        _FILTERED,
        needs="filter",
    ),
    _list(
        "list_filter_skip",
        f"list `{FILTER}` -views, skipTotal",
        _FILTERED + "&skipTotal=1",
        needs="filter",
    ),
    Scenario(
        "list_rule",
        "list under `owner = @request.auth.id && owner.verified = true`, perPage 20",
        "get_auth.lua",
        "/api/collections/notes/records?sort=-views&perPage=20",
    ),
    Scenario("create", "create", "create.lua", RECORDS),
    Scenario(
        "update", "update (1,000 ids)", "update.lua", RECORDS, {"BENCH_ID_COUNT": str(ID_COUNT)}
    ),
    Scenario("delete", "delete (seeded pool, each id once)", "delete.lua", RECORDS),
    # Last: a slow password hash leaves a backlog of in-flight requests behind.
    Scenario(
        "auth",
        "auth-with-password (superuser)",
        "auth.lua",
        "/api/collections/_superusers/auth-with-password",
    ),
)
CEILING = Scenario(
    "ceiling", "Bare-HTTP ceiling (minimal Starlette JSON endpoint, uvicorn)", "get.lua", "/"
)
