"""Relation expansion: the ``expand`` query parameter.

``expand=author,coauthors.country`` replaces nothing in a record; it adds the
related records the caller may *view* under the record's ``"expand"`` key: one
record object for a single relation, a list (in the order of the stored ids)
for a multiple one. Targets that are missing, hidden by the target's view rule,
or cut by the per-level limit are left out.

A segment may also name a *back-relation*, ``<collection>_via_<field>``: the
records of ``<collection>`` whose relation ``<field>`` points to the record
(holds its id, for a multiple field), filtered by ``<collection>``'s view
rule. It expands to a list, in the order the records were inserted, even when
``<field>`` is a single relation, except when ``<collection>`` has a
single-column unique index on ``<field>``: then at most one record can point
back, and it expands to that record alone. Paths continue through and after
back-relations (``posts_via_author.coauthors``, ``author.posts_via_author``).

The semantics follow PocketBase's observable behaviour:

- A value is a comma list of dotted paths. Each path is trimmed of blanks and
  of leading/trailing dots; empty entries are skipped. A path that is a prefix
  of another (``author`` next to ``author.country``) is folded into it.
- Field names match exactly (case-sensitively). In a back-relation the
  collection is found by name (case-insensitively) or id and the field name
  is exact; the ``"expand"`` key is the segment as written. The deprecated
  form ``<collection>(<field>)`` is accepted too.
- A segment is read as a back-relation whenever it has that shape, even if a
  field of that name exists (PocketBase checks the pattern first). The
  back-relation's field may be hidden: only the view rule applies.
- A path *fails* when one of its segments, at a level that has records to
  expand, names neither a relation field of that level's collection nor a
  relation field pointing back to it, or names a collection whose view rule
  is superusers-only for this caller. A failed path is dropped whole, parents
  included: ``expand=author.secret`` expands nothing when ``secret`` is not
  viewable. Other paths are unaffected.
- Every record a successful path runs over gets an ``"expand"`` object, empty
  when nothing resolved; a record with no successful path gets no key.

Keel's own limits (PocketBase has none, or truncates silently):

- At most :data:`MAX_PATHS` distinct paths and :data:`MAX_DEPTH` segments per
  path; more is a :class:`~keel.core.errors.BadRequestError`.
- At most :data:`MAX_RECORDS_PER_LEVEL` distinct related records are fetched
  per depth level, over all the level's relations. Forward relations reserve
  their ids first, in a fixed order (paths as first written, then the records
  in order, then each relation's stored id order); back-relations share what
  is left, one source collection after another in the order the paths first
  name them, each taking its viewable records in insertion order. The rest
  are left out as if missing.

Each depth level runs one ``SELECT`` per collection it reads, batching every
id the level needs from it and every back-relation into it (an ``IN`` list of
the parent ids per field), with the collection's view rule ANDed in, so cost
grows with the number of levels, never with the number of records.

Differences from PocketBase that remain:

- PocketBase caps each record's back-relation at 1000 records taken *before*
  the view rule (so fewer may show); Keel applies the view rule first and
  caps the whole level at :data:`MAX_RECORDS_PER_LEVEL`, so a page of parents
  with many back-related records each may see fewer than PocketBase shows.
- PocketBase silently ignores segments past the sixth; Keel answers 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from keel.core.app import App
from keel.core.collection import Collection
from keel.core.errors import BadRequestError, ForbiddenError
from keel.core.fields.relation import RelationField
from keel.core.record import Record, from_row
from keel.core.request import RequestInfo
from keel.core.rule import RuleFilter, rule_filter
from keel.core.visibility import record_json
from keel.query.dialect import Dialect, dialect_of
from keel.storage.db.database import Executor

MAX_DEPTH = 6
MAX_PATHS = 10
MAX_RECORDS_PER_LEVEL = 1000

# ASCII like Go's \w; greedy, so the *last* "_via_" splits, as in PocketBase.
BACK_RELATION = re.compile(r"^(\w+)_via_(\w+)$", re.ASCII)
LEGACY_BACK_RELATION = re.compile(r"^(\w+)\((\w+)\)$", re.ASCII)

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
    """What a path segment names at its level, and the view rule of what it reaches.

    Forward, ``relation`` is a field of the level's collection holding ids of
    ``target`` records. Back (``back``), ``relation`` is a field of ``target``
    holding ids of the level's records.
    """

    relation: RelationField
    target: Collection
    rule: RuleFilter
    back: bool = False
    #: Whether the segment expands to a list rather than one record.
    multiple: bool = False


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
    #: For each parent (same order), the ids of its related records found, in order.
    links: list[list[str]] = field(default_factory=list)
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
    """What one level needs from one collection: ids, and back-relations into it."""

    target: Collection
    rule: RuleFilter
    ids: dict[str, None] = field(default_factory=dict)
    #: Per relation field of ``target`` (by name): the field and the parent ids it must hold.
    back: dict[str, tuple[RelationField, dict[str, None]]] = field(default_factory=dict)


@dataclass
class _Rows:
    """The viewable records one batch fetched, in insertion order."""

    records: list[Record]
    by_id: dict[str, Record]
    _referrers: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def referrers(self, relation: RelationField) -> dict[str, list[str]]:
        """Each id ``relation`` holds, to the ids of the records holding it (insertion order)."""
        index = self._referrers.get(relation.name)
        if index is None:
            index = self._referrers[relation.name] = {}
            for record in self.records:
                for rid in relation.values_of(record.get(relation.name)):
                    index.setdefault(rid, []).append(record.id)
        return index


class _Expander:
    def __init__(self, app: App, info: RequestInfo) -> None:
        self.app = app
        self.info = info
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
        """What ``name`` names on ``coll``; ``None`` when a path through it fails."""
        back = BACK_RELATION.match(name) or LEGACY_BACK_RELATION.match(name)
        if back is not None:
            return self.bind_back(coll, back[1], back[2])
        fld = coll.field(name)
        if not isinstance(fld, RelationField) or fld.name != name:
            return None  # unknown, not a relation, or another case (PocketBase is exact)
        target = self.app.find_collection(fld.options["collectionId"])
        if target is None:
            return None
        rule = self.view_rule(target)
        return None if rule is None else _Binding(fld, target, rule, multiple=fld.multiple)

    def bind_back(self, coll: Collection, source_name: str, field_name: str) -> _Binding | None:
        """The relation ``field_name`` of ``source_name`` pointing to ``coll``, if any."""
        source = self.app.find_collection(source_name)
        fld = source.field(field_name) if source is not None else None
        if (
            source is None
            or not isinstance(fld, RelationField)
            or fld.name != field_name
            or fld.options["collectionId"] != coll.id
        ):
            return None
        rule = self.view_rule(source)
        if rule is None:
            return None
        # A unique index means at most one record points back: PocketBase then
        # expands that record alone, as if the back-relation were single.
        unique = any(
            idx.unique and len(idx.columns) == 1 and idx.columns[0].name.lower() == fld.name.lower()
            for idx in source.parsed_indexes()
        )
        return _Binding(fld, source, rule, back=True, multiple=not unique)

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
                    if bound.back:
                        name = bound.relation.name
                        _, wanted = batch.back.setdefault(name, (bound.relation, {}))
                        wanted.update(dict.fromkeys(record.id for record, _ in group))
                        continue
                    for record, _ in group:
                        for rid in bound.relation.values_of(record.get(bound.relation.name)):
                            if rid not in batch.ids and budget > 0:
                                batch.ids[rid] = None
                                budget -= 1
            # Back-relations get what forward ids left of the budget, batch by batch.
            fetched: dict[str, _Rows] = {}
            for cid, batch in batches.items():
                rows = fetched[cid] = await self.fetch(self.app.db, batch, budget)
                if batch.back:
                    budget -= sum(1 for r in rows.records if r.id not in batch.ids)
            level = []
            for node, bound in active:
                rows = fetched[bound.target.id]
                if bound.back:
                    referrers = rows.referrers(bound.relation)
                    node.links = [referrers.get(record.id, []) for record, _ in node.parents]
                else:
                    relation = bound.relation
                    node.links = [
                        [
                            rid
                            for rid in relation.values_of(record.get(relation.name))
                            if rid in rows.by_id
                        ]
                        for record, _ in node.parents
                    ]
                for ids in node.links:
                    for rid in ids:
                        if rid not in node.found:
                            related = rows.by_id[rid]
                            item = record_json(related, self.info.auth)
                            node.found[rid] = (related, item)
                level.append((bound.target, list(node.found.values()), node.children))

    async def fetch(self, ex: Executor, batch: _Batch, budget: int) -> _Rows:
        """The batch's records the caller may view, in insertion order, in one query.

        Every wanted id is read; back-relations add at most ``budget`` more
        records, the first inserted.
        """
        if not batch.ids and (not batch.back or budget <= 0):
            return _Rows([], {})
        dialect = dialect_of(ex)
        q = dialect.quote
        table = q(batch.target.name)
        id_col = f"{table}.{q('id')}"
        rowid = f"{table}.{dialect.rowid}"
        columns = ", ".join(f"{table}.{q(f.name)}" for f in batch.target.fields)
        ids = tuple(batch.ids)
        terms: list[str] = []
        params: tuple[Any, ...] = ()
        if ids:
            terms.append(f"{id_col} IN ({_marks(len(ids))})")
            params += ids
        if budget > 0:
            for relation, wanted in batch.back.values():
                terms.append(_holds(dialect, f"{table}.{q(relation.name)}", relation, len(wanted)))
                params += tuple(wanted)
        sql = f"SELECT {columns}, {rowid} FROM {table} WHERE ({' OR '.join(terms)})"
        if batch.rule.sql:
            sql += f" AND ({batch.rule.sql})"
            params += batch.rule.params
        if batch.back and budget > 0:
            # Wanted ids first, so the limit only ever cuts back-related records.
            order = rowid
            if ids:
                order = f"CASE WHEN {id_col} IN ({_marks(len(ids))}) THEN 0 ELSE 1 END, {rowid}"
                params += ids
            sql += f" ORDER BY {order} LIMIT ?"
            params += (len(ids) + budget,)
        rows = sorted(await ex.fetch_all(sql, params), key=lambda row: row[-1])
        records = [from_row(batch.target, row[:-1]) for row in rows]
        return _Rows(records, {r.id: r for r in records})


def _marks(count: int) -> str:
    return ", ".join("?" for _ in range(count))


def _holds(dialect: Dialect, column: str, relation: RelationField, count: int) -> str:
    """SQL true when ``column`` (of ``relation``) holds one of ``count`` bound ids."""
    marks = _marks(count)
    if not relation.multiple:
        return f"{column} IN ({marks})"
    if dialect.name == "postgres":
        each = f"jsonb_array_elements_text({column}) AS je(value)"
        return f"EXISTS (SELECT 1 FROM {each} WHERE je.value IN ({marks}))"
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value IN ({marks}))"


def _assign(nodes: dict[str, _Node]) -> None:
    for node in nodes.values():
        bound = node.binding
        if bound is None or not node.kept():
            continue
        for (_, item), ids in zip(node.parents, node.links, strict=True):
            expand: Item = item.setdefault("expand", {})
            related = [node.found[rid][1] for rid in ids]
            if related:
                expand[node.name] = related if bound.multiple else related[0]
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
