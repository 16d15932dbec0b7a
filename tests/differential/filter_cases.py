"""Schema, seed data and queries for the filter differential suite (``test_filters.py``).

Everything here is deterministic (a fixed random seed) and plain data, so both
servers receive byte-identical requests: the same collection and field ids, the
same record ids, the same values in the same insertion order, the same queries.

The queries are generated from templates (field by operator by value) and topped
up with hand-written edge cases. Each query runs in a *phase*: a set of list
and view rules applied to the three collections before its queries run.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

SEED = 20240611
TEAMS_ID = "pbc_3100000001"
AUTHORS_ID = "pbc_3100000002"
POSTS_ID = "pbc_3100000003"

# -- schema ---------------------------------------------------------------------------


def _collection(cid: str, name: str, *fields: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    """A public collection whose field ids are ``<collection>_<field>``."""
    built = [
        {"id": f"{name}_{fname}", "name": fname, "type": kind, **opts}
        for fname, kind, opts in fields
    ]
    # Listed explicitly: Keel adds autodate fields to a collection created without
    # them (docs/compatibility.md), PocketBase does not, and records must match.
    for fname, on_update in (("created", False), ("updated", True)):
        built.append(
            {
                "id": f"{name}_{fname}",
                "name": fname,
                "type": "autodate",
                "onCreate": True,
                "onUpdate": on_update,
            }
        )
    return {"id": cid, "name": name, "listRule": "", "viewRule": "", "fields": built}


def _relation(target: str, max_select: int) -> dict[str, Any]:
    return {"collectionId": target, "maxSelect": max_select}


def _select(values: list[str], max_select: int) -> dict[str, Any]:
    return {"values": values, "maxSelect": max_select}


COLLECTIONS: list[dict[str, Any]] = [
    _collection(TEAMS_ID, "teams", ("name", "text", {}), ("rank", "number", {})),
    _collection(
        AUTHORS_ID,
        "authors",
        ("name", "text", {}),
        ("age", "number", {}),
        ("active", "bool", {}),
        ("team", "relation", _relation(TEAMS_ID, 1)),
        ("tags", "select", _select(["a", "b", "c"], 3)),
        ("profile", "json", {}),
        ("born", "date", {}),
        ("email", "email", {}),
        ("secret", "text", {"hidden": True}),
    ),
    _collection(
        POSTS_ID,
        "posts",
        ("title", "text", {}),
        ("body", "editor", {}),
        ("views", "number", {}),
        ("published", "bool", {}),
        ("author", "relation", _relation(AUTHORS_ID, 1)),
        ("coauthors", "relation", _relation(AUTHORS_ID, 5)),
        ("status", "select", _select(["draft", "published", "archived"], 1)),
        ("labels", "select", _select(["x", "y", "z"], 3)),
        ("meta", "json", {}),
    ),
]

# -- seed data --------------------------------------------------------------------------

TEAM_NAMES = [
    *["Red", "Blue", "red", "Grün", "東京", "50% off", "snake_case", "O'Brien", 'say "hi"', ""],
    *["back\\slash", "Red", "Green", "ÜBER"],
]
AUTHOR_NAMES = [
    *["ann", "bob", "cyd", "Ann", "Zoë", "Ünal", "d'Arcy", 'the "Doc"', "100%", "a_b", "ab"],
    *["", "bob", "Émile", "李", "x%y"],
]
TITLES = [
    *["Hello World", "hello world", "Ünïcødé", "日本語", "emoji 🎉", "100% pure", "50%_off"],
    *["snake_case", "a_b", "aXb", "O'Brien", 'say "hi"', "", "back\\slash", "Alpha", "alpha"],
    *["Beta", "Gamma 100", "10", "9", "true", "null"],
]
BODIES = [
    "",
    "<p>Hello <b>world</b></p>",
    "<p>A long body with <em>emphasis</em> and more words than an excerpt shows.</p>",
    "<p>100% &amp; more</p>",
    "<h1>Title</h1><p>text_with_underscore</p>",
    "plain text",
]
JSON_VALUES: list[Any] = [
    None,  # stored as JSON null
    {"a": {"b": 1}},
    {"a": {"b": 2}, "c": "x"},
    {"a": {"b": "1"}},
    {"a": {"b": None}},
    {"a": {"b": 2.5, "list": [1, 2, 3]}},
    {"a": "flat"},
    {"a": {"b": "hello"}},
    {},
    [1, 2, 3],
    "text",
    42,
    True,
    {"list": [{"k": "v"}, 3]},
]
MISSING = object()  # the key is left out of the body
RANKS = [0, 1, 2, 3, 3, 5, 5, 10, -1, 2.5]


def _id(prefix: str, number: int) -> str:
    return f"{prefix}{number:013d}"


def _json(rng: random.Random) -> Any:
    return MISSING if rng.random() < 0.15 else rng.choice(JSON_VALUES)


def _subset(rng: random.Random, values: list[str]) -> list[str]:
    chosen = [v for v in values if rng.random() < 0.45]
    rng.shuffle(chosen)
    return chosen


def _date(rng: random.Random) -> str | object:
    roll = rng.random()
    if roll < 0.15:
        return MISSING
    if roll < 0.25:
        return f"{rng.randint(2090, 2099)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} 12:00:00.000Z"
    day = f"{rng.randint(1950, 2010)}-{rng.randint(1, 12):02d}-{rng.randint(10, 28)}"
    return f"{day} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00.000Z"


@dataclass(frozen=True)
class Seed:
    """The records to create, per collection, in insertion order."""

    teams: list[dict[str, Any]]
    authors: list[dict[str, Any]]
    posts: list[dict[str, Any]]

    def ordered(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for name in ("teams", "authors", "posts"):
            for body in getattr(self, name):
                yield name, body


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not MISSING}


def seed() -> Seed:
    """About 30 records per collection, with ties, empties, nulls and odd strings."""
    rng = random.Random(SEED)
    team_ids = [_id("tm", n) for n in range(1, 31)]
    teams = [
        {"id": tid, "name": TEAM_NAMES[n % len(TEAM_NAMES)], "rank": rng.choice(RANKS)}
        for n, tid in enumerate(team_ids)
    ]
    author_ids = [_id("au", n) for n in range(1, 31)]
    authors = []
    for n, aid in enumerate(author_ids):
        name = AUTHOR_NAMES[n % len(AUTHOR_NAMES)]
        authors.append(
            _clean(
                {
                    "id": aid,
                    "name": name,
                    "age": rng.choice([0, 18, 25, 25, 30, 41, 41, 67, 99]),
                    "active": rng.random() < 0.6,
                    "team": rng.choice(team_ids) if rng.random() < 0.8 else MISSING,
                    "tags": _subset(rng, ["a", "b", "c"]),
                    "profile": _json(rng),
                    "born": _date(rng),
                    "email": f"user{n}@example.com" if rng.random() < 0.7 else MISSING,
                    "secret": f"s{n % 4}",
                }
            )
        )
    post_ids = [_id("po", n) for n in range(1, 35)]
    posts = []
    for n, pid in enumerate(post_ids):
        coauthors = rng.sample(author_ids, rng.choice([0, 0, 1, 1, 2, 3, 5]))
        posts.append(
            _clean(
                {
                    "id": pid,
                    "title": TITLES[n % len(TITLES)],
                    "body": rng.choice(BODIES),
                    "views": rng.choice([0, 0, 1, 5, 10, 10, 11, 42, 99, 100, 2.5, -3]),
                    "published": rng.random() < 0.55,
                    "author": rng.choice(author_ids) if rng.random() < 0.8 else MISSING,
                    "coauthors": coauthors,
                    "status": rng.choice(["draft", "published", "archived", MISSING]),
                    "labels": _subset(rng, ["x", "y", "z"]),
                    "meta": _json(rng),
                }
            )
        )
    # Insertion order differs from id order, so @rowid sorts mean something.
    for rows in (teams, authors, posts):
        rng.shuffle(rows)
    return Seed(teams, authors, posts)


# -- queries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One list request: the collection, its query string, and who asks."""

    collection: str
    params: tuple[tuple[str, str], ...]
    su: bool = False
    #: compare the whole items (minus server-chosen values), not just ids
    full: bool = False

    @property
    def key(self) -> str:
        who = "su" if self.su else "anon"
        query = "&".join(f"{k}={v}" for k, v in self.params)
        return f"{who} {self.collection}?{query}"


