"""File fields: names of files kept in the file storage, one or several.

A record holds only server-made file names; the bytes live in the file storage
under ``<collectionId>/<recordId>/<name>``. An upload arrives as an
:class:`Upload`; :mod:`keel.core.files` checks and stores it and puts a
:class:`PendingFile` (a name that remembers it is new) in the body, so the
usual value machinery (plain values, ``+``/``-`` modifiers, ``maxSelect``)
handles new and kept files alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar

from keel.core.errors import FieldError
from keel.core.fields.select import MultiValueField, unique

#: PocketBase's size limit of one file when ``maxSize`` is 0 (5 MiB).
DEFAULT_MAX_SIZE = 5 << 20


@dataclass
class Upload:
    """A file part of a multipart request body, already spooled by the HTTP layer."""

    filename: str
    file: BinaryIO
    size: int
    content_type: str


class PendingFile(str):
    """The stored name of a file uploaded by the current request."""

    __slots__ = ()


class FileField(MultiValueField):
    type = "file"
    OPTIONS: ClassVar[dict[str, Any]] = {
        "required": False,
        "maxSelect": 0,
        "maxSize": 0,
        "mimeTypes": [],
        "thumbs": [],
        "protected": False,
    }

    @property
    def max_size(self) -> int:
        return int(self.options["maxSize"] or 0) or DEFAULT_MAX_SIZE

    def check_options(self) -> dict[str, FieldError]:
        from keel.storage.files.thumb import parse_thumb

        errors: dict[str, FieldError] = {}
        for key in ("maxSelect", "maxSize"):
            if self.options[key] < 0:
                errors[key] = FieldError(
                    "validation_min_greater_equal_than_required", "Must be no less than 0."
                )
        for spec in self.options["thumbs"]:
            try:
                parse_thumb(spec)
            except ValueError:
                errors["thumbs"] = FieldError(
                    "validation_invalid_thumb_format", f"Invalid thumb format {spec!r}."
                )
        return errors

    def normalize(self, value: Any) -> Any:
        if isinstance(value, Upload):
            raise FieldError("validation_invalid_file", "The upload was not processed.")
        values = unique(_names(value))
        if self.multiple:
            return values
        if not values:
            return ""
        # A new upload to a single-file field replaces the current file.
        return values[-1] if isinstance(values[-1], PendingFile) else _single(values)

    def input_values(self, value: Any) -> list[str]:
        # Names keep their type: a PendingFile must stay one through modifiers.
        return _names(value)

    def validate(self, value: Any) -> None:
        self.check_count(self.values_of(value))


def _names(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v != ""]
    raise FieldError("validation_invalid_type", "Invalid value type, expected file names.")


def _single(values: list[str]) -> str:
    if len(values) > 1:
        raise FieldError("validation_too_many_values", "Select no more than 1.", {"maxSelect": 1})
    return values[0]
