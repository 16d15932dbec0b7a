"""Property tests: random record bodies against the create and update endpoints.

Hypothesis generates JSON bodies whose keys are field names, modifier forms
(``tags+``, ``+tags``, ``tags-``, ``n+``) and unknown keys, with values drawn
from arbitrary JSON, and raw garbage bodies (random bytes, truncated JSON,
non-object JSON, wrong content types, multipart with random parts). On both
engines the API must answer 200/400 (404 for an unknown record), never 5xx;
a 400 is PocketBase-shaped and changes nothing; a 200 round-trips through GET.

Driving hypothesis from an async test: the fixtures (the App, its database
connections, the httpx client) live on the test's event loop, and asyncpg
connections only work on the loop that opened them, so every request must run
there. A ``@given`` function is synchronous and cannot await, and running it
on the loop thread would deadlock. So each test defines its ``@given`` check
inside, runs it on a worker thread (``asyncio.to_thread``, which keeps the
loop free), and the check submits each request coroutine back to the loop with
``asyncio.run_coroutine_threadsafe`` and waits for the result (:class:`Portal`).
The fixtures are built once per test and shared by its examples, so each
example puts the state back (a create deletes what it made; an update first
recreates the base record): every example starts from the same state and
hypothesis can replay and shrink a failure. ``derandomize=True`` and
``database=None`` make every run generate the same examples, so a failure
reproduces on every machine and CI is deterministic; edge bodies that random
generation rarely reaches run first as explicit ``@example``s.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

T = TypeVar("T")

#: Upper bound on one request, so a hung server fails the test instead of hanging it.
REQUEST_TIMEOUT = 120.0

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KINDS_ID = "pbc_2000000001"
KIND_IDS = ["kind00000000001", "kind00000000002", "kind00000000003", "kind00000000004"]
BASE_ID = "base00000000001"
MISSING_ID = "missing00000001"
RECORDS = "/api/collections/things/records"
BASE: dict[str, Any] = {
    "id": BASE_ID,
    "title": "Base thing",
    "slug": "base",
    "n": 10,
    "tags": ["a", "b"],
    "kinds": KIND_IDS[:2],
    "kind": KIND_IDS[0],
    "meta": {"k": [1, 2]},
}

KINDS: dict[str, Any] = {
    "id": KINDS_ID,
    "name": "kinds",
    "fields": [{"name": "label", "type": "text"}],
}

THINGS: dict[str, Any] = {
    "name": "things",
    "fields": [
        {
            "name": "title",
            "type": "text",
            "required": True,
            "min": 2,
            "max": 50,
            "pattern": "^[A-Za-z0-9 ]+$",
        },
        {"name": "slug", "type": "text"},
        {"name": "n", "type": "number", "min": -1000, "max": 1000},
        {"name": "count", "type": "number", "onlyInt": True},
        {"name": "score", "type": "number"},
        {"name": "flag", "type": "bool"},
        {"name": "email", "type": "email"},
        {"name": "site", "type": "url"},
        {"name": "body", "type": "editor"},
        {"name": "when", "type": "date"},
        {"name": "created", "type": "autodate", "onCreate": True, "onUpdate": False},
        {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
        {"name": "status", "type": "select", "values": ["draft", "published", "archived"]},
        {"name": "tags", "type": "select", "values": ["a", "b", "c", "d", "e"], "maxSelect": 3},
        {"name": "meta", "type": "json"},
        {"name": "kind", "type": "relation", "collectionId": KINDS_ID, "maxSelect": 1},
        {"name": "kinds", "type": "relation", "collectionId": KINDS_ID, "maxSelect": 3},
    ],
    "indexes": ["CREATE UNIQUE INDEX idx_things_slug ON things (slug)"],
}

FIELD_NAMES = [f["name"] for f in THINGS["fields"]]
#: The JSON type every field must show in a record, by field name.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "title": (str,),
    "slug": (str,),
    "n": (int, float),
    "count": (int,),
    "score": (int, float),
    "flag": (bool,),
    "email": (str,),
    "site": (str,),
    "body": (str,),
    "when": (str,),
    "created": (str,),
    "updated": (str,),
    "status": (str,),
    "tags": (list,),
    "meta": (type(None), bool, int, float, str, list, dict),
    "kind": (str,),
    "kinds": (list,),
}
RECORD_KEYS = {"collectionId", "collectionName", "id", *FIELD_NAMES}
DATE_FIELDS = ("when", "created", "updated")
DATE_TEXT = re.compile(r"\A\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z\Z")


# -- running hypothesis against the test's event loop ---------------------------


class Portal:
    """Runs coroutines on the loop of the test that created it, from another thread."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the test's loop and wait for its result (worker thread only)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(REQUEST_TIMEOUT)

    async def drive(self, check: Callable[[], None]) -> None:
        """Run a ``@given`` check on a worker thread while the loop serves its requests."""
        await asyncio.to_thread(check)


