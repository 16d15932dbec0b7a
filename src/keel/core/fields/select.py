"""Select fields: one value from a list, or several when ``maxSelect > 1``."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from keel.core.errors import FieldError
from keel.core.fields.base import Field, required_error, type_error
from keel.query.dialect import ColumnKind


def as_string_list(value: Any) -> list[str]:
    """Input for multi-valued fields: a list of strings, one string, or nothing."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v != ""]
    raise type_error("a string or a list of strings")


def unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


class MultiValueField(Field):
    """Shared storage and modifiers of select and relation fields."""

    @property
    def multiple(self) -> bool:
        return int(self.options["maxSelect"] or 0) > 1

    def column_kind(self) -> ColumnKind:
        return "json" if self.multiple else "text"

    def zero(self) -> Any:
        return [] if self.multiple else ""

    def normalize(self, value: Any) -> Any:
        values = unique(as_string_list(value))
        if self.multiple:
            return values
        if len(values) > 1:
            raise FieldError(
                "validation_too_many_values", "Select no more than 1.", {"maxSelect": 1}
            )
        return values[0] if values else ""

    def to_db(self, value: Any) -> Any:
        return orjson.dumps(value).decode() if self.multiple else value

    def from_db(self, value: Any) -> Any:
        if not self.multiple:
            if value is None:
                return ""
            if isinstance(value, str) and value.startswith("["):
                # A field switched from multi to single keeps its last value.
                items = _load_list(value)
                return items[-1] if items else ""
            return value
        if value is None or value == "":
            return []
        if isinstance(value, str) and not value.startswith("["):
            return [value]
        return _load_list(value)

    def values_of(self, value: Any) -> list[str]:
        """The selected values as a list, whatever the cardinality."""
        if isinstance(value, list):
            return value
        return [value] if value else []

    def input_values(self, value: Any) -> list[str]:
        """Input for modifiers as a list of strings.

        Raises:
            FieldError: neither a string nor a list of strings.
        """
        return as_string_list(value)

    def modify(self, current: Any, op: str, value: Any) -> Any:
        items = self.values_of(current)
        change = self.input_values(value)
        if op == "+":
            items = items + change
        elif op == "^":
            items = change + items
        else:
            items = [v for v in items if v not in set(change)]
        items = unique(items)
        if self.multiple:
            return items
        return items[-1] if items else ""

    def check_count(self, values: list[str]) -> None:
        if not values:
            if self.required:
                raise required_error()
            return
        limit = max(int(self.options["maxSelect"] or 1), 1)
        if len(values) > limit:
            raise FieldError(
                "validation_too_many_values", f"Select no more than {limit}.", {"maxSelect": limit}
            )


def _load_list(text: Any) -> list[str]:
    try:
        loaded = orjson.loads(text)
    except orjson.JSONDecodeError:
        return [text] if text else []
    if isinstance(loaded, list):
        return [str(v) for v in loaded]
    return [str(loaded)] if loaded not in (None, "") else []


class SelectField(MultiValueField):
    type = "select"
    OPTIONS: ClassVar[dict[str, Any]] = {"required": False, "maxSelect": 0, "values": []}

    def check_options(self) -> dict[str, FieldError]:
        errors: dict[str, FieldError] = {}
        values = self.options["values"]
        if not values:
            errors["values"] = FieldError("validation_required", "Cannot be blank.")
        elif len(set(values)) != len(values):
            errors["values"] = FieldError(
                "validation_duplicated_values", "The values must be unique."
            )
        if self.options["maxSelect"] < 0 or (values and self.options["maxSelect"] > len(values)):
            errors["maxSelect"] = FieldError(
                "validation_max_less_equal_than_required", f"Must be no greater than {len(values)}."
            )
        return errors

    def validate(self, value: Any) -> None:
        values = self.values_of(value)
        self.check_count(values)
        allowed = set(self.options["values"])
        for item in values:
            if item not in allowed:
                raise FieldError(
                    "validation_invalid_value", f"Invalid value {item}.", {"value": item}
                )
