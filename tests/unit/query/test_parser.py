"""The filter parser: grammar, precedence, errors with positions, and round-trips."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.query.ast import (
    OPERATORS,
    And,
    Call,
    Comparison,
    Expr,
    Identifier,
    Literal,
    Or,
    print_expr,
)
from keel.query.errors import FilterError, FilterLimitError, FilterSyntaxError
from keel.query.parser import MAX_DEPTH, MAX_TERMS, parse


def cmp(left: str, value: object, op: str = "=") -> Comparison:
    return Comparison(Identifier(left), op, Literal(value))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a = 1", cmp("a", 1)),
        ("a=1 || b=1 && c=1", Or((cmp("a", 1), And((cmp("b", 1), cmp("c", 1)))))),
        ("(a=1 || b=1) && c=1", And((Or((cmp("a", 1), cmp("b", 1))), cmp("c", 1)))),
        ("a ?!~ 'x' // trailing comment", cmp("a", "x", "?!~")),
        ('a = "it\\"s"', cmp("a", 'it"s')),
        ("a = -1.5", cmp("a", -1.5)),
        ("a = null && b = TRUE", And((cmp("a", None), cmp("b", True)))),
        ("@request.auth.id != ''", Comparison(Identifier("@request.auth.id"), "!=", Literal(""))),
        ("tags:length > 2", cmp("tags:length", 2, ">")),
        (
            "strftime('%Y', created) = '2024'",
            Comparison(
                Call("strftime", (Literal("%Y"), Identifier("created"))), "=", Literal("2024")
            ),
        ),
    ],
)
def test_parse(text: str, expected: Expr) -> None:
    """Filters parse to the expected tree, with && binding tighter than ||."""
    assert expected == parse(text)


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("", 0),
        ("a", 1),
        ("a =", 3),
        ("(a = 1", 6),
        ("a = 1 &&", 8),
        ("a = 'x", 4),
        ("a == 1", 3),
        ("$ = 1", 0),
        ("a = 1 b", 6),
    ],
)
def test_syntax_errors_have_positions(text: str, position: int) -> None:
    """A syntax error says where it happened."""
    with pytest.raises(FilterSyntaxError) as info:
        parse(text)
    assert position == info.value.position


def test_limits() -> None:
    """Over-long, over-deep and over-wide filters are refused before any work."""
    with pytest.raises(FilterLimitError):
        parse("a = 1 && " * 1000 + "a = 1")
    with pytest.raises(FilterLimitError):
        parse("(" * (MAX_DEPTH + 2) + "a = 1" + ")" * (MAX_DEPTH + 2))
    with pytest.raises(FilterLimitError):
        parse(" || ".join(["a=1"] * (MAX_TERMS + 1)))


names = st.from_regex(
    r"@?[a-z_][a-z0-9_]{0,6}(\.[a-z_][a-z0-9_]{0,6}){0,2}(:[a-z]+)?", fullmatch=True
).filter(lambda n: n.lower() not in ("true", "false", "null"))
literals = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**9), max_value=10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=12),
)
operands = st.one_of(names.map(Identifier), literals.map(Literal))
comparisons = st.builds(Comparison, operands, st.sampled_from(OPERATORS), operands)
trees = st.recursive(
    comparisons,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda items: And(tuple(items))),
        st.lists(inner, min_size=2, max_size=3).map(lambda items: Or(tuple(items))),
    ),
    max_leaves=8,
)


@given(trees)
@settings(max_examples=300)
def test_print_then_parse_round_trips(tree: Expr) -> None:
    """Printing a tree and parsing the text gives the same tree."""
    assert tree == parse(print_expr(tree))


@given(
    st.text(alphabet=st.sampled_from(list("ab1 ='\"()&|!?~<>.@:,-/\\_\n")), max_size=60)
    | st.text(max_size=60)
)
@settings(max_examples=500)
def test_parser_raises_only_filter_errors(text: str) -> None:
    """Any text either parses or raises the filter error type, nothing else."""
    with contextlib.suppress(FilterError):
        parse(text)
