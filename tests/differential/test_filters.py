"""Differential suite for the filter and rule language: Keel against a real PocketBase.

One PocketBase (the ``pocketbase`` fixture of ``conftest.py``) and, per
engine, one in-process Keel App get the same schema and the same records
(``filter_cases.py``: explicit collection, field and record ids), through the
HTTP API as the superuser. Then several hundred list requests (filters with
every operator, relation and JSON paths, modifiers, date macros, sort, paging,
expand, fields) run on both, first with public rules and then under rule
expressions, anonymously and as the superuser.

For each request the suite compares the status (for a 4xx only its class; the
bodies are not compared), and for a 200 the ordered ids, ``page``,
``perPage``, ``totalItems`` and ``totalPages``; for expand and fields
requests the whole items, minus the server-chosen ``created``, ``updated``
and ``collectionId`` values. It prints ``filter differential: N/M queries
agree (<engine>)`` and fails on any disagreement that is not in
:data:`KNOWN_DIFFERENCES`, and on any known difference that now agrees.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from keel.core.actions.records import create_record
from keel.core.app import App
from keel.core.config import Config
from keel.core.request import Auth, RequestInfo
from keel.http.app import create_app
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.differential.conftest import SUPERUSER_EMAIL, SUPERUSER_PASSWORD, PocketBase
from tests.differential.filter_cases import COLLECTIONS, Query, phases, seed

pytestmark = [pytest.mark.differential, pytest.mark.asyncio(loop_scope="module")]

#: ``"<phase> <query key>"`` → why Keel answers differently, on purpose or not yet.
#: Each entry is a documented difference or a missing feature listed in
#: docs/compatibility.md; anything else that differs is a bug and fails.
KNOWN_DIFFERENCES: dict[str, str] = {}

#: Differences on one engine only, by engine.
KNOWN_ENGINE_DIFFERENCES: dict[str, dict[str, str]] = {
    "postgres": {
        # docs/compatibility.md: PostgreSQL's JSONB text form has spaces.
        "public anon authors?filter=profile = '[1,2,3]'&sort=id&perPage=100": (
            "JSONB text form `[1, 2, 3]` differs from SQLite's `[1,2,3]`"
        ),
    },
}


# -- servers ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> str:
    """The Keel storage engine; module-scoped so the data is seeded once per engine."""
    name: str = request.param
    return name


@dataclass
class Side:
    """One server: a client, and its superuser's headers."""

    name: str
    http: httpx.AsyncClient
    su: dict[str, str]

    async def check(self, method: str, url: str, body: dict[str, Any]) -> None:
        response = await self.http.request(method, url, json=body, headers=self.su)
        assert 200 == response.status_code, f"{self.name} {method} {url}: {response.text}"


async def _install(side: Side) -> None:
    """The schema and the seed records, through the HTTP API as the superuser."""
    for collection in COLLECTIONS:
        await side.check("POST", "/api/collections", collection)
    for name, body in seed().ordered():
        await side.check("POST", f"/api/collections/{name}/records", body)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pb(pocketbase: PocketBase) -> AsyncIterator[Side]:
    """The shared PocketBase, seeded once for the module."""
    async with httpx.AsyncClient(base_url=pocketbase.url, timeout=30.0) as http:
        side = Side("PocketBase", http, {"Authorization": pocketbase.token})
        await _install(side)
        yield side


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def keel(engine: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Side]:
    """An in-process Keel App on ``engine``, seeded once."""
    tmp: Path = tmp_path_factory.mktemp(f"keel-{engine}")
    url = f"sqlite:///{tmp / 'data.db'}" if engine == "sqlite" else await create_postgres_database()
    config = Config(
        data_dir=str(tmp),
        database_url=url,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )
    app = App(config)
    await app.start()
    try:
        coll = app.collection("_superusers")
        body = {
            "email": SUPERUSER_EMAIL,
            "password": SUPERUSER_PASSWORD,
            "passwordConfirm": SUPERUSER_PASSWORD,
            "verified": True,
        }
        await create_record(app, coll, body, RequestInfo(auth=Auth(collection=coll)))
        # A crash is a 500 to compare, not an exception that ends the run.
        transport = httpx.ASGITransport(app=create_app(app), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as http:
            login = await http.post(
                "/api/collections/_superusers/auth-with-password",
                json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD},
            )
            assert 200 == login.status_code, login.text
            side = Side(f"Keel ({engine})", http, {"Authorization": login.json()["token"]})
            await _install(side)
            yield side
    finally:
        await app.stop()
        if engine == "postgres":
            await drop_postgres_database(url)


# -- comparing ----------------------------------------------------------------------------

SERVER_CHOSEN = ("created", "updated", "collectionId")


def _masked(value: Any) -> Any:
    """``value`` with server-chosen values replaced by a marker, at any depth."""
    if isinstance(value, list):
        return [_masked(item) for item in value]
    if isinstance(value, dict):
        return {
            k: ("<server>" if k in SERVER_CHOSEN and isinstance(v, str) else _masked(v))
            for k, v in value.items()
        }
    return value


