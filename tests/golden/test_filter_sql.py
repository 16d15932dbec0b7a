"""Golden files: filter text → SQL and parameters, for each dialect.

Regenerate after an intended change with ``KEEL_UPDATE_GOLDEN=1 pytest tests/golden``
and review the diff like code.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.core.collection import Collection, collection_from_json
from keel.core.request import Auth, RequestInfo
from keel.core.resolver import RecordResolver
from keel.query.ast import OPERATORS, Comparison, Identifier, Literal, print_expr
from keel.query.dialect import DIALECTS
from keel.query.parser import parse
from keel.query.sql import compile_filter

GOLDEN = Path(__file__).with_name("filter_sql.json")
NOW = datetime(2024, 5, 17, 10, 30, 0, tzinfo=UTC)

FILTERS = [
    "views > 500 && published = true",
    "views > 500 || published = true && views = 0",
    "title ~ 'abc' || title !~ 'x%y'",
    "title ~ 'a_b'",
    "title = null",
    "title != ''",
    "'' = null",
    "status = 'draft'",
    "tags = '[\"a\"]'",
    "tags:each ?= 'a'",
    "tags:each = 'a'",
    "tags:length > 1",
    "author.name = 'ann'",
    "author.team.name ~ 'x'",
    "coauthors.name ?= 'bob'",
    "coauthors.name != 'bob'",
    "author.tags:each ?= 'a'",
    "meta.a.b = 1",
    "title:lower = 'alpha'",
    "created >= @todayStart && created <= @monthEnd",
    "@request.auth.id != '' && author = @request.auth.id",
    "@request.method = 'GET'",
    "views = '12' && views > 'abc'",
    "1 = 1",
    "coauthors.name ?= 'a' && coauthors.name ?= 'b'",
    "@collection.authors:x.name = 'ann' && @collection.authors:x.tags:each ?= 'a'",
    "strftime('%Y-%m', created) = '2024-05'",
    "geoDistance(views, views, 1.5, 2) < 100",
    "title ~ 10 && views:lower = 1 && meta ~ null",
]


def schema() -> dict[str, Collection]:
    teams, _ = collection_from_json(
        {"id": "pbc_teams", "name": "teams", "fields": [{"name": "name", "type": "text"}]}
    )
    authors, _ = collection_from_json(
        {
            "id": "pbc_authors",
            "name": "authors",
            "fields": [
                {"name": "name", "type": "text"},
                {"name": "team", "type": "relation", "collectionId": "pbc_teams", "maxSelect": 1},
                {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2},
            ],
        }
    )
    posts, _ = collection_from_json(
        {
            "id": "pbc_posts",
            "name": "posts",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "views", "type": "number"},
                {"name": "published", "type": "bool"},
                {"name": "status", "type": "select", "values": ["draft"], "maxSelect": 1},
                {"name": "tags", "type": "select", "values": ["a", "b"], "maxSelect": 2},
                {"name": "meta", "type": "json"},
                {
                    "name": "author",
                    "type": "relation",
                    "collectionId": "pbc_authors",
                    "maxSelect": 1,
                },
                {
                    "name": "coauthors",
                    "type": "relation",
                    "collectionId": "pbc_authors",
                    "maxSelect": 5,
                },
                {"name": "created", "type": "autodate", "onCreate": True},
            ],
        }
    )
    by_key = {c.id: c for c in (teams, authors, posts)}
    by_key.update({c.name: c for c in (teams, authors, posts)})
    return by_key


def compile_all() -> dict[str, Any]:
    collections = schema()
    posts = collections["posts"]
    out: dict[str, Any] = {}
    for text in FILTERS:
        entry = {}
        for name, dialect in sorted(DIALECTS.items()):
            resolver = RecordResolver(
                collections.get,
                posts,
                RequestInfo(auth=Auth()),
                dialect,
                allow_hidden=False,
                now=NOW,
            )
            compiled = compile_filter(parse(text), resolver, dialect)
            entry[name] = {"sql": compiled.sql, "params": list(compiled.params)}
        out[text] = entry
    return out


def test_filter_sql_matches_golden_file() -> None:
    """Compiled SQL and parameters for each dialect equal the reviewed golden file."""
    actual = compile_all()
    if os.environ.get("KEEL_UPDATE_GOLDEN") == "1":
        GOLDEN.write_bytes(
            orjson.dumps(actual, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
    expected = orjson.loads(GOLDEN.read_bytes())
    assert expected == orjson.loads(orjson.dumps(actual))


fields = st.sampled_from(
    [
        "title",
        "views",
        "published",
        "status",
        "tags",
        "tags:each",
        "author.name",
        "coauthors.name",
        "meta.k",
    ]
)
MARK = "\u2603"  # a character no generated SQL contains
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.text(max_size=20).map(lambda t: MARK + t),
)


@pytest.mark.parametrize("dialect_name", sorted(DIALECTS))
@given(field=fields, op=st.sampled_from(OPERATORS), value=values)
@settings(max_examples=200, deadline=None)
def test_compiled_sql_binds_every_value(dialect_name: str, field: str, op: str, value: Any) -> None:
    """No value ever appears in the SQL text: placeholders and parameters always pair up."""
    collections = schema()
    tree = Comparison(Identifier(field), op, Literal(value))
    dialect = DIALECTS[dialect_name]
    resolver = RecordResolver(
        collections.get, collections["pbc_posts"], RequestInfo(), dialect, allow_hidden=False
    )
    compiled = compile_filter(parse(print_expr(tree)), resolver, dialect)
    assert compiled.sql.count("?") == len(compiled.params)
    assert MARK not in compiled.sql
