"""The ``Field`` base class: options, validation and the SQL column it maps to.

A field turns raw request input into a canonical Python value
(:meth:`Field.normalize`), checks it against its options
(:meth:`Field.validate`), and converts it to and from the database
(:meth:`Field.to_db`, :meth:`Field.from_db`). Option validation for the
collections API lives here too, so every field type reports errors the same way.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from keel.core.errors import FieldError
from keel.query.dialect import ColumnKind

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_NAME_LENGTH = 100

COMMON_OPTIONS: dict[str, Any] = {
    "help": "",
    "hidden": False,
    "presentable": False,
    "system": False,
}


def required_error() -> FieldError:
    return FieldError("validation_required", "Cannot be blank.")


def type_error(expected: str) -> FieldError:
    return FieldError("validation_invalid_type", f"Invalid value type, expected {expected}.")


class Field:
    """One column of a collection.

    Subclasses declare ``type``, their type-specific ``OPTIONS`` (name →
    default) and override the value hooks.

    Attributes:
        id: stable identifier; renames keep it, so data follows the field.
        name: the column and JSON key.
        options: every option, common and type-specific, with defaults filled.
    """

    type: ClassVar[str] = ""
    OPTIONS: ClassVar[dict[str, Any]] = {}
    #: Options the value may be ``None`` for.
    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, name: str, id: str = "", **options: Any) -> None:
        self.name = name
        self.id = id
        merged = self.defaults()
        merged.update(options)
        self.options: dict[str, Any] = merged

    # -- options ----------------------------------------------------------------

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every option of this type with its default value."""
        merged = dict(COMMON_OPTIONS)
        merged.update(cls.OPTIONS)
        return merged

    def __getattr__(self, key: str) -> Any:
        options = self.__dict__.get("options")
        if options is not None and key in options:
            return options[key]
        raise AttributeError(key)

    @property
    def hidden(self) -> bool:
        return bool(self.options["hidden"])

    @property
    def system(self) -> bool:
        return bool(self.options["system"])

    @property
    def required(self) -> bool:
        return bool(self.options.get("required", False))

    def to_json(self) -> dict[str, Any]:
        """The field as the collections API shows it."""
        out: dict[str, Any] = {"id": self.id, "name": self.name, "type": self.type}
        out.update(self.options)
        return out

    def option_errors(self) -> dict[str, FieldError]:
        """Check option types and ranges; per-option errors, empty when valid."""
        errors: dict[str, FieldError] = {}
        defaults = self.defaults()
        for key, default in defaults.items():
            value = self.options.get(key)
            if value is None and key in self.NULLABLE:
                continue
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, (int, float)) or key in self.NULLABLE:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            elif isinstance(default, str):
                ok = isinstance(value, str)
            elif isinstance(default, list):
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            else:
                ok = True
            if not ok:
                errors[key] = FieldError("validation_invalid_value", "Invalid value.")
        for key in self.options:
            if key not in defaults:
                errors[key] = FieldError("validation_unknown_option", "Unknown field option.")
        if not errors:
            errors.update(self.check_options())
        return errors

    def check_options(self) -> dict[str, FieldError]:
        """Type-specific option checks, run after the type checks passed."""
        return {}

    # -- storage ----------------------------------------------------------------

    def column_kind(self) -> ColumnKind:
        """The abstract column kind this field is stored in."""
        return "text"

    def zero(self) -> Any:
        """The value of an unset field, as the API shows it."""
        return ""

    def to_db(self, value: Any) -> Any:
        """Convert a canonical value to what the driver stores."""
        return value

    def from_db(self, value: Any) -> Any:
        """Convert a stored value back to its canonical (API) form."""
        return self.zero() if value is None else value

    # -- values -----------------------------------------------------------------

    def normalize(self, value: Any) -> Any:
        """Turn raw input (JSON or form text) into the canonical value.

        Raises:
            FieldError: the input has a type this field cannot hold.
        """
        return value

    def validate(self, value: Any) -> None:
        """Check a canonical value against the options.

        Raises:
            FieldError: the first rule the value breaks.
        """

    def is_empty(self, value: Any) -> bool:
        return value in (None, "", 0, False, [], {})

    def modify(self, current: Any, op: str, value: Any) -> Any:
        """Apply an update modifier (``+`` append/add, ``^`` prepend, ``-`` remove).

        Raises:
            FieldError: this field type takes no modifiers.
        """
        raise FieldError(
            "validation_invalid_modifier", f"The {self.type} field doesn't support modifiers."
        )
