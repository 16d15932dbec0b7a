"""Applying a request body to a record: values, modifiers, defaults, validation.

Used by create and update alike. The body is a mapping from the JSON body or
the multipart form; keys are field names, optionally with a modifier:
``name+`` appends (or adds), ``+name`` prepends, ``name-`` removes (or
subtracts). Plain values are applied before modifiers, as PocketBase does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keel.core.collection import Collection
from keel.core.errors import FieldError, ValidationError
from keel.core.fields.base import Field
from keel.core.fields.date import now_text
from keel.core.fields.text import generate
from keel.core.record import Record
from keel.security.password import Passwords

#: Body keys that are read-only record metadata; clients often send them back.
IGNORED_KEYS = frozenset({"collectionId", "collectionName", "expand"})


def _has_nul(value: Any) -> bool:
    """True when a string anywhere in ``value`` holds a NUL character.

    PostgreSQL cannot store NUL in text or JSONB; refusing it everywhere keeps
    both engines' behaviour the same.
    """
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


def _split_key(key: str) -> tuple[str, str]:
    if key.endswith("+"):
        return key[:-1], "+"
    if key.startswith("+"):
        return key[1:], "^"
    if key.endswith("-"):
        return key[:-1], "-"
    return key, ""


async def apply_body(
    coll: Collection,
    record: Record,
    body: dict[str, Any],
    *,
    creating: bool,
    message: str,
    passwords: Passwords,
    manager: bool = True,
) -> set[str]:
    """Apply ``body`` to ``record`` in place and validate the result.

    Args:
        manager: for auth collections, whether the caller may manage the record
            (superuser or ``manageRule``). Others cannot set ``verified``,
            change ``email`` (that goes through request-email-change) or change
            ``password`` without the right ``oldPassword``.

    Returns:
        The names of the fields the body changed.

    Raises:
        ValidationError: per-field errors, PocketBase-shaped.
    """
    errors: dict[str, Any] = {}
    plain: list[tuple[str, Any]] = []
    modifiers: list[tuple[str, str, Any]] = []
    if coll.is_auth:
        body = dict(body)
        await _guard_auth_fields(coll, record, body, creating, manager, passwords, errors)
    for key, value in body.items():
        if key in IGNORED_KEYS:
            continue
        name, op = _split_key(key)
        fld = coll.field(name)
        if fld is None:
            errors[key] = FieldError("validation_unknown_field", "Unknown field.")
            continue
        if _has_nul(value):
            errors[fld.name] = FieldError(
                "validation_invalid_value", "NUL characters are not allowed."
            )
            continue
        if fld.type == "autodate":
            continue  # set by the server, as in PocketBase
        if op:
            modifiers.append((fld.name, op, value))
        else:
            plain.append((fld.name, value))
    changed: set[str] = set()
    for name, value in plain:
        fld = coll.field(name)
        assert fld is not None
        if name == "id" and not creating:
            if value not in (None, "", record.id):
                errors["id"] = FieldError(
                    "validation_pk_change", "The record primary key cannot be changed."
                )
            continue
        try:
            record.data[name] = fld.normalize(value)
            changed.add(name)
        except FieldError as exc:
            errors[name] = exc
    for name, op, value in modifiers:
        fld = coll.field(name)
        assert fld is not None
        if name in errors:
            continue
        try:
            record.data[name] = fld.modify(record.data.get(name, fld.zero()), op, value)
            changed.add(name)
        except FieldError as exc:
            errors[name] = exc
    plan = _plan(coll)
    stamped = plan.stamped_on_create if creating else plan.stamped_on_update
    if stamped:
        now = now_text()
        for name in stamped:
            record.data[name] = now
    if creating:
        for name, pattern in plan.generated:
            if record.data.get(name, "") == "":
                record.data[name] = generate(pattern)
    for fld in plan.checked:
        if fld.name in errors:
            continue
        if fld.type == "password":
            if fld.name not in changed and not creating:
                continue
            if creating and fld.name not in changed:
                if fld.required:
                    errors[fld.name] = FieldError("validation_required", "Cannot be blank.")
                continue
        try:
            fld.validate(record.data.get(fld.name, fld.zero()))
        except FieldError as exc:
            errors[fld.name] = exc
    if errors:
        raise ValidationError(message, errors)
    for name in plan.passwords:
        if name in changed and record.data.get(name):
            record.data[name] = await passwords.hash(record.data[name])
    return changed


@dataclass(frozen=True, slots=True)
class _Plan:
    """What every write to one collection does after the body: stamps, ids, checks."""

    stamped_on_create: tuple[str, ...]
    stamped_on_update: tuple[str, ...]
    #: Text fields with an autogenerate pattern, and the pattern.
    generated: tuple[tuple[str, str], ...]
    #: Fields validated on every write (autodates are the server's own).
    checked: tuple[Field, ...]
    passwords: tuple[str, ...]


def _plan(coll: Collection) -> _Plan:
    def build() -> _Plan:
        fields = coll.fields
        autodates = [f for f in fields if f.type == "autodate"]
        return _Plan(
            stamped_on_create=tuple(f.name for f in autodates if f.options["onCreate"]),
            stamped_on_update=tuple(f.name for f in autodates if f.options["onUpdate"]),
            generated=tuple(
                (f.name, f.options["autogeneratePattern"])
                for f in fields
                if f.type == "text" and f.options["autogeneratePattern"]
            ),
            checked=tuple(f for f in fields if f.type != "autodate"),
            passwords=tuple(f.name for f in fields if f.type == "password"),
        )

    return coll.cached("write_plan", build)


MISMATCH = "Values don't match."


async def _guard_auth_fields(
    coll: Collection,
    record: Record,
    body: dict[str, Any],
    creating: bool,
    manager: bool,
    passwords: Passwords,
    errors: dict[str, Any],
) -> None:
    """Take the auth-only keys out of ``body`` and refuse what the caller may not set."""
    confirm = body.pop("passwordConfirm", None)
    old_password = body.pop("oldPassword", None)
    body.pop("tokenKey", None)  # server-managed: generated, renewed on password change
    if "password" in body and confirm != body["password"]:
        errors["passwordConfirm"] = (
            FieldError("validation_required", "Cannot be blank.")
            if confirm in (None, "")
            else FieldError("validation_values_mismatch", MISMATCH)
        )
    if manager:
        return
    for name in ("verified", "email"):
        if name not in body or (name == "email" and creating):
            continue
        fld = coll.field(name)
        assert fld is not None
        try:
            value = fld.normalize(body[name])
        except FieldError:
            continue  # reported with the other values
        if value != record.data.get(name, fld.zero()):
            errors[name] = FieldError("validation_values_mismatch", MISMATCH)
    if "password" in body and not creating:
        stored = str(record.data.get("password", ""))
        if not isinstance(old_password, str) or old_password == "":
            errors["oldPassword"] = FieldError("validation_required", "Cannot be blank.")
        elif not await passwords.verify(old_password, stored):
            errors["oldPassword"] = FieldError(
                "validation_invalid_old_password", "Missing or invalid old password."
            )


def blank_record(coll: Collection) -> Record:
    """A record with every field at its zero value."""
    return Record(coll, {f.name: f.zero() for f in coll.fields})
