"""Relation expansion: the ``expand`` query parameter.

``expand=author,coauthors.country`` replaces nothing in a record; it adds the
related records the caller may *view* under the record's ``"expand"`` key: one
record object for a single relation, a list (in the order of the stored ids)
for a multiple one. Targets that are missing, hidden by the target's view rule,
or cut by the per-level limit are left out.

The semantics follow PocketBase's observable behaviour:

- A value is a comma list of dotted paths. Each path is trimmed of blanks and
  of leading/trailing dots; empty entries are skipped. A path that is a prefix
  of another (``author`` next to ``author.country``) is folded into it.
- Field names match exactly (case-sensitively). A path *fails* when one of its
  segments, at a level that has records to expand, is not a relation field of
  that level's collection, or names a collection whose view rule is
  superusers-only for this caller. A failed path is dropped whole, parents
  included: ``expand=author.secret`` expands nothing when ``secret`` is not
  viewable. Other paths are unaffected.
- Every record a successful path runs over gets an ``"expand"`` object, empty
  when nothing resolved; a record with no successful path gets no key.

Keel's own limits (PocketBase has none, or truncates silently):

- At most :data:`MAX_PATHS` distinct paths and :data:`MAX_DEPTH` segments per
  path; more is a :class:`~keel.core.errors.BadRequestError`.
- At most :data:`MAX_RECORDS_PER_LEVEL` distinct related records are fetched
  per depth level, over all the level's relations. Beyond that, ids are taken
  in a fixed order (paths as first written, then the records in order, then
  each relation's stored id order) and the rest are left out as if missing.

Each depth level runs one ``SELECT`` per target collection, batching every id
the level needs with the target's view rule ANDed in, so cost grows with the
number of levels, never with the number of records.

Not supported yet: back-relations (``comments_via_post``); such a path names
no field, so it fails and is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keel.core.app import App
from keel.core.collection import Collection
from keel.core.errors import BadRequestError, ForbiddenError
from keel.core.fields.relation import RelationField
from keel.core.record import Record, from_row, select_sql
from keel.core.request import RequestInfo
from keel.core.rule import RuleFilter, rule_filter
from keel.query.dialect import dialect_of
from keel.storage.db.database import Executor

MAX_DEPTH = 6
MAX_PATHS = 10
MAX_RECORDS_PER_LEVEL = 1000

Item = dict[str, Any]
Path = tuple[str, ...]


def parse_expand(text: str) -> list[Path]:
    """The paths of an ``expand`` value, duplicates and prefixes folded.

    Raises:
        BadRequestError: more than :data:`MAX_PATHS` paths, or a path deeper
            than :data:`MAX_DEPTH`.
    """
    paths: list[Path] = []
    for part in text.split(","):
        cleaned = part.strip().strip(".")
        if not cleaned:
            continue
        path = tuple(cleaned.split("."))
        if len(path) > MAX_DEPTH:
            raise BadRequestError(
                f"The expand path {cleaned!r} is too deep: at most {MAX_DEPTH} levels "
                "of nested relations can be expanded."
            )
        if path not in paths:
            if len(paths) == MAX_PATHS:
                raise BadRequestError(f"Too many expand paths: at most {MAX_PATHS} are allowed.")
            paths.append(path)
    return [p for p in paths if not any(len(o) > len(p) and o[: len(p)] == p for o in paths)]


@dataclass(frozen=True, slots=True)
class _Binding:
    """What a path segment names at its level: a relation, its target, the view rule."""

    relation: RelationField
    target: Collection
    rule: RuleFilter


@dataclass(eq=False)
class _Node:
    """One segment of the path tree, and what expanding it found."""

    name: str
    children: dict[str, _Node] = field(default_factory=dict)
    #: Set once records reached this segment and it named something expandable.
    binding: _Binding | None = None
    #: Records reached this segment and it named nothing expandable.
    failed: bool = False
    #: The records this segment is expanded on, with their JSON.
    parents: list[tuple[Record, Item]] = field(default_factory=list)
    #: The related records found, by id, with their JSON (shared by parents).
    found: dict[str, tuple[Record, Item]] = field(default_factory=dict)

    def kept(self) -> bool:
        """Whether at least one path through this node succeeded."""
        if self.failed:
            return False
        return not self.children or any(c.kept() for c in self.children.values())


def _tree(paths: list[Path]) -> dict[str, _Node]:
    roots: dict[str, _Node] = {}
    for path in paths:
        level = roots
        for name in path:
            node = level.setdefault(name, _Node(name))
            level = node.children
    return roots


@dataclass
class _Batch:
    """The ids one level needs from one target collection."""

    target: Collection
    rule: RuleFilter
    ids: dict[str, None] = field(default_factory=dict)


class _Expander:
    def __init__(self, app: App, info: RequestInfo) -> None:
        self.app = app
        self.info = info
        self.show_hidden = info.auth.is_superuser
        self._rules: dict[str, RuleFilter | None] = {}

    def view_rule(self, coll: Collection) -> RuleFilter | None:
        """The caller's view condition on ``coll``; ``None`` when forbidden."""
        if coll.id not in self._rules:
            try:
                self._rules[coll.id] = rule_filter(self.app, coll, "viewRule", self.info)
            except ForbiddenError:
                self._rules[coll.id] = None
        return self._rules[coll.id]

    def bind(self, coll: Collection, name: str) -> _Binding | None:
        """The relation field ``name`` of ``coll``; ``None`` when a path through it fails."""
        fld = coll.field(name)
        if not isinstance(fld, RelationField) or fld.name != name:
            return None  # unknown, not a relation, or another case (PocketBase is exact)
        target = self.app.find_collection(fld.options["collectionId"])
        if target is None:
            return None
        rule = self.view_rule(target)
        return None if rule is None else _Binding(fld, target, rule)

    async def run(
        self, coll: Collection, parents: list[tuple[Record, Item]], roots: dict[str, _Node]
    ) -> None:
        level: list[tuple[Collection, list[tuple[Record, Item]], dict[str, _Node]]] = [
            (coll, parents, roots)
        ]
        while level:
            batches: dict[str, _Batch] = {}
            active: list[tuple[_Node, _Binding]] = []
            budget = MAX_RECORDS_PER_LEVEL
            for owner, group, nodes in level:
                if not group:
                    continue  # nothing reaches these segments, so they are not checked
                for node in nodes.values():
                    bound = node.binding = self.bind(owner, node.name)
                    if bound is None:
                        node.failed = True
                        continue
                    node.parents = group
                    active.append((node, bound))
                    batch = batches.setdefault(bound.target.id, _Batch(bound.target, bound.rule))
                    for record, _ in group:
                        for rid in bound.relation.values_of(record.get(bound.relation.name)):
                            if rid not in batch.ids and budget > 0:
                                batch.ids[rid] = None
                                budget -= 1
            fetched = {cid: await self.fetch(self.app.db, b) for cid, b in batches.items()}
            level = []
            for node, bound in active:
                by_id = fetched[bound.target.id]
                for record, _ in node.parents:
                    for rid in bound.relation.values_of(record.get(bound.relation.name)):
                        related = by_id.get(rid)
                        if related is not None and rid not in node.found:
                            item = related.to_json(show_hidden=self.show_hidden)
                            node.found[rid] = (related, item)
                level.append((bound.target, list(node.found.values()), node.children))

    async def fetch(self, ex: Executor, batch: _Batch) -> dict[str, Record]:
        """The batch's records the caller may view, by id, in one query."""
        if not batch.ids:
            return {}
        marks = ", ".join("?" for _ in batch.ids)
        dialect = dialect_of(ex)
        sql = f"{select_sql(dialect, batch.target)} WHERE {dialect.quote('id')} IN ({marks})"
        params: tuple[Any, ...] = tuple(batch.ids)
        if batch.rule.sql:
            sql += f" AND ({batch.rule.sql})"
            params += batch.rule.params
        rows = await ex.fetch_all(sql, params)
        records = (from_row(batch.target, row) for row in rows)
        return {r.id: r for r in records}


