"""API rules and filters: the one place every rule check goes through.

A rule is a filter. Checking one yields a :class:`RuleFilter`: either "no
restriction", or a SQL condition that the target rows must also match. The
actions apply it the same way everywhere: list adds it to ``WHERE``; view,
update and delete find nothing (404) when the row does not match; create
inserts, checks, and rolls back with a 400 when the new row does not match.

``null`` means superusers only (403 for anyone else), ``""`` means everyone,
and any other text is a filter expression compiled by :mod:`keel.query`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from keel.core.collection import AUTH_RULES, Collection
from keel.core.errors import BadRequestError, FieldError, ForbiddenError
from keel.core.request import RequestInfo
from keel.core.resolver import DATE_MACROS, RecordResolver
from keel.core.result_cache import BoundedCache
from keel.query.ast import Expr, identifiers
from keel.query.dialect import Dialect
from keel.query.errors import FilterError
from keel.query.parser import parse
from keel.query.plan import Value
from keel.query.sql import compile_filter

if TYPE_CHECKING:
    from keel.core.app import App

SUPERUSERS_ONLY = "Only superusers can perform this action."
RULE_ACTIONS = {
    "listRule": "list",
    "viewRule": "view",
    "createRule": "create",
    "updateRule": "update",
    "deleteRule": "delete",
}


@dataclass(frozen=True, slots=True)
class RuleFilter:
    """A row condition in SQL with its bound parameters; empty ``sql`` = all rows."""

    sql: str = ""
    params: tuple[Any, ...] = ()

    @property
    def unrestricted(self) -> bool:
        return self.sql == ""

    def __and__(self, other: RuleFilter) -> RuleFilter:
        if self.unrestricted:
            return other
        if other.unrestricted:
            return self
        return RuleFilter(f"({self.sql}) AND ({other.sql})", self.params + other.params)


ALL_ROWS = RuleFilter()
NO_ROWS = RuleFilter("1 = 0")


#: Plans kept per collection in each table (shared, per caller).
MAX_CACHED_PLANS = 512
#: The longest request values (as text) a kept plan is keyed by.
MAX_KEYED_VALUES = 256


@lru_cache(maxsize=2048)
def parsed(text: str) -> tuple[Expr, bool, bool]:
    """The syntax tree of a filter, whether it names ``@`` identifiers, and paths.

    Cached by text: parsing is pure. A filter naming no ``@`` identifier
    compiles to the same SQL and parameters for every request, unless it
    follows relations into collections whose own rules apply.
    """
    tree = parse(text)
    names = identifiers(tree)
    return tree, any(name.startswith("@") for name in names), any("." in n for n in names)


def compile_expression(
    app: App,
    coll: Collection,
    text: str,
    info: RequestInfo,
    dialect: Dialect,
    *,
    allow_hidden: bool,
    lookup: Callable[[str], Collection | None] | None = None,
    allow_request: bool = True,
    related_rules: bool = False,
) -> RuleFilter:
    """Compile filter text for ``coll`` under ``info``.

    Raises:
        FilterError: syntax, limit or planning errors.
        ForbiddenError: ``@request`` in a filter when ``allow_request`` is false.
    """
    tree, macros, paths = parsed(text)
    flags = f"{dialect.name}:{allow_hidden:d}:{allow_request:d}:{related_rules:d}"
    key = f"{flags}:{text}"
    store = "plans"
    # Plans are kept unless they depend on more than the text and the schema:
    # other collections' rules, or request values other than plain ones.
    kept = lookup is None and not (related_rules and paths)
    new_resolver = partial(
        RecordResolver,
        lookup or app.find_collection,
        coll,
        info,
        dialect,
        allow_hidden=allow_hidden,
        allow_request=allow_request,
        related_rules=related_rules,
    )
    resolver: RecordResolver | None = None
    if kept and macros:
        resolver = new_resolver()
        values = _caller_values(text, resolver)
        kept = values is not None
        # The length marks where the text ends.
        key = f"{flags}:{len(text)}:{text}{values}"
        store = "caller_plans"
    # Plans kept per caller are many: they get a table of their own, so they
    # never push out the shared plans. Plans live on the collection object,
    # which a schema change replaces.
    plans: BoundedCache[str, RuleFilter] = coll.cached(
        store, lambda: BoundedCache(MAX_CACHED_PLANS)
    )
    if kept:
        cached = plans.get(key)
        if cached is not None:
            return cached
    if resolver is None:
        resolver = new_resolver()
    compiled = compile_filter(tree, resolver, dialect)
    result = RuleFilter(compiled.sql, compiled.params)
    if kept:
        plans.put(key, result)
    return result


def _caller_values(text: str, resolver: RecordResolver) -> str | None:
    """The request values ``text`` names, as text to key its plan by.

    Equal values compile to equal SQL and parameters; ``repr`` keeps 1, 1.0,
    True and "1" apart. ``None`` when they cannot key a plan: an identifier
    that is not a plain value (a join would not be in the key), one that
    does not resolve (compiling says why, in its own words), or a long body
    value, not worth keeping.
    """
    names = keyed_identifiers(text)
    if names is None:
        return None
    try:
        values = [resolver.resolve(name) for name in names]
    except (FilterError, ForbiddenError):
        return None
    if not all(isinstance(v, Value) for v in values):
        return None
    shown = repr([(v.value, v.kind) for v in values if isinstance(v, Value)])
    return shown if len(shown) <= MAX_KEYED_VALUES else None


@lru_cache(maxsize=2048)
def keyed_identifiers(text: str) -> tuple[str, ...] | None:
    """The ``@`` identifiers of filter text, when each resolves to one plain value.

    The text then compiles to the same SQL and parameters in every request
    where those values are equal. ``None`` when one does not: date macros
    (the clock), modifiers, ``@collection``, paths through the caller's
    relations (``@request.auth.team.name``).
    """
    names = sorted({n for n in identifiers(parsed(text)[0]) if n.startswith("@")})
    for name in names:
        parts = name.split(".")
        if ":" in name or parts[0] != "@request" or len(parts) < 2:
            return None
        single = parts[1] in ("method", "context") and len(parts) == 2
        keyed = parts[1] in ("query", "headers", "body", "auth") and len(parts) == 3
        if not (single or keyed):
            return None
    return tuple(names)


@lru_cache(maxsize=2048)
def reads_clock(text: str) -> bool:
    """Whether filter text uses a date macro (``@now``, ``@todayStart``…).

    Its condition then changes with time alone. Text that does not parse
    counts as reading it: nothing may be assumed of it.
    """
    try:
        tree = parsed(text)[0]
    except FilterError:
        return True
    return any(name in DATE_MACROS for name in identifiers(tree))


def rule_text(coll: Collection, rule_name: str) -> str | None:
    """The text of ``coll``'s ``rule_name`` rule; ``None`` means superusers only."""
    rule: str | None = (
        coll.rules.get(rule_name) if rule_name in coll.rules else coll.options.get(rule_name)
    )
    return rule