@dataclass(frozen=True)
class Phase:
    """Rules set on every collection (``listRule``/``viewRule``) and the queries under them."""

    name: str
    rules: dict[str, dict[str, str | None]]
    queries: list[Query] = field(default_factory=list)


def q(
    collection: str,
    filter: str | None = None,
    sort: str = "id",
    *,
    su: bool = False,
    full: bool = False,
    per_page: str | None = "100",
    **extra: str,
) -> Query:
    params: list[tuple[str, str]] = []
    if filter is not None:
        params.append(("filter", filter))
    params.append(("sort", sort))
    if per_page is not None:
        params.append(("perPage", per_page))
    params.extend(extra.items())
    return Query(collection, tuple(params), su=su, full=full)


def _matrix(
    collection: str, fields: list[str], ops: list[str], values: list[str]
) -> Iterator[Query]:
    for name, op, value in itertools.product(fields, ops, values):
        yield q(collection, f"{name} {op} {value}")


EQ = ["=", "!="]
CMP = ["=", "!=", ">", ">=", "<", "<="]
LIKE = ["~", "!~"]
ANY = ["?=", "?!=", "?>", "?>=", "?<", "?<=", "?~", "?!~"]


def generated() -> list[Query]:
    """Every field by operator by value, over posts and authors."""
    out: list[Query] = []
    out += _matrix("posts", ["title"], [*CMP, *LIKE], ["'alpha'", "''", "null", "'10'", "10"])
    out += _matrix(
        "posts",
        ["views"],
        CMP,
        ["0", "10", "10.0", "'10'", "2.5", "-3", "null", "''", "true", "'abc'"],
    )
    out += _matrix("posts", ["published"], EQ, ["true", "false", "1", "0", "'true'", "null", "''"])
    out += _matrix("posts", ["status"], [*EQ, *LIKE], ["'draft'", "''", "null", "'PUB'"])
    out += _matrix("posts", ["body"], [*EQ, *LIKE], ["''", "'world'", "'<p>'", "'100%'"])
    out += _matrix(
        "posts", ["author"], [*EQ, "~"], ["''", "null", "'au0000000000001'", "'au00000000000'"]
    )
    out += _matrix("posts", ["labels:each", "coauthors.name"], [*CMP, *LIKE, *ANY], ["'x'", "''"])
    out += _matrix("posts", ["labels"], [*EQ, "~", "?=", "?~"], ["'x'", "'[]'", "''", "null"])
    out += _matrix("posts", ["labels:length", "coauthors:length"], CMP[:5], ["0", "1", "2"])
    out += _matrix("posts", ["coauthors.name"], ["=", "?=", "~", "?~", "!=", "?!="], ["'ann'"])
    out += _matrix("posts", ["coauthors.team.rank"], ["=", ">", "?>", "<=", "?<="], ["3", "0"])
    out += _matrix("posts", ["author.name"], [*EQ, *LIKE], ["'bob'", "''", "'ANN'"])
    out += _matrix("posts", ["author.team.name"], [*EQ, "~"], ["'Red'", "''", "null"])
    out += _matrix("posts", ["author.team.rank"], [">", "<=", "="], ["2", "'3'"])
    out += _matrix("posts", ["author.age"], [">", "<", "="], ["25", "0"])
    out += _matrix("posts", ["author.active"], EQ, ["true", "false"])
    out += _matrix("posts", ["meta.a.b"], [*CMP, "~"], ["1", "'1'", "2", "null", "'hello'"])
    out += _matrix("posts", ["meta.a", "meta"], EQ, ["null", "''", "'flat'"])
    out += _matrix("posts", ["meta.list.0", "meta.a.list.1"], ["=", ">"], ["1", "'v'"])
    out += _matrix("posts", ["title:lower", "author.name:lower"], ["=", "~"], ["'alpha'", "'ann'"])
    out += _matrix("authors", ["tags:each"], ["=", "?=", "!=", "?!="], ["'a'", "'c'"])
    out += _matrix("authors", ["tags:length"], ["=", ">"], ["0", "2"])
    out += _matrix("authors", ["team.name", "team.rank"], ["=", "!=", ">"], ["'Red'", "3"])
    out += _matrix(
        "authors",
        ["born"],
        ["<", ">", "<=", ">="],
        ["@now", "@yesterday", "@todayStart", "@monthEnd", "@yearStart", "'2000-01-01'"],
    )
    out += _matrix("authors", ["born"], EQ, ["''", "null"])
    out += _matrix("authors", ["profile"], EQ, ["null", "''", "42", "'text'", "true"])
    out += _matrix("authors", ["profile.a.b", "profile.a"], [*EQ, ">"], ["1", "null"])
    out += _matrix("authors", ["email"], [*EQ, "~"], ["''", "'user1'", "'@example.com'"])
    return out


