"""API rules: the one place every rule check goes through.

A rule is a filter. Checking one yields a :class:`RuleFilter`: either "no
restriction", or a SQL condition that the target rows must also match. The
actions apply it the same way everywhere: list adds it to ``WHERE``; view,
update and delete find nothing (404) when the row does not match; create
inserts, checks, and rolls back with a 400 when the new row does not match.

This release knows the two simple forms of a rule: ``null`` (superusers only,
403 for anyone else) and ``""`` (everyone). Any other text is a filter
expression, evaluated by the rule-language compiler; until it ships, such a
rule matches no row, so access fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keel.core.collection import Collection
from keel.core.errors import ForbiddenError
from keel.core.request import RequestInfo

SUPERUSERS_ONLY = "Only superusers can perform this action."


@dataclass(frozen=True, slots=True)
class RuleFilter:
    """A row condition in SQL with its bound parameters; empty ``sql`` = all rows."""

    sql: str = ""
    params: tuple[Any, ...] = ()

    @property
    def unrestricted(self) -> bool:
        return self.sql == ""


ALL_ROWS = RuleFilter()
NO_ROWS = RuleFilter("1 = 0")


def rule_filter(coll: Collection, rule_name: str, info: RequestInfo) -> RuleFilter:
    """The condition ``info`` must meet under ``coll``'s ``rule_name`` rule.

    Raises:
        ForbiddenError: the rule is ``null`` and the caller is no superuser.
    """
    if info.auth.is_superuser:
        return ALL_ROWS
    rule = coll.rules.get(rule_name) if rule_name in coll.rules else coll.options.get(rule_name)
    if rule is None:
        raise ForbiddenError(SUPERUSERS_ONLY)
    if rule.strip() == "":
        return ALL_ROWS
    return NO_ROWS