def rule_filter(app: App, coll: Collection, rule_name: str, info: RequestInfo) -> RuleFilter:
    """The condition ``info`` must meet under ``coll``'s ``rule_name`` rule.

    Raises:
        ForbiddenError: the rule is ``null`` and the caller is no superuser,
            or the caller's API key has no scope for this operation.
    """
    action = RULE_ACTIONS.get(rule_name)
    if action is not None and not info.auth.allows(coll, action):
        raise ForbiddenError("The API key has no scope for this action.")
    if coll.system and not info.auth.unrestricted:
        # Scoped keys never reach _superusers, _apiKeys, _otps…: writing
        # there would let a key widen itself.
        raise ForbiddenError("Scoped API keys cannot use system collections.")
    if info.auth.is_superuser:
        return ALL_ROWS
    rule = rule_text(coll, rule_name)
    if rule is None:
        raise ForbiddenError(SUPERUSERS_ONLY)
    if rule.strip() == "":
        return ALL_ROWS
    try:
        return compile_expression(app, coll, rule, info, app.dialect, allow_hidden=True)
    except FilterError:
        # Rules are checked when saved; one that no longer compiles (e.g. a
        # field it names was removed) fails closed.
        return NO_ROWS


def filter_condition(app: App, coll: Collection, text: str, info: RequestInfo) -> RuleFilter:
    """The condition of a client's ``filter`` parameter.

    Raises:
        BadRequestError: the filter is invalid, names an unknown field, or a
            hidden one while the caller is no superuser.
    """
    if text == "":
        return ALL_ROWS  # a blank (but present) filter is a syntax error, as in PocketBase
    try:
        # A scoped API key filters like a regular user: no @collection, no
        # hidden fields, related rules apply, so it cannot probe other data.
        superuser = info.auth.is_superuser and info.auth.unrestricted
        return compile_expression(
            app,
            coll,
            text,
            info,
            app.dialect,
            allow_hidden=superuser,
            allow_request=superuser,
            related_rules=not superuser,
        )
    except FilterError as exc:
        raise BadRequestError(f"Invalid filter: {exc.message}") from exc


def rule_errors(app: App, coll: Collection, schema: list[Collection]) -> dict[str, Any]:
    """Per-rule errors of ``coll``'s rules compiled against ``schema`` (which includes it)."""
    by_id = {c.id: c for c in schema}
    by_id[coll.id] = coll
    by_name = {c.name.lower(): c for c in by_id.values()}

    def lookup(key: str) -> Collection | None:
        return by_id.get(key) or by_name.get(key.lower())

    errors: dict[str, Any] = {}
    rules = {**coll.rules, **{k: coll.options.get(k) for k in AUTH_RULES}}
    if coll.is_auth:
        rules["mfa.rule"] = (coll.options.get("mfa") or {}).get("rule")
    for name, text in rules.items():
        if not text or not text.strip():
            continue
        try:
            compile_expression(
                app, coll, text, RequestInfo(), app.dialect, allow_hidden=True, lookup=lookup
            )
        except FilterError as exc:
            error = FieldError("validation_invalid_rule", f"Invalid rule. {exc.message}")
            if name == "mfa.rule":
                errors["mfa"] = {"rule": error}
            else:
                errors[name] = error
    return errors
