"""Number and bool fields."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from keel.core.errors import FieldError
from keel.core.fields.base import Field, required_error, type_error
from keel.query.dialect import ColumnKind

_TRUE = {"true", "1", "on", "yes", "t"}
_FALSE = {"false", "0", "off", "no", "f", ""}


MAX_SAFE = 2**53


def canonical_number(value: float) -> int | float:
    """Integral floats as ints, so ``5.0`` is shown as ``5`` like PocketBase does."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_SAFE:
        return int(value)
    return value


def checked_number(number: float) -> int | float:
    """A finite number within ±2^53 in canonical form.

    Raises:
        FieldError: NaN, infinity, or out of the range doubles hold exactly.
    """
    if isinstance(number, float) and not math.isfinite(number):
        raise FieldError("validation_not_a_number", "The value must be a finite number.")
    if abs(number) > MAX_SAFE:
        raise FieldError("validation_not_a_number", "The value is out of the safe number range.")
    return canonical_number(float(number)) if isinstance(number, float) else number


class NumberField(Field):
    type = "number"
    OPTIONS: ClassVar[dict[str, Any]] = {
        "required": False,
        "onlyInt": False,
        "min": None,
        "max": None,
    }
    NULLABLE = frozenset({"min", "max"})

    def check_options(self) -> dict[str, FieldError]:
        low, high = self.options["min"], self.options["max"]
        if low is not None and high is not None and high < low:
            return {
                "max": FieldError(
                    "validation_min_number_constraint",
                    f"Must be greater or equal than {canonical_number(float(low))}.",
                    {"min": low},
                )
            }
        return {}

    def column_kind(self) -> ColumnKind:
        return "number"

    def zero(self) -> Any:
        return 0

    def normalize(self, value: Any) -> int | float:
        """Numbers and numeric strings; anything else is a 400 (PocketBase stores 0)."""
        if value is None or value == "":
            return 0
        if isinstance(value, bool):
            raise type_error("a number")
        if isinstance(value, (int, float)):
            number: float | int = value
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise type_error("a number") from None
        else:
            raise type_error("a number")
        return checked_number(number)

    def validate(self, value: Any) -> None:
        if value == 0 and self.required:
            raise required_error()
        if self.options["onlyInt"] and isinstance(value, float):
            raise FieldError("validation_only_int_constraint", "Decimal numbers are not allowed.")
        low, high = self.options["min"], self.options["max"]
        if low is not None and value < low:
            raise FieldError(
                "validation_min_number_constraint",
                f"Must be greater or equal than {canonical_number(float(low))}.",
                {"min": low},
            )
        if high is not None and value > high:
            raise FieldError(
                "validation_max_number_constraint",
                f"Must be less or equal than {canonical_number(float(high))}.",
                {"max": high},
            )

    def to_db(self, value: Any) -> float:
        return float(value)

    def from_db(self, value: Any) -> Any:
        if value is None:
            return 0
        return canonical_number(float(value)) if isinstance(value, float) else value

    def modify(self, current: Any, op: str, value: Any) -> Any:
        if op == "^":
            return super().modify(current, op, value)
        delta = self.normalize(value)
        return checked_number(current + delta if op == "+" else current - delta)


class BoolField(Field):
    type = "bool"
    OPTIONS: ClassVar[dict[str, Any]] = {"required": False}

    def column_kind(self) -> ColumnKind:
        return "bool"

    def zero(self) -> Any:
        return False

    def normalize(self, value: Any) -> bool:
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise type_error("a boolean")

    def validate(self, value: Any) -> None:
        if self.required and not value:
            raise required_error()

    def to_db(self, value: Any) -> bool:
        return bool(value)

    def from_db(self, value: Any) -> bool:
        return bool(value)
