"""JSON field: any JSON value, stored as JSON text (JSONB on PostgreSQL)."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from keel.core.errors import FieldError
from keel.core.fields.base import Field, required_error
from keel.query.dialect import ColumnKind

DEFAULT_JSON_MAX_SIZE = 1 << 20


class JSONField(Field):
    type = "json"
    OPTIONS: ClassVar[dict[str, Any]] = {"required": False, "maxSize": 0}

    def check_options(self) -> dict[str, FieldError]:
        if self.options["maxSize"] < 0:
            return {
                "maxSize": FieldError(
                    "validation_min_greater_equal_than_required", "Must be no less than 0."
                )
            }
        return {}

    def column_kind(self) -> ColumnKind:
        return "json"

    def zero(self) -> Any:
        return None

    def normalize(self, value: Any) -> Any:
        if isinstance(value, str):
            # As in PocketBase, a string holding JSON is parsed (form fields
            # always arrive as text); other text is kept as a JSON string.
            try:
                return orjson.loads(str(value))
            except orjson.JSONDecodeError:
                return str(value)
        return value

    def validate(self, value: Any) -> None:
        if self.required and value in (None, "", [], {}):
            raise required_error()
        limit = self.options["maxSize"] or DEFAULT_JSON_MAX_SIZE
        if len(orjson.dumps(value)) > limit:
            raise FieldError(
                "validation_json_size_limit",
                f"The maximum allowed JSON size is {limit} bytes.",
                {"maxSize": limit},
            )

    def to_db(self, value: Any) -> Any:
        return None if value is None else orjson.dumps(value).decode()

    def from_db(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, (bytes, str)):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                return value
        return value