# -- strategies ---------------------------------------------------------------------

SPECIAL_STRINGS = [
    "",
    " ",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "12",
    " 5 ",
    "1_000",
    "0x10",
    "true",
    "TRUE",
    "yes",
    "on",
    "0",
    "draft",
    "a",
    "b",
    "zz",
    "2024-01-02",
    "2024-01-02T03:04:05Z",
    "2024-01-02 03:04:05.678Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "not a date",
    "user@example.com",
    "https://example.com/p?q=1",
    "http://[::1",
    "\x00",
    "nul\x00inside",
    "é😀\u202e\ufeff",
    "{bad",
    '{"x": 1}',
    "[1, 2]",
    *KIND_IDS,
    MISSING_ID,
]

UNKNOWN_KEYS = [
    "nope",
    "",
    "+",
    "-",
    "++",
    "+tags-",
    "TITLE",
    "Tags+",
    "id+",
    "created",
    "updated+",
    "collectionId",
    "collectionName",
    "expand",
    "@jsonPayload",
]

leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([2**53, 2**53 + 1, -(2**53), 2**63, 2**64 - 1, 10**30])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e308, -1e308, 5e-324, 0.1, -0.0, 1e19, 1.5])
    | st.text(max_size=20)
    | st.sampled_from(SPECIAL_STRINGS)
    | st.integers(5001, 6000).map(lambda size: "x" * size)
)
json_values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)

_OFFSETS = [UTC, timezone(timedelta(hours=1)), timezone(-timedelta(hours=5, minutes=30))]


def _date_text(moment: datetime, sep: str) -> str:
    return moment.isoformat(sep=sep)


dates = st.builds(
    _date_text,
    st.datetimes(
        min_value=datetime(1, 1, 1),
        max_value=datetime(9999, 12, 31, 23, 59, 59),
        timezones=st.sampled_from([None, *_OFFSETS]),
    ),
    st.sampled_from(["T", " "]),
)

#: Plausible values per field, so a good share of bodies is accepted.
plausible: dict[str, st.SearchStrategy[Any]] = {
    "id": st.sampled_from(["", "abcdefghij12345", "short", "UPPERCASE123456", "with space 1234"])
    | st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=15, max_size=15),
    "title": st.from_regex(r"\A[A-Za-z0-9 ]{2,50}\Z"),
    "slug": st.text(min_size=1, max_size=40) | st.text(min_size=2000, max_size=5000),
    "n": st.integers(-1000, 1000) | st.floats(-1000, 1000),
    "count": st.integers(-(2**53), 2**53),
    "score": st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False),
    "flag": st.booleans() | st.sampled_from(["true", "false", "1", "0", "yes", "on", "", 0, 1]),
    "email": st.emails() | st.sampled_from(["user@example.com", "no-at-sign", " a@b.co "]),
    "site": st.sampled_from(["https://example.com", "ftp://x.org/a b", "example.com", ""]),
    "body": st.text(max_size=200),
    "when": dates | st.sampled_from(["", "2024-01-02", "2024-13-01", "yesterday"]),
    "created": dates,
    "updated": dates,
    "status": st.sampled_from(["draft", "published", "archived", "", "nope"]),
    "tags": st.lists(st.sampled_from(["a", "b", "c", "d", "e", "zz"]), max_size=4),
    "meta": json_values,
    "kind": st.sampled_from([*KIND_IDS, "", MISSING_ID]),
    "kinds": st.lists(st.sampled_from([*KIND_IDS, MISSING_ID]), max_size=4),
}


def _modifier_keys(name: str) -> list[str]:
    return [name, f"{name}+", f"+{name}", f"{name}-"]


_field_keys = st.sampled_from([*FIELD_NAMES, "id"]).flatmap(
    lambda name: st.tuples(st.sampled_from(_modifier_keys(name)), st.just(name))
)


def _pair(key_and_field: tuple[str, str]) -> st.SearchStrategy[tuple[str, Any]]:
    key, name = key_and_field
    return st.tuples(st.just(key), plausible[name] | json_values)


