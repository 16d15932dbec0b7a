"""Collections: the schema of one table of records, its rules and indexes.

A collection is built from its API JSON (:func:`collection_from_json`), checked
against the other collections (:func:`validate_collection`), and stored as a
row of ``_collections``. The ``type`` is ``base`` or ``auth``; auth
collections always hold the system fields of :func:`auth_fields` and the
options of :mod:`keel.core.auth_options`.
"""

from __future__ import annotations

import re
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from keel.core.auth_options import default_auth_options, merge_auth_options, public_auth_options
from keel.core.errors import FieldError, ValidationError
from keel.core.fields.base import MAX_NAME_LENGTH, NAME_RE, Field
from keel.core.fields.date import AutodateField
from keel.core.fields.number import BoolField
from keel.core.fields.registry import field_from_json
from keel.core.fields.relation import RelationField
from keel.core.fields.text import EmailField, PasswordField, TextField
from keel.core.index import Index, parse_index

T = TypeVar("T")

RULES = ("listRule", "viewRule", "createRule", "updateRule", "deleteRule")
AUTH_RULES = ("authRule", "manageRule", "apiKeyRule")
COLLECTION_TYPES = ("base", "auth", "view")
CREATABLE_TYPES = ("base", "auth")

COLLECTION_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
COLLECTION_ID_RE = re.compile(r"^[A-Za-z0-9_]{3,100}$")
#: Names used by Keel's own tables or reserved by the engines.
RESERVED_TABLES = frozenset({"_collections", "_params", "_migrations"})
RESERVED_TABLE_PREFIXES = ("sqlite_", "pg_", "_keel")
#: Keys of a record body that are not fields; and column names engines reserve.
RESERVED_FIELD_NAMES = frozenset(
    {"expand", "collectionid", "collectionname", "rowid", "_rowid", "_rowid_", "oid"}
)


def id_field() -> TextField:
    """The primary key every collection starts with."""
    return TextField(
        "id",
        "text3208210256",
        system=True,
        required=True,
        primaryKey=True,
        min=15,
        max=15,
        pattern="^[a-z0-9]+$",
        autogeneratePattern="[a-z0-9]{15}",
    )


def auth_fields() -> list[Field]:
    """The system fields every auth collection has, with PocketBase's ids."""
    return [
        PasswordField(
            "password", "password901924565", system=True, hidden=True, required=True, min=8
        ),
        TextField(
            "tokenKey",
            "text2504183744",
            system=True,
            hidden=True,
            required=True,
            min=30,
            max=60,
            autogeneratePattern="[a-zA-Z0-9]{50}",
        ),
        EmailField("email", "email3885137012", system=True, required=True),
        BoolField("emailVisibility", "bool1547992806", system=True),
        BoolField("verified", "bool256245529", system=True),
    ]


def auth_indexes(coll_id: str, name: str) -> list[str]:
    """The unique indexes every auth collection has."""
    return [
        f"CREATE UNIQUE INDEX `idx_tokenKey_{coll_id}` ON `{name}` (`tokenKey`)",
        # Case-insensitive: sign-in, OTP and reset find accounts by email in
        # any case, so two accounts must never differ only by case.
        f"CREATE UNIQUE INDEX `idx_email_{coll_id}` ON `{name}` (`email` COLLATE NOCASE)",
    ]


def default_field_id(kind: str, name: str) -> str:
    """PocketBase's field id: the type and the CRC-32 of the name."""
    return f"{kind}{zlib.crc32(name.encode())}"


def new_collection_id() -> str:
    return "pbc_" + str(secrets.randbelow(9_000_000_000) + 1_000_000_000)


@dataclass
class Collection:
    """One collection: fields in order, rules, indexes and type options."""

    id: str
    name: str
    type: str = "base"
    system: bool = False
    fields: list[Field] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)
    rules: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(RULES))
    options: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    updated: str = ""

    def __post_init__(self) -> None:
        self._by_name: dict[str, Field] = {}
        #: Values derived from this schema (e.g. compiled SQL); a changed
        #: collection is a new object, so entries never go stale.
        self.cache: dict[str, Any] = {}
        self.reindex()

    def reindex(self) -> None:
        """Rebuild lookups after ``fields`` changed."""
        self._by_name = {f.name.lower(): f for f in self.fields}
        self.cache = {}

    def cached(self, key: str, build: Callable[[], T]) -> T:
        """What ``build`` makes from this schema, made on first use and kept in ``cache``."""
        if key in self.cache:
            value: T = self.cache[key]
            return value
        made = self.cache[key] = build()
        return made

    def field(self, name: str) -> Field | None:
        """The field called ``name`` (case-insensitive, like SQLite columns)."""
        return self._by_name.get(name.lower())

    @property
    def is_auth(self) -> bool:
        return self.type == "auth"

    def parsed_indexes(self) -> list[Index]:
        return [parse_index(text) for text in self.indexes]

    def relations(self) -> list[RelationField]:
        return [f for f in self.fields if isinstance(f, RelationField)]

    def to_json(self) -> dict[str, Any]:
        """The collection as the collections API shows it."""
        out: dict[str, Any] = {"id": self.id}
        out.update(self.rules)
        out.update(
            {
                "name": self.name,
                "type": self.type,
                "fields": [f.to_json() for f in self.fields],
                "indexes": list(self.indexes),
                "created": self.created,
                "updated": self.updated,
                "system": self.system,
            }
        )
        if self.is_auth:
            out.update(public_auth_options(self.options))
        return out

    def to_storage(self) -> dict[str, Any]:
        """Everything needed to rebuild the collection, secrets included."""
        out = self.to_json()
        out["options"] = self.options
        return out