HAND_WRITTEN = [
    # precedence, parentheses, comments
    "views > 10 && published = true || status = 'draft'",
    "status = 'draft' || views > 10 && published = true",
    "(status = 'draft' || views > 10) && published = true",
    "status = 'draft' || (views > 10 && published = true)",
    "((views >= 10)) && ((published = false) || (labels:length = 0))",
    "!(views > 10)",
    "views > 10 // published = true",
    "views > 10 && // the rest is a comment\n published = true",
    "// only a comment",
    "",
    "   ",
    # literals on both sides, numbers vs strings
    "1 = 1",
    "1 = '1'",
    "'10' > '9'",
    "10 > 9",
    "null = null",
    "'' = null",
    "true = 1",
    "true = 'true'",
    "'a' != 'b' && views = 0",
    "0 = views",
    "'draft' = status",
    "null = author",
    # quotes and escapes
    'title = "O\'Brien"',
    "title = 'say \"hi\"'",
    "title = 'O\\'Brien'",
    "title = 'back\\\\slash'",
    "title ~ '\\\\'",
    # LIKE wildcards
    "title ~ '%'",
    "title ~ '100%'",
    "title ~ '%pure'",
    "title ~ '_'",
    "title ~ 'a_b'",
    "title ~ '%_%'",
    "title !~ '%'",
    "title ~ 'ÜN'",
    "title ~ 'ünï'",
    "title ~ '日本'",
    "title ~ '🎉'",
    "title:lower = 'ünïcødé'",
    # identifier against identifier
    "views > author.age",
    "title = author.name",
    "author.team = coauthors.team",
    "coauthors.team.rank ?> views",
    "author = coauthors",
    "author ?= coauthors.id",
    "coauthors.id ?= author",
    "coauthors ~ author",
    "author.team.name = author.team.name",
    # ids and relations
    "id = 'po0000000000001'",
    "id ~ 'po00000000000'",
    "id > 'po0000000000020'",
    "author.id = 'au0000000000003'",
    "coauthors.id ?= 'au0000000000003'",
    "coauthors ~ 'au0000000000003'",
    "author.team.id != ''",
    "coauthors.team.name ?~ 'red'",
    "coauthors.tags:each ?= 'a'",
    "author.tags:each = 'a'",
    "author.tags:length > 1",
    "author.profile.a.b = 1",
    "coauthors.age ?> 50",
    "coauthors.age > 20",
    "coauthors.active = true",
    "coauthors.active ?= false",
    # date macros
    # (records are created seconds apart on the two servers: only day-wide windows)
    "created > '2000-01-01' && created <= @now",
    "created > @yesterday && created < @tomorrow",
    "@todayStart <= @now && @todayEnd >= @now && views > 10",
    "@monthStart < @monthEnd && @yearStart < @yearEnd",
    "updated < '2000-01-01'",
    "@now > '2000-01-01'",
    "@yesterday < @now",
    "@year > 2000 && @month >= 1 && @day >= 1 && @weekday >= 0",
    "@hour >= 0 && @minute >= 0 && @second >= 0",
    # errors
    "views >",
    "views > 10 &&",
    "nope = 1",
    "author.nope = 1",
    "title.name = 1",
    "views === 1",
    "(views > 1",
    "title = 'unterminated",
    "views:lower = 1",
    "title:nope = 1",
    "@collection.authors.name = 'ann'",
    "@unknown = 1",
    "strftime('%Y', created) = '2024'",
]