field_pairs = _field_keys.flatmap(_pair)
unknown_pairs = st.tuples(st.sampled_from(UNKNOWN_KEYS) | st.text(max_size=8), json_values)
random_bodies = st.lists(field_pairs | unknown_pairs, max_size=8).map(dict)
valid_bodies = st.fixed_dictionaries(
    {"title": plausible["title"], "slug": st.uuids().map(str)},
    optional={
        name: plausible[name]
        for name in ("n", "count", "flag", "email", "body", "when", "status", "tags", "meta")
    }
    | {"kind": st.sampled_from(KIND_IDS), "kinds": st.lists(st.sampled_from(KIND_IDS))},
)
modifier_bodies = st.fixed_dictionaries(
    {},
    optional={
        "tags+": st.sampled_from(["a", "b", ["c", "d"], [], "zz"]),
        "+tags": st.sampled_from(["e", ["a"], None]),
        "tags-": st.sampled_from(["a", ["b", "zz"], ""]),
        "n+": st.integers(-600, 600) | st.sampled_from(["2", "x", None, 1.5]),
        "n-": st.integers(-600, 600),
        "kinds+": st.sampled_from([KIND_IDS[0], [KIND_IDS[1], MISSING_ID]]),
        "kinds-": st.sampled_from(KIND_IDS),
        "title+": st.just("more"),
    },
)
bodies = st.one_of(
    valid_bodies,
    st.tuples(valid_bodies, random_bodies).map(lambda pair: {**pair[0], **pair[1]}),
    st.tuples(valid_bodies, modifier_bodies).map(lambda pair: {**pair[0], **pair[1]}),
    random_bodies,
)
update_bodies = st.one_of(modifier_bodies, random_bodies, valid_bodies)
record_ids = st.sampled_from([BASE_ID, BASE_ID, BASE_ID, MISSING_ID, "x", "BASE00000000001"])

_CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=XyZ",
    "",
]


def _truncate(data: tuple[dict[str, Any], float]) -> bytes:
    body, cut = data
    raw = json.dumps(body).encode()
    return raw[: int(len(raw) * cut)]


def _multipart(data: tuple[list[tuple[str, str, bool]], bool, str]) -> tuple[bytes, str]:
    parts, truncated, boundary = data
    chunks: list[bytes] = []
    for name, value, as_file in parts:
        disposition = f'form-data; name="{name}"'
        if as_file:
            disposition += '; filename="f.txt"'
        chunks.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n".encode()
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    raw = b"".join(chunks)
    if truncated:
        raw = raw[: len(raw) // 2]
    return raw, f"multipart/form-data; boundary={boundary}"


_form_names = st.sampled_from([*FIELD_NAMES, "tags+", "+tags", "n-", "@jsonPayload", "nope"])
_form_values = st.text(max_size=30) | st.sampled_from(
    ["on", "a", "12", '{"title": "ok title"}', "[1]", "{bad", *KIND_IDS]
)
multipart_bodies = st.tuples(
    st.lists(st.tuples(_form_names, _form_values, st.booleans()), max_size=6),
    st.booleans(),
    st.sampled_from(["XyZ", "----b0undary", "a"]),
).map(_multipart)

json_non_objects = st.one_of(
    st.lists(json_values, max_size=3),
    st.text(max_size=10),
    st.integers(),
    st.floats(allow_nan=False),
    st.none(),
    st.booleans(),
).map(lambda value: json.dumps(value).encode())

#: ``(body bytes, content type)`` pairs that are not a well-formed record body.
garbage = st.one_of(
    st.tuples(st.binary(max_size=200), st.sampled_from(_CONTENT_TYPES)),
    st.tuples(
        st.tuples(bodies, st.floats(0, 0.99)).map(_truncate), st.sampled_from(_CONTENT_TYPES)
    ),
    st.tuples(json_non_objects, st.sampled_from(_CONTENT_TYPES)),
    st.tuples(
        st.sampled_from(
            [
                ("[", 5000),
                ('{"a":', 3000),
                ("\ufeff{}", 1),
                ("{}{}", 1),
                ("\x00", 1),
                # Non-finite numbers, which JSON cannot carry (orjson refuses them).
                ('{"title": "ok", "score": NaN}', 1),
                ('{"title": "ok", "score": Infinity}', 1),
                ('{"title": "ok", "n": 1e400}', 1),
                ('{"title": "ok", "meta": [-1e999]}', 1),
            ]
        ).map(lambda unit: (unit[0] * unit[1]).encode()),
        st.sampled_from(_CONTENT_TYPES),
    ),
    st.tuples(
        st.dictionaries(_form_names, _form_values, max_size=5).map(
            lambda form: str(httpx.QueryParams(form)).encode()
        ),
        st.sampled_from(["application/x-www-form-urlencoded", "application/json"]),
    ),
    st.tuples(st.text(max_size=60).map(str.encode), st.just("application/x-www-form-urlencoded")),
    multipart_bodies,
    st.tuples(st.binary(max_size=200), st.just("multipart/form-data; boundary=----b0undary")),
)


#: An incompressible text of 3000 UTF-8 bytes (over PostgreSQL's 2704-byte btree row limit).
LONG_TEXT = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(1000))

