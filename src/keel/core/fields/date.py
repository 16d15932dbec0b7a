"""Date and autodate fields, stored as ``YYYY-MM-DD HH:MM:SS.mmmZ`` UTC text.

That text sorts in time order, so comparisons and ``ORDER BY`` work the same
on every engine.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

from keel.core.errors import FieldError
from keel.core.fields.base import Field, required_error, type_error


def format_datetime(moment: datetime) -> str:
    """PocketBase's date text for an aware or UTC-naive datetime."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    # Without its zone, isoformat ends at the time, truncated to
    # milliseconds as PocketBase does.
    return moment.replace(tzinfo=None).isoformat(" ", "milliseconds") + "Z"


def now_text() -> str:
    """The current time as PocketBase's date text (every record write stamps it)."""
    # Twice per record write (its dates, its outbox event): the date and time
    # to the second are formatted once per second, the milliseconds
    # (truncated, as isoformat does) each time.
    moment = time.time()
    second = int(moment)
    return f"{_second_text(second)}.{int((moment - second) * 1000):03d}Z"


@functools.lru_cache(maxsize=2)
def _second_text(second: int) -> str:
    return format_datetime(datetime.fromtimestamp(second, UTC))[:19]


def parse_datetime(text: str) -> datetime:
    """Parse the date forms PocketBase accepts (ISO 8601, space or ``T``).

    Raises:
        ValueError: not a date.
    """
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def normalize_date(value: Any) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise type_error("a date string")
    try:
        return format_datetime(parse_datetime(value))
    except (ValueError, OverflowError):  # e.g. year 9999 moved past UTC
        raise FieldError("validation_invalid_date", "Must be a valid date.") from None


class DateField(Field):
    type = "date"
    OPTIONS: ClassVar[dict[str, Any]] = {"required": False, "min": "", "max": ""}

    def check_options(self) -> dict[str, FieldError]:
        errors: dict[str, FieldError] = {}
        for key in ("min", "max"):
            try:
                self.options[key] = normalize_date(self.options[key])
            except FieldError as exc:
                errors[key] = exc
        return errors

    def normalize(self, value: Any) -> str:
        return normalize_date(value)

    def validate(self, value: Any) -> None:
        if value == "":
            if self.required:
                raise required_error()
            return
        low, high = self.options["min"], self.options["max"]
        if low and value < low:
            raise FieldError(
                "validation_min_greater_equal_than_required",
                f"Must be no less than {low}.",
                {"min": low},
            )
        if high and value > high:
            raise FieldError(
                "validation_max_less_equal_than_required",
                f"Must be no greater than {high}.",
                {"max": high},
            )


class AutodateField(Field):
    """Set by the server on create and/or update; client input is ignored."""

    type = "autodate"
    OPTIONS: ClassVar[dict[str, Any]] = {"onCreate": False, "onUpdate": False}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        merged = super().defaults()
        del merged["help"]  # PocketBase's autodate has no help text
        return merged

    def check_options(self) -> dict[str, FieldError]:
        if not self.options["onCreate"] and not self.options["onUpdate"]:
            missing = FieldError("validation_required", "Cannot be blank.")
            return {"onCreate": missing, "onUpdate": missing}
        return {}

    def normalize(self, value: Any) -> str:
        return normalize_date(value)