AUTHORS_HAND_WRITTEN = [
    "name = 'ann'",
    "name ~ 'ANN'",
    "name:lower = 'ann'",
    "name ~ '%'",
    "name ~ '100%'",
    "name ~ 'x%y'",
    "name ~ '_'",
    'name = "d\'Arcy"',
    "name = 'the \"Doc\"'",
    "name ~ 'ün'",
    "age > 30 && active = true || tags:length = 0",
    "team.name = team.name",
    "team = ''",
    "team != null",
    "born > @now",
    "born < @now && born != ''",
    "born >= '1980-01-01' && born < '1990-01-01'",
    "born > '2090-01-01 00:00:00.000Z'",
    "profile = '[1,2,3]'",
    "profile.0 = 1",
    "profile.list.0.k = 'v'",
    "profile ~ 'flat'",
]


def public_queries() -> list[Query]:
    """Phase "public": every rule is ``""``."""
    out = generated()
    out += [q("posts", text) for text in HAND_WRITTEN]
    out += [q("authors", text) for text in AUTHORS_HAND_WRITTEN]
    # @collection is for superusers only in a filter (403 otherwise), like @request
    out.append(q("posts", "@collection.authors.name ?= author.name", su=True))
    out.append(q("posts", "strftime('%Y', created) > '2000'", su=True))
    # hidden fields: a 400 for anonymous, filterable for the superuser
    for text in ("secret = 's1'", "secret != 's1'", "name != '' || secret ~ 's'"):
        out.append(q("authors", text))
        out.append(q("authors", text, su=True))
    out.append(q("authors", sort="secret,id"))
    out.append(q("authors", sort="-secret,id", su=True))
    # @request.* in a filter is only for superusers
    for text in (
        "@request.method = 'GET'",
        "@request.context = 'default'",
        "@request.query.probe = 'yes' && views > 10",
        "@request.auth.id != ''",
        "@request.auth.collectionName = '_superusers'",
    ):
        out.append(q("posts", text, probe="yes"))
        out.append(q("posts", text, su=True, probe="yes"))
    out += sorting()
    out += paging()
    out += expanding()
    out += projecting()
    # whole records, so a difference in the seed data itself shows
    out.append(q("posts", full=True))
    out.append(q("authors", full=True))
    out.append(q("authors", full=True, su=True))
    out.append(q("teams", full=True))
    return out