def _assign(nodes: dict[str, _Node]) -> None:
    for node in nodes.values():
        bound = node.binding
        if bound is None or not node.kept():
            continue
        relation = bound.relation
        for record, item in node.parents:
            expand: Item = item.setdefault("expand", {})
            ids = relation.values_of(record.get(relation.name))
            related = [node.found[rid][1] for rid in ids if rid in node.found]
            if related:
                expand[node.name] = related if relation.multiple else related[0]
        _assign(node.children)


async def expand_records(
    app: App,
    coll: Collection,
    records: list[Record],
    items: list[dict[str, Any]],
    expand: str,
    info: RequestInfo,
) -> None:
    """Add the ``expand`` relations the caller may view to serialized records.

    Args:
        app: the application (database and schema).
        coll: the collection of ``records``.
        records: the records, as read from the database.
        items: their JSON (from :meth:`Record.to_json`), same order; each gets
            an ``"expand"`` key in place when a path succeeds for it.
        expand: the raw ``expand`` query value.
        info: the caller; each related record is filtered by its own
            collection's view rule for it.

    Raises:
        BadRequestError: too many paths, or a path too deep.

    Note:
        A related record reached through the same relation segment from
        several records is serialized once and its dict shared between them;
        copy before mutating one occurrence.
    """
    paths = parse_expand(expand)
    if not paths or not records:
        return
    roots = _tree(paths)
    await _Expander(app, info).run(coll, list(zip(records, items, strict=True)), roots)
    _assign(roots)
