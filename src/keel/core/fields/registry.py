"""Field types by name, and building a field from its API JSON."""

from __future__ import annotations

from typing import Any

from keel.core.errors import FieldError
from keel.core.fields.base import Field
from keel.core.fields.date import AutodateField, DateField
from keel.core.fields.file import FileField
from keel.core.fields.json import JSONField
from keel.core.fields.number import BoolField, NumberField
from keel.core.fields.relation import RelationField
from keel.core.fields.select import SelectField
from keel.core.fields.text import EditorField, EmailField, PasswordField, TextField, URLField

FIELD_TYPES: dict[str, type[Field]] = {
    cls.type: cls
    for cls in (
        TextField,
        NumberField,
        BoolField,
        EmailField,
        URLField,
        EditorField,
        DateField,
        AutodateField,
        SelectField,
        JSONField,
        RelationField,
        PasswordField,
        FileField,
    )
}


def field_from_json(data: Any) -> Field:
    """Build a field from the collections API form.

    Raises:
        FieldError: not an object, or an unknown ``type``.
    """
    if not isinstance(data, dict):
        raise FieldError("validation_invalid_value", "Must be an object.")
    kind = data.get("type")
    cls = FIELD_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise FieldError(
            "validation_invalid_field_type", f"Invalid or unsupported field type {kind!r}."
        )
    options = {k: v for k, v in data.items() if k not in {"id", "name", "type"}}
    name = data.get("name", "")
    field_id = data.get("id", "")
    return cls(
        name if isinstance(name, str) else "",
        field_id if isinstance(field_id, str) else "",
        **options,
    )