def collection_from_storage(data: dict[str, Any]) -> Collection:
    """Rebuild a collection from :meth:`Collection.to_storage` (trusted input)."""
    return Collection(
        id=data["id"],
        name=data["name"],
        type=data.get("type", "base"),
        system=bool(data.get("system", False)),
        fields=[field_from_json(f) for f in data.get("fields", [])],
        indexes=list(data.get("indexes", [])),
        rules={r: data.get(r) for r in RULES},
        options=dict(data.get("options", {})),
        created=data.get("created", ""),
        updated=data.get("updated", ""),
    )


def _error(code: str, message: str) -> FieldError:
    return FieldError(code, message)


def collection_from_json(
    data: Any, existing: Collection | None = None
) -> tuple[Collection, dict[str, Any]]:
    """Build the collection a create (``existing is None``) or update asks for.

    Update semantics follow PocketBase: keys not sent keep their value, and a
    sent ``fields`` list replaces the whole list (fields are matched to the
    existing ones by ``id``, then by name, so renames keep their data).

    Returns:
        The new collection and the per-key errors found while building it.
    """
    errors: dict[str, Any] = {}
    if not isinstance(data, dict):
        raise ValidationError("Failed to load the submitted data due to invalid formatting.", {})
    base = existing
    coll = Collection(
        id=base.id if base else "",
        name=base.name if base else "",
        type=base.type if base else "base",
        system=base.system if base else False,
        fields=list(base.fields) if base else [],
        indexes=list(base.indexes) if base else [],
        rules=dict(base.rules) if base else dict.fromkeys(RULES),
        options=dict(base.options) if base else {},
        created=base.created if base else "",
        updated=base.updated if base else "",
    )
    if base is None:
        raw_id = data.get("id", "")
        if raw_id in (None, ""):
            coll.id = new_collection_id()
        elif not isinstance(raw_id, str) or not COLLECTION_ID_RE.match(raw_id):
            errors["id"] = _error("validation_match_invalid", "Must be in a valid format.")
        else:
            coll.id = raw_id
        kind = data.get("type", "base")
        if kind not in COLLECTION_TYPES:
            errors["type"] = _error("validation_in_invalid", "Must be a valid value.")
        elif kind not in CREATABLE_TYPES:
            errors["type"] = _error(
                "validation_unsupported_type",
                f"Collections of type {kind!r} are not supported yet.",
            )
        else:
            coll.type = kind
    elif "type" in data and data["type"] != base.type:
        errors["type"] = _error(
            "validation_collection_type_change", "Collection type cannot be changed."
        )

    if "name" in data or base is None:
        name = data.get("name")
        if not isinstance(name, str) or name == "":
            errors["name"] = _error("validation_required", "Cannot be blank.")
        elif base is not None and base.system and name != base.name:
            errors["name"] = _error(
                "validation_system_change", "System collections cannot be renamed."
            )
        else:
            coll.name = name

    if coll.is_auth:
        if base is None:
            coll.options = default_auth_options()
        coll.options = merge_auth_options(coll.options, data, errors)
    for rule in RULES + (AUTH_RULES if coll.is_auth else ()):
        if rule in data:
            value = data[rule]
            if value is not None and not isinstance(value, str):
                errors[rule] = _error("validation_invalid_value", "Must be a string or null.")
            elif rule in AUTH_RULES:
                coll.options[rule] = value
            else:
                coll.rules[rule] = value

    if "indexes" in data:
        indexes = data["indexes"]
        if indexes is None:
            indexes = []
        if not isinstance(indexes, list) or not all(isinstance(i, str) for i in indexes):
            errors["indexes"] = _error("validation_invalid_value", "Must be a list of strings.")
        else:
            coll.indexes = list(indexes)

    if "fields" in data or base is None:
        field_errors = _build_fields(coll, data.get("fields"), base)
        if field_errors:
            errors["fields"] = field_errors
    if coll.is_auth:
        _complete_auth(coll, errors)
    return coll, errors