def sorting() -> list[Query]:
    sorts = [
        *["id", "-id", "title,id", "-title,-id", "views,id", "-views,id"],
        *["published,-views,id", "status,id", "-status,views,id", "labels,id", "meta,id"],
        *["body,id", "+views,-id", "views, id", "@rowid", "-@rowid", "nope,id"],
        *["author.name,id"],
    ]
    out = [q("posts", None, s) for s in sorts]
    out += [q("authors", None, s) for s in ["name,id", "-age,name,id", "born,id", "profile,id"]]
    out += [q("authors", None, s) for s in ["active,-id", "tags,id", "email,id", "team,id"]]
    out += [q("posts", "views > 0", "-views,title,id"), q("posts", "labels:length > 0", "-id")]
    return out


def paging() -> list[Query]:
    out = []
    for page, per_page in [
        ("1", "7"),
        ("2", "7"),
        ("5", "7"),
        ("6", "7"),
        ("100", "7"),
        ("0", "7"),
        ("-3", "7"),
        ("1", "0"),
        ("1", "-1"),
        ("1", "1000"),
        ("1", "1001"),
        ("1", "abc"),
        ("abc", "10"),
        ("2", "30"),
        ("1", "1"),
    ]:
        out.append(q("posts", None, "-views,id", per_page=per_page, page=page))
    out.append(q("posts", None, "id", per_page=None))
    out.append(q("posts", None, "id", per_page=None, page="2"))
    for skip in ("1", "true", "0", "false"):
        out.append(q("posts", "views > 5", "id", per_page="4", page="2", skipTotal=skip))
    out.append(q("posts", "views > 1000", "id", per_page="4", skipTotal="1"))
    out.append(q("posts", "views > 1000", "id", per_page="4"))
    return out


