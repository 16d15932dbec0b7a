"""What an identifier resolves to, and the ``Resolver`` seam the compiler calls.

The compiler (:mod:`keel.query.sql`) knows operators and SQL shapes; it asks a
resolver (implemented in ``keel.core.resolver`` against the collection schema
and the request) what each identifier means:

- :class:`Value`: a value known before the query runs (``@request.*``,
  ``@now``…); it becomes a bound parameter.
- :class:`Column`: one SQL expression per row (a field, or a field reached
  through single relations as a scalar subquery).
- :class:`Many`: several values per row (multi select/relation fields, paths
  through them, back-relations); compared with any-of or match-all semantics.

A :class:`Many` is a chain of ``LEFT JOIN`` steps. Steps with the same
``key`` are one join for the whole filter, so ``coauthors.name ?= 'a' &&
coauthors.age ?= 3`` asks for *one* coauthor with both, as PocketBase does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

#: How values compare: text (incl. dates), number, bool, json, or unknown.
Kind = Literal["text", "number", "bool", "json", "any"]


@dataclass(frozen=True, slots=True)
class Value:
    value: Any
    kind: Kind = "any"


@dataclass(frozen=True, slots=True)
class Column:
    """A per-row SQL expression; ``params`` bind its ``?`` placeholders."""

    sql: str
    kind: Kind = "text"
    params: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One ``LEFT JOIN`` of a multi-valued path.

    ``sql`` holds ``{a}`` for this step's alias and ``{p}`` for the previous
    step's alias; ``key`` identifies the path prefix it joins.
    """

    key: str
    sql: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Many:
    """Several values per row: the ``value`` (with ``{a}``, the last step's
    alias) over the rows of the ``steps`` joins. An empty set joins as one
    NULL row."""

    steps: tuple[Step, ...]
    value: str
    kind: Kind = "text"
    params: tuple[Any, ...] = ()


Resolved = Value | Column | Many


class Resolver(Protocol):
    """Turns identifiers into :data:`Resolved` operands.

    Raises:
        FilterPlanError: unknown or forbidden identifiers.
    """

    def resolve(self, name: str) -> Resolved: ...