def _complete_auth(coll: Collection, errors: dict[str, Any]) -> None:
    """Add the auth system fields and indexes a new auth collection lacks.

    Also checks that every identity field exists and has a unique index, so a
    password login can never match two records.
    """
    if not coll.id or not coll.name:
        return
    for system in auth_fields():
        current = coll.field(system.name)
        if current is None:
            coll.fields.append(system)
        elif current.type != system.type:
            errors.setdefault("fields", {})
            if isinstance(errors["fields"], dict):
                errors["fields"][str(coll.fields.index(current))] = FieldError(
                    "validation_reserved_auth_field",
                    f"{system.name!r} is a system field of auth collections (type {system.type}).",
                )
        elif not current.system:
            # Sent with the right type: it still gets the system definition
            # (hidden password, required email…), whatever options came along.
            coll.fields[coll.fields.index(current)] = system
    coll.reindex()
    present = {idx.lower() for idx in coll.indexes}
    for text in auth_indexes(coll.id, coll.name):
        name = text.split("`")[1].lower()
        if not any(name in idx for idx in present):
            coll.indexes.append(text)
    identity = coll.options.get("passwordAuth", {}).get("identityFields", [])
    unique: set[str] = set()
    for text in coll.indexes:
        try:
            idx = parse_index(text)
        except ValueError:
            continue
        if idx.unique and len(idx.columns) == 1:
            unique.add(idx.columns[0].name.lower())
    for name in identity:
        if coll.field(name) is None or name.lower() not in unique:
            errors.setdefault("passwordAuth", {})["identityFields"] = FieldError(
                "validation_missing_unique_index",
                f"The identity field {name!r} must exist and have a UNIQUE index.",
            )


def add_timestamps(coll: Collection) -> None:
    """New collections get ``created``/``updated`` autodate fields unless they name them.

    PocketBase's admin UI adds the same two fields to every new collection;
    like there, they are ordinary fields that a later update may remove.
    """
    for name, on_update in (("created", False), ("updated", True)):
        if coll.field(name) is None:
            coll.fields.append(
                AutodateField(
                    name, default_field_id("autodate", name), onCreate=True, onUpdate=on_update
                )
            )
    coll.reindex()


def _build_fields(
    coll: Collection, raw: Any, base: Collection | None
) -> dict[str, Any] | FieldError:
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        return _error("validation_invalid_value", "Must be a list of fields.")
    old_by_id = {f.id: f for f in base.fields} if base else {}
    old_by_name = {f.name.lower(): f for f in base.fields} if base else {}
    errors: dict[str, Any] = {}
    built: list[Field] = []
    # Error keys are positions in the final list, where the id field is first.
    offset = 0 if any(isinstance(r, dict) and r.get("name") == "id" for r in raw) else 1
    for i, item in enumerate(raw):
        try:
            fld = field_from_json(item)
        except FieldError as exc:
            if exc.code == "validation_invalid_field_type":
                # PocketBase cannot even load such a field list: a bare 400.
                raise ValidationError(
                    "Failed to load the submitted data due to invalid formatting.", {}
                ) from exc
            errors[str(i + offset)] = exc
            continue
        if not fld.id:
            match = old_by_name.get(fld.name.lower())
            if match is not None:
                fld.id = match.id  # a type change is reported below
        built.append(fld)
    # The primary key is always first; a user "id" field adjusts its options.
    pk = next((f for f in built if f.name == "id"), None)
    if pk is None:
        built.insert(0, old_by_id.get("text3208210256") or id_field())
    else:
        built.remove(pk)
        if not isinstance(pk, TextField):
            errors["0"] = _error("validation_invalid_value", "The id field must be a text field.")
        else:
            defaults = id_field().options
            for key in ("system", "required", "primaryKey"):
                pk.options[key] = defaults[key]
            pk.id = pk.id or "text3208210256"
        built.insert(0, pk)
    seen_ids: set[str] = set()
    seen_names: dict[str, int] = {}
    for i, fld in enumerate(built):
        key = str(i)
        if not fld.id:
            fld.id = default_field_id(fld.type, fld.name)
            n = 1
            while fld.id in seen_ids or (
                fld.id in old_by_id and old_by_id[fld.id].name != fld.name
            ):
                fld.id = f"{default_field_id(fld.type, fld.name)}_{n}"
                n += 1
        problem = _field_name_problem(fld)
        lname = fld.name.lower()
        if problem is not None:
            errors.setdefault(key, {})
            if isinstance(errors[key], dict):
                errors[key]["name"] = problem
        elif lname in seen_names:
            errors[key] = FieldError(
                "validation_duplicated_field_name",
                f"Duplicated or invalid field name {fld.name!r}.",
                {"fieldName": fld.name},
            )
        seen_names.setdefault(lname, i)
        if fld.id in seen_ids:
            errors.setdefault(key, {})
            if isinstance(errors[key], dict):
                errors[key]["id"] = _error("validation_duplicated_field_id", "Duplicated field id.")
        seen_ids.add(fld.id)
        old = old_by_id.get(fld.id)
        if old is not None and old.type != fld.type:
            errors[key] = _error("validation_field_type_change", "Field type cannot be changed.")
        elif old is not None and old.system and (old.name != fld.name):
            errors[key] = _error(
                "validation_system_field_change", "System fields cannot be renamed."
            )
        option_errors = fld.option_errors()
        if option_errors:
            current = errors.setdefault(key, {})
            if isinstance(current, dict):
                current.update(option_errors)
    if base is not None:
        kept = {f.id for f in built}
        for old in base.fields:
            if old.system and old.id not in kept:
                errors.setdefault(
                    "system",
                    _error(
                        "validation_system_field_change",
                        f"System field {old.name!r} cannot be removed.",
                    ),
                )
    coll.fields = built
    coll.reindex()
    return errors


