"""The ``fields`` parameter: parsing, projection and the excerpt modifier.

Expected values were checked against PocketBase 0.40.6 (same record, same
``fields`` value), except where a comment says Keel is stricter.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.core.errors import BadRequestError
from keel.core.projection import Excerpt, parse_fields, plain_text, project, project_page

AUTHOR = {"collectionId": "c1", "id": "a1", "name": "ann"}
RECORD: dict[str, Any] = {
    "collectionId": "c2",
    "id": "p1",
    "title": "one",
    "body": "<p>Hello <b>world</b>, this is   a <i>long</i>\n body</p>",
    "views": 3,
    "coauthors": ["a1", "a2"],
    "expand": {
        "author": {**AUTHOR, "expand": {"country": {"id": "fr", "name": "France"}}},
        "coauthors": [AUTHOR, {"collectionId": "c1", "id": "a2", "name": "bob"}],
    },
}
EVERYTHING_BUT_EXPAND = {k: v for k, v in RECORD.items() if k != "expand"}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("", RECORD),
        (" , ", RECORD),
        ("*", RECORD),
        ("*,*", RECORD),
        ("id,title", {"id": "p1", "title": "one"}),
        (" id , title ", {"id": "p1", "title": "one"}),
        ("id,,title", {"id": "p1", "title": "one"}),
        ("ID,Title", {}),
        ("nope", {}),
        ("id,expand.author.name", {"id": "p1", "expand": {"author": {"name": "ann"}}}),
        ("expand.coauthors.name", {"expand": {"coauthors": [{"name": "ann"}, {"name": "bob"}]}}),
        ("*,expand.author.id", {**EVERYTHING_BUT_EXPAND, "expand": {"author": {"id": "a1"}}}),
        ("expand", {"expand": RECORD["expand"]}),
        ("expand,expand.author.id", {"expand": RECORD["expand"]}),
        ("expand.author.id,expand", {"expand": RECORD["expand"]}),
        ("expand.*", {"expand": RECORD["expand"]}),
        ("expand.author.*", {"expand": {"author": RECORD["expand"]["author"]}}),
        (
            "expand.author.expand.country.name",
            {"expand": {"author": {"expand": {"country": {"name": "France"}}}}},
        ),
        # "*" is a wildcard only as the last segment; elsewhere it is a plain key.
        ("expand.*.id", {"expand": {}}),
        ("*.id", {}),
        ("*.*", {}),
        ("**", {}),
        # Below a scalar or a list of scalars, a path keeps the value whole.
        ("title.x,coauthors.y,id.*", {"title": "one", "coauthors": ["a1", "a2"], "id": "p1"}),
        ("id,expand..name", {"id": "p1", "expand": {}}),
        ("id,.id", {"id": "p1"}),
        ("id,a(b,c)", {"id": "p1"}),
        ("body :excerpt(3)", {}),
    ],
)
def test_project(fields: str, expected: dict[str, Any]) -> None:
    """Only the named keys are kept, at any depth, through lists."""
    assert expected == project(RECORD, parse_fields(fields))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("body:excerpt(200)", {"body": "Hello world, this is a long body"}),
        ("body:excerpt(20,true)", {"body": "Hello world, this is..."}),
        ("body:excerpt(20)", {"body": "Hello world, this is"}),
        ("body:excerpt(20,false)", {"body": "Hello world, this is"}),
        ("body:excerpt(6, true)", {"body": "Hello..."}),
        ("body:excerpt( 6 ,TRUE)", {"body": "Hello..."}),
        ("body:excerpt(5,1)", {"body": "Hello..."}),
        ("body:excerpt(5,t)", {"body": "Hello..."}),
        ("body:excerpt(5,maybe)", {"body": "Hello"}),
        ("body:excerpt(5,true,)", {"body": "Hello..."}),
        ("body:excerpt(5,,)", {"body": "Hello"}),
        ("body:excerpt(5.9)", {"body": "Hello"}),
        ("body:excerpt(+5)", {"body": "Hello"}),
        ("title:excerpt(3,true)", {"title": "one"}),
        ("title:excerpt(2,true)", {"title": "on..."}),
        ("views:excerpt(1),coauthors:excerpt(1)", {"views": 3, "coauthors": ["a1", "a2"]}),
        ("nope:excerpt(1)", {}),
        ("expand.author.name:excerpt(2)", {"expand": {"author": {"name": "an"}}}),
        ("title:excerpt(2),title", {"title": "one"}),
        ("title,title:excerpt(2)", {"title": "on"}),
        (
            "expand.author.name:excerpt(2),expand.author.name",
            {"expand": {"author": {"name": "ann"}}},
        ),
        ("expand.author:excerpt(2)", {"expand": {"author": RECORD["expand"]["author"]}}),
    ],
)
def test_excerpt_modifier(fields: str, expected: dict[str, Any]) -> None:
    """``:excerpt`` shortens strings to plain text; the last modifier of a key wins."""
    assert expected == project(RECORD, parse_fields(fields))


def test_wildcard_modifier() -> None:
    """A modifier on ``*`` applies to the keys not named otherwise."""
    expected = {
        "collectionId": "c2",
        "id": "p1",
        "title": "one",
        "body": "Hel",
        "views": 3,
        "coauthors": ["a1", "a2"],
        "expand": RECORD["expand"],
    }
    assert expected == project(RECORD, parse_fields("id,*:excerpt(3)"))
    assert RECORD == project(RECORD, parse_fields("*:excerpt(3),*"))
    assert "Hel" == project(RECORD, parse_fields("*,*:excerpt(3)"))["body"]


@pytest.mark.parametrize(
    "fields",
    [
        "body:excerpt(0)",
        "body:excerpt(0.5)",
        "body:excerpt(-1)",
        "body:excerpt(abc)",
        "body:excerpt(2e0)",
        "body:excerpt()",
        "body:excerpt(,true)",
        "body:excerpt(1,2,3)",
        "body:excerpt(99999999999999999999)",
        "body:nope(1)",
        "body:EXCERPT(5)",
        "body:",
        "body:excerpt",
        "title::excerpt(2)",
        "ti:tle",
        "body:excerpt(20,true",
        "body:excerpt(3):excerpt(2)",
        # Keel is stricter here; PocketBase ignores the trailing text.
        "body:excerpt(20))",
        "title:excerpt(2)x",
    ],
)
def test_malformed_fields(fields: str) -> None:
    """A malformed or unknown modifier, or unbalanced parentheses, is a 400."""
    with pytest.raises(BadRequestError):
        parse_fields("id," + fields)


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("", ""),
        ("plain text", "plain text"),
        ("<b>a</b><i>b</i> c", "ab c"),
        ("x<br>y<br/>z", "xyz"),
        ("a<p>b</p>c", "a b c"),
        ("<h1>Title</h1><p>Para</p>", "Title Para"),
        ("<ul><li>x</li><li>y</li></ul>", "x y"),
        ("<table><tr><td>1</td><td>2</td></tr></table>", "1 2"),
        ("<div>one</div><div>two</div><span>three</span><span>four</span>", "one two threefour"),
        ("<hr>a<hr/>b", "a b"),
        ("<script>var a = 1 < 2;</script>after<style>.x{}</style>end", "afterend"),
        ("<form><input value=v>in form</form>after", "after"),
        ("<!-- comment -->visible", "visible"),
        ("<img src=x alt='pic'>txt", "txt"),
        ("  <p> hi </p>  ", "hi"),
        ("line1\n\nline2\ttab", "line1 line2 tab"),
        ("a &lt;b&gt; &quot;c&quot; &#39;d&#39; &copy; &#x41;", "a <b> \"c\" 'd' © A"),
        ("&amp;lt;", "&lt;"),
        ("&unknown; &amp", "&unknown; &"),
        ("a < b and c > d", "a < b and c > d"),
        ("<p>unclosed <b>bold", "unclosed bold"),
        ("a\u00a0b", "a\u00a0b"),
        ("a  &nbsp; b", "a \u00a0 b"),
        ("&nbsp;x\u2003", "x"),
        ("\u200bx", "\u200bx"),
        ("日本語のテキスト", "日本語のテキスト"),
    ],
)
def test_plain_text(html: str, expected: str) -> None:
    """Tags go, block elements leave a space, references are decoded, blanks collapse."""
    assert expected == plain_text(html)


@pytest.mark.parametrize(
    ("excerpt", "text", "expected"),
    [
        (Excerpt(4), "héllo wörld", "héll"),
        (Excerpt(6, ellipsis=True), "héllo wörld", "héllo..."),
        (Excerpt(3, ellipsis=True), "😀😀😀😀", "😀😀😀..."),
        (Excerpt(4), "one two", "one"),
        (Excerpt(4), "a  &nbsp; b", "a"),
        (Excerpt(5, ellipsis=True), "short", "short"),
        (Excerpt(5), 12345678, 12345678),
        (Excerpt(5), None, None),
    ],
)
def test_excerpt(excerpt: Excerpt, text: Any, expected: Any) -> None:
    """Excerpts count characters, trim before the ellipsis, and leave non-strings alone."""
    assert expected == excerpt.apply(text)


def test_project_page() -> None:
    """On a list envelope the items are projected and the paging keys kept."""
    page = {"page": 1, "perPage": 2, "totalItems": 5, "totalPages": 3, "items": [RECORD, RECORD]}
    expected = {**page, "items": [{"id": "p1"}, {"id": "p1"}]}
    assert expected == project_page(page, parse_fields("id"))
    assert {**page, "items": [{}, {}]} == project_page(page, parse_fields("page,items"))


def test_project_does_not_modify_its_input() -> None:
    """Projection builds new containers and leaves the input as it was."""
    record = {"id": "p1", "body": "<b>x</b>", "expand": {"a": [{"id": "1", "n": "x"}]}}
    project(record, parse_fields("body:excerpt(5),expand.a.id"))
    assert {"id": "p1", "body": "<b>x</b>", "expand": {"a": [{"id": "1", "n": "x"}]}} == record


def test_deep_nesting_is_kept_whole() -> None:
    """Lists nested past the limit are returned whole instead of exhausting the stack."""
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    assert {"m": deep} == project({"m": deep, "n": 1}, parse_fields("m.x"))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(derandomize=True, database=None)
@given(st.dictionaries(st.text(max_size=8), JSON, max_size=6))
def test_star_is_identity(data: dict[str, Any]) -> None:
    """Projecting any JSON object with ``*`` returns it unchanged."""
    assert data == project(data, parse_fields("*"))


@settings(derandomize=True, database=None)
@given(
    st.dictionaries(st.text(max_size=8), JSON, max_size=6),
    st.lists(st.sampled_from(["a", "b", "*", "a.b", "b.*", "a:excerpt(2)"]), max_size=4),
)
def test_projection_only_removes_keys(data: dict[str, Any], entries: list[str]) -> None:
    """A projection never adds keys: the result's keys are a subset of the input's."""
    result = project(data, parse_fields(",".join(entries)))
    assert set(result) <= set(data)