#: Bodies that always run first: edges that random generation reaches only rarely.
EDGE_UPDATE_BODIES: list[dict[str, Any]] = [
    {"when": "0001-01-01T00:00:00+01:00"},
    {"when": "9999-12-31T23:59:59-01:00"},
    {"when": "0999-01-01"},
    {"body": "nul\x00inside"},
    {"meta": {"key": "nul\x00inside"}},
    {"slug": LONG_TEXT},
    {"score": 1e308, "score+": 1e308},
    {"count": 2**53},
    {"count+": 2**53, "count": 2**53},
    {"n+": 1.5, "n": 1},
    {"tags+": ["c", "d"]},
    {"kinds-": KIND_IDS[0], "+kinds": [KIND_IDS[3]]},
]
EDGE_CREATE_BODIES: list[dict[str, Any]] = [
    {"title": "Edge case", "slug": f"edge{i}", **body} for i, body in enumerate(EDGE_UPDATE_BODIES)
]


def with_examples(
    name: str, values: list[Any], **fixed: Any
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Add one hypothesis ``@example`` per value, passed as argument ``name``."""

    def decorate(check: Callable[..., None]) -> Callable[..., None]:
        for value in reversed(values):
            check = example(**fixed, **{name: value})(check)
        return check

    return decorate


# -- checks ---------------------------------------------------------------------


def assert_error_map(data: Any) -> None:
    """``data`` maps keys to ``{code, message[, params]}`` objects or to nested such maps."""
    assert isinstance(data, dict), data
    for value in data.values():
        assert isinstance(value, dict), data
        if isinstance(value.get("code"), str):
            assert set(value) in ({"code", "message"}, {"code", "message", "params"}), value
            assert isinstance(value["message"], str), value
            assert isinstance(value.get("params", {}), dict), value
        else:
            assert value, data
            assert_error_map(value)


def assert_error_body(status: int, response: httpx.Response) -> None:
    """A PocketBase error body: exactly status/message/data, with per-field errors."""
    payload = response.json()
    assert {"status", "message", "data"} == set(payload), payload
    assert status == payload["status"]
    assert isinstance(payload["message"], str)
    assert_error_map(payload["data"])


def assert_record_shape(record: dict[str, Any]) -> None:
    """Every field present, with its JSON type; dates in PocketBase's fixed-width form."""
    assert RECORD_KEYS == set(record), record
    for name, kinds in FIELD_TYPES.items():
        value = record[name]
        assert isinstance(value, kinds), (name, value)
        if kinds == (int, float) or kinds == (int,):
            assert not isinstance(value, bool), (name, value)
    for name in DATE_FIELDS:
        assert record[name] == "" or DATE_TEXT.match(record[name]), (name, record[name])


def json_value(value: Any) -> Any:
    """A JSON value in a form where equal means the same JSON to a client.

    Numbers compare as the IEEE doubles JSON clients read them into, so
    ``5``/``5.0`` and ``5.550838035603019e16``/``55508380356030190`` (how
    PostgreSQL's JSONB prints that double) are equal; integers that are exact
    in both answers compare exactly. A number never equals a boolean, unlike
    with Python's ``==``.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, int):
        return ("number", value if abs(value) <= 2**53 else float(value))
    if isinstance(value, float):
        return ("number", int(value) if value.is_integer() and abs(value) <= 2**53 else value)
    if isinstance(value, list):
        return ("array", [json_value(item) for item in value])
    return ("object", {key: json_value(item) for key, item in value.items()})


async def count_records(client: httpx.AsyncClient, su: dict[str, str]) -> int:
    response = await client.get(RECORDS, params={"perPage": 1}, headers=su)
    assert 200 == response.status_code, response.text
    total: int = response.json()["totalItems"]
    return total


# -- fixtures -------------------------------------------------------------------


@pytest.fixture
async def things(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """The ``kinds`` and ``things`` collections, a few kinds and the base thing."""
    for schema in (KINDS, THINGS):
        response = await client.post("/api/collections", json=schema, headers=su)
        assert 200 == response.status_code, response.text
    for kind_id in KIND_IDS:
        response = await client.post(
            "/api/collections/kinds/records", json={"id": kind_id, "label": kind_id}, headers=su
        )
        assert 200 == response.status_code, response.text
    await reset_base(client, su)


async def reset_base(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """(Re)create the base record, so each update example starts from the same state."""
    response = await client.delete(f"{RECORDS}/{BASE_ID}", headers=su)
    assert response.status_code in (204, 404), response.text
    response = await client.post(RECORDS, json=BASE, headers=su)
    assert 200 == response.status_code, response.text


# -- properties -----------------------------------------------------------------


async def check_create(
    client: httpx.AsyncClient, su: dict[str, str], send: Callable[[], Any]
) -> None:
    """One create: a 200 that round-trips, or a 400 that leaves the count unchanged."""
    before = await count_records(client, su)
    response: httpx.Response = await send()
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert_error_body(400, response)
        assert before == await count_records(client, su)
        return
    created = response.json()
    try:
        assert_record_shape(created)
        fetched = await client.get(f"{RECORDS}/{created['id']}", headers=su)
        assert 200 == fetched.status_code, fetched.text
        assert_record_shape(fetched.json())
        assert json_value(created) == json_value(fetched.json())
        assert before + 1 == await count_records(client, su)
    finally:
        # Every example starts from the same state, so hypothesis can replay a failure.
        deleted = await client.delete(f"{RECORDS}/{created['id']}", headers=su)
        assert 204 == deleted.status_code, deleted.text


async def check_update(
    client: httpx.AsyncClient, su: dict[str, str], record_id: str, send: Callable[[], Any]
) -> None:
    """One update: a 200 that round-trips, or a 400/404 that leaves the record unchanged."""
    await reset_base(client, su)
    url = f"{RECORDS}/{record_id}"
    before = await client.get(url, headers=su)
    response: httpx.Response = await send()
    assert response.status_code in (200, 400, 404), response.text
    after = await client.get(url, headers=su)
    if response.status_code != 200:
        assert_error_body(response.status_code, response)
        assert before.status_code == after.status_code
        assert before.content == after.content
        return
    updated = response.json()
    assert_record_shape(updated)
    assert_record_shape(after.json())
    assert record_id == updated["id"]
    assert json_value(updated) == json_value(after.json())


@pytest.mark.slow
async def test_create_with_random_json_body(
    client: httpx.AsyncClient, su: dict[str, str], things: None
) -> None:
    """A random JSON create body gets 200 (round-trips) or a clean 400, never 5xx."""
    portal = Portal()

    @SETTINGS
    @given(body=bodies)
    @with_examples("body", EDGE_CREATE_BODIES)
    def check(body: dict[str, Any]) -> None:
        portal.call(check_create(client, su, lambda: client.post(RECORDS, json=body, headers=su)))

    await portal.drive(check)


@pytest.mark.slow
async def test_update_with_random_json_body(
    client: httpx.AsyncClient, su: dict[str, str], things: None
) -> None:
    """A random JSON update body gets 200/400/404, never 5xx; a failure changes nothing."""
    portal = Portal()

    @SETTINGS
    @given(record_id=record_ids, body=update_bodies)
    @with_examples("body", EDGE_UPDATE_BODIES, record_id=BASE_ID)
    def check(record_id: str, body: dict[str, Any]) -> None:
        url = f"{RECORDS}/{record_id}"
        portal.call(
            check_update(client, su, record_id, lambda: client.patch(url, json=body, headers=su))
        )

    await portal.drive(check)


@pytest.mark.slow
async def test_create_with_garbage_body(
    client: httpx.AsyncClient, su: dict[str, str], things: None
) -> None:
    """Malformed bytes, non-object JSON and odd forms sent to create never get a 5xx."""
    portal = Portal()

    @SETTINGS
    @given(raw=garbage)
    def check(raw: tuple[bytes, str]) -> None:
        content, ctype = raw
        headers = {**su, "Content-Type": ctype} if ctype else su

        def send() -> Any:
            return client.post(RECORDS, content=content, headers=headers)

        portal.call(check_create(client, su, send))

    await portal.drive(check)


@pytest.mark.slow
async def test_update_with_garbage_body(
    client: httpx.AsyncClient, su: dict[str, str], things: None
) -> None:
    """Malformed bytes, non-object JSON and odd forms sent to update never get a 5xx."""
    portal = Portal()

    @SETTINGS
    @given(raw=garbage)
    def check(raw: tuple[bytes, str]) -> None:
        content, ctype = raw
        headers = {**su, "Content-Type": ctype} if ctype else su
        url = f"{RECORDS}/{BASE_ID}"

        def send() -> Any:
            return client.patch(url, content=content, headers=headers)

        portal.call(check_update(client, su, BASE_ID, send))

    await portal.drive(check)