def _field_name_problem(fld: Field) -> FieldError | None:
    name = fld.name
    if not name:
        return _error("validation_required", "Cannot be blank.")
    if len(name) > MAX_NAME_LENGTH or not NAME_RE.match(name):
        return _error("validation_match_invalid", "Must be in a valid format.")
    if name.lower() in RESERVED_FIELD_NAMES:
        return _error("validation_not_in_invalid", "Must not be in list.")
    return None


def validate_collection(
    coll: Collection, others: list[Collection], errors: dict[str, Any], message: str
) -> None:
    """Check a built collection against the rest of the schema.

    Raises:
        ValidationError: with every problem found, keyed like PocketBase's.
    """
    name = coll.name
    if "name" not in errors:
        lname = name.lower()
        if len(name) > 255 or not COLLECTION_NAME_RE.match(name):
            errors["name"] = _error("validation_match_invalid", "Must be in a valid format.")
        elif lname in RESERVED_TABLES or lname.startswith(RESERVED_TABLE_PREFIXES):
            errors["name"] = _error("validation_not_in_invalid", "The name is reserved.")
        elif any(o.name.lower() == lname for o in others):
            errors["name"] = _error(
                "validation_collection_name_exists",
                "Collection name must be unique (case insensitive).",
            )
    if "id" not in errors and any(o.id == coll.id for o in others):
        errors["id"] = _error("validation_collection_id_exists", "Collection id must be unique.")

    ids = {o.id for o in others} | {coll.id}
    field_errors = errors.get("fields")
    if not isinstance(field_errors, FieldError):
        for i, fld in enumerate(coll.fields):
            target = fld.options["collectionId"] if isinstance(fld, RelationField) else ""
            if not target or target in ids:
                continue
            fe = errors.setdefault("fields", {})
            slot = fe.setdefault(str(i), {}) if isinstance(fe, dict) else None
            if isinstance(slot, dict):
                slot["collectionId"] = _error(
                    "validation_missing_rel_collection", "The related collection doesn't exist."
                )

    index_errors: dict[str, FieldError] = {}
    other_index_names = {idx.name.lower() for o in others for idx in _safe_indexes(o)}
    seen: set[str] = set()
    for i, text in enumerate(coll.indexes):
        try:
            idx = parse_index(text)
        except ValueError as exc:
            index_errors[str(i)] = _error("validation_invalid_index_expression", str(exc))
            continue
        missing = [c.name for c in idx.columns if coll.field(c.name) is None]
        if missing:
            index_errors[str(i)] = _error(
                "validation_invalid_index_expression", f"Unknown column(s) {', '.join(missing)}."
            )
        elif idx.name.lower() in other_index_names or idx.name.lower() in seen:
            index_errors[str(i)] = _error(
                "validation_existing_index_name", "The index name must be unique."
            )
        seen.add(idx.name.lower())
    if index_errors:
        errors["indexes"] = index_errors
    if errors:
        raise ValidationError(message, errors)


def _safe_indexes(coll: Collection) -> list[Index]:
    out = []
    for text in coll.indexes:
        try:
            out.append(parse_index(text))
        except ValueError:
            continue
    return out