def expanding() -> list[Query]:
    expands = [
        "author",
        "coauthors",
        "author.team",
        "author,coauthors",
        "coauthors.team",
        "author.team,coauthors.team",
        "author,author.team",
        "nope",
        "title",
    ]
    out = [q("posts", "views >= 10", "id", full=True, expand=e) for e in expands]
    out.append(q("posts", "id = 'po0000000000007'", "id", full=True, su=True, expand="author"))
    out.append(q("authors", "age > 30", "id", full=True, expand="team"))
    return out


def projecting() -> list[Query]:
    fields = [
        ("id,title", None),
        ("id,title,views", None),
        ("*", None),
        ("id,nope", None),
        ("id,body:excerpt(20)", None),
        ("id,body:excerpt(20,true)", None),
        ("id,body:excerpt(5, true)", None),
        ("id,title:excerpt(3,true)", None),
        ("id,expand.author.name", "author"),
        ("id,title,expand.author.name,expand.coauthors.name", "author,coauthors"),
        ("id,expand.author.team.name", "author.team"),
        ("*,expand.author.name", "author"),
        ("id,expand.author", "author"),
        ("id,expand", "author"),
        ("id,expand.coauthors.id,expand.coauthors.tags", "coauthors"),
    ]
    out = []
    for projection, expand in fields:
        if expand is None:
            out.append(q("posts", "views >= 10", "id", full=True, fields=projection))
        else:
            out.append(q("posts", "views >= 10", "id", full=True, fields=projection, expand=expand))
    out.append(q("authors", None, "id", full=True, fields="id,name,secret"))
    out.append(q("authors", None, "id", full=True, su=True, fields="id,name,secret"))
    return out


def _rules(
    posts: str | None = "", authors: str | None = "", teams: str | None = ""
) -> dict[str, dict[str, str | None]]:
    return {
        "posts": {"listRule": posts, "viewRule": posts},
        "authors": {"listRule": authors, "viewRule": authors},
        "teams": {"listRule": teams, "viewRule": teams},
    }


def _under_rule() -> list[Query]:
    """The queries repeated under every rule phase, anonymous and as superuser."""
    out = []
    for su in (False, True):
        out += [
            q("posts", None, "id", su=su),
            q("posts", "views > 5", "-views,id", su=su),
            q("posts", "status = 'draft' || labels:each ?= 'x'", "id", su=su),
            q("posts", None, "id", su=su, per_page="5", page="2"),
            q("posts", "author.name != ''", "id", su=su, full=True, expand="author,coauthors"),
        ]
    return out


def phases() -> list[Phase]:
    """Public first, then each rule set; the last phase puts the rules back."""
    under = _under_rule()
    token = [
        q("posts", "views > 5", "id", token="let-me-in"),
        q("posts", "views > 5", "id", token="wrong"),
    ]
    return [
        Phase("public", _rules(), public_queries()),
        Phase("published", _rules(posts="published = true"), under),
        Phase("active-author", _rules(posts="author.active = true && views > 10"), under),
        Phase(
            "multi",
            _rules(posts="coauthors.name ?= 'ann' || (labels:length = 0 && meta.a.b > 1)"),
            under,
        ),
        Phase("auth", _rules(posts="@request.auth.id != ''"), under),
        Phase("superusers-only", _rules(posts=None), under),
        Phase(
            "query-token",
            _rules(posts="@request.query.token = 'let-me-in'"),
            [*under, *token],
        ),
        Phase(
            "inactive-authors-hidden",
            _rules(authors="active = true", teams="rank > 2"),
            [
                *under,
                q("posts", "views >= 10", "id", full=True, expand="author.team,coauthors"),
                q("authors", None, "id", expand="team", full=True),
                q("posts", "author.name != ''", "id"),
            ],
        ),
    ]


def all_queries() -> list[tuple[str, Query]]:
    """Every ``(phase name, query)`` in the order they run."""
    return [(phase.name, query) for phase in phases() for query in phase.queries]