@dataclass(frozen=True)
class Outcome:
    """What one server answered to one query, reduced to what is compared."""

    status: int
    summary: dict[str, Any]
    text: str

    @classmethod
    def of(cls, response: httpx.Response, query: Query) -> Outcome:
        status = response.status_code
        if status != 200:
            klass = f"{status // 100}xx" if 400 <= status < 500 else status
            return cls(status, {"status": klass}, response.text[:300])
        body = response.json()
        summary: dict[str, Any] = {
            "status": 200,
            "ids": [item.get("id") for item in body.get("items", [])],
            **{k: body.get(k) for k in ("page", "perPage", "totalItems", "totalPages")},
        }
        if query.full:
            summary["items"] = _masked(body.get("items"))
        return cls(status, summary, "")

    def describe(self, other: Outcome | None = None) -> str:
        """The status and paging numbers, and the ids (only the differing ones when long)."""
        if self.status != 200:
            return f"{self.status} {self.text}"
        numbers = " ".join(
            f"{k}={self.summary[k]}" for k in ("page", "perPage", "totalItems", "totalPages")
        )
        ids: list[str] = self.summary["ids"]
        theirs = other.summary.get("ids") if other is not None else None
        if len(ids) <= 8 or not isinstance(theirs, list):
            shown = " ".join(map(str, ids))
        elif set(ids) == set(theirs):
            shown = f"{len(ids)} ids, same set, in order: {' '.join(map(str, ids))}"
        else:
            only = sorted(set(ids) - set(theirs))
            shown = f"{len(ids)} ids, {len(only)} only here: {' '.join(map(str, only))}"
        return f"200 {numbers} ids=[{shown}]"


@dataclass
class Result:
    key: str
    pb: Outcome
    keel: Outcome

    @property
    def agrees(self) -> bool:
        return self.pb.summary == self.keel.summary

    def describe(self) -> str:
        lines = [
            self.key,
            f"    PocketBase: {self.pb.describe(self.keel)}",
            f"    Keel:       {self.keel.describe(self.pb)}",
        ]
        pb_items, keel_items = self.pb.summary.get("items"), self.keel.summary.get("items")
        if pb_items != keel_items and isinstance(pb_items, list) and isinstance(keel_items, list):
            for pb_item, keel_item in zip(pb_items, keel_items, strict=False):
                if pb_item != keel_item:
                    lines.append(f"    first differing item, PocketBase: {_dump(pb_item)}")
                    lines.append(f"    first differing item, Keel:       {_dump(keel_item)}")
                    break
        return "\n".join(lines)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)[:600]


@dataclass
class Report:
    engine: str
    results: list[Result] = field(default_factory=list)
    #: same class, different code (not a disagreement; shown for information)
    codes: list[str] = field(default_factory=list)

    @property
    def answers(self) -> str:
        """How PocketBase answered, so the agreement figure can be read against it."""
        ok = sum(r.pb.status == 200 for r in self.results)
        full = sum("items" in r.pb.summary for r in self.results)
        return (
            f"PocketBase answered 200 to {ok} queries ({full} compared item by item) "
            f"and an error to {len(self.results) - ok}"
        )

    @property
    def line(self) -> str:
        agreeing = sum(r.agrees for r in self.results)
        return f"filter differential: {agreeing}/{len(self.results)} queries agree ({self.engine})"


REPORTS: dict[str, Report] = {}


@pytest.fixture(scope="module", autouse=True)
def summary(request: pytest.FixtureRequest) -> Iterator[None]:
    """At the end of the module, the agreement lines on the terminal (even without ``-s``)."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    for report in REPORTS.values():
        if reporter is not None:
            reporter.write("\n")
            reporter.write_line(report.line)


async def _run(side: Side, query: Query) -> httpx.Response:
    headers = side.su if query.su else {}
    url = f"/api/collections/{query.collection}/records"
    return await side.http.get(url, params=list(query.params), headers=headers)


async def _apply_rules(sides: list[Side], rules: dict[str, dict[str, str | None]]) -> None:
    for side in sides:
        for name, body in rules.items():
            await side.check("PATCH", f"/api/collections/{name}", body)


# -- the test -----------------------------------------------------------------------------


async def test_filters_agree(engine: str, pb: Side, keel: Side) -> None:
    """Every query answers like PocketBase, except the documented known differences."""
    report = REPORTS[engine] = Report(engine)
    seen: set[str] = set()
    try:
        for phase in phases():
            await _apply_rules([pb, keel], phase.rules)
            for query in phase.queries:
                key = f"{phase.name} {query.key}"
                if key in seen:
                    continue
                seen.add(key)
                pb_answer, keel_answer = await _run(pb, query), await _run(keel, query)
                result = Result(key, Outcome.of(pb_answer, query), Outcome.of(keel_answer, query))
                report.results.append(result)
                if result.agrees and pb_answer.status_code != keel_answer.status_code:
                    report.codes.append(
                        f"{key}: PocketBase {pb_answer.status_code}, Keel {keel_answer.status_code}"
                    )
    finally:
        await _apply_rules([pb, keel], phases()[0].rules)
    known = {**KNOWN_DIFFERENCES, **KNOWN_ENGINE_DIFFERENCES.get(engine, {})}
    unexpected = [r for r in report.results if not r.agrees and r.key not in known]
    stale = [r.key for r in report.results if r.agrees and r.key in known]
    print(f"\n{report.line}\n{report.answers}")
    for result in report.results:
        if not result.agrees:
            tag = "known" if result.key in known else "DIFFERS"
            print(f"[{tag}] {result.describe()}")
    for line in report.codes:
        print(f"[4xx code] {line}")
    message = "\n".join(r.describe() for r in unexpected)
    assert [] == stale, f"known differences that now agree (remove them): {stale}"
    assert [] == unexpected, f"{report.line}; unexpected differences:\n{message}"
