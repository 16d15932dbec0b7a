"""Relation fields: ids of records in another collection.

Whether the ids exist is checked by the record layer, which has the database.
"""

from __future__ import annotations

from typing import Any, ClassVar

from keel.core.errors import FieldError
from keel.core.fields.select import MultiValueField


class RelationField(MultiValueField):
    type = "relation"
    OPTIONS: ClassVar[dict[str, Any]] = {
        "required": False,
        "collectionId": "",
        "cascadeDelete": False,
        "minSelect": 0,
        "maxSelect": 0,
    }

    def check_options(self) -> dict[str, FieldError]:
        errors: dict[str, FieldError] = {}
        if not self.options["collectionId"]:
            errors["collectionId"] = FieldError("validation_required", "Cannot be blank.")
        if self.options["minSelect"] < 0:
            errors["minSelect"] = FieldError(
                "validation_min_greater_equal_than_required", "Must be no less than 0."
            )
        if self.options["maxSelect"] < 0 or (
            self.options["maxSelect"] and self.options["maxSelect"] < self.options["minSelect"]
        ):
            errors["maxSelect"] = FieldError(
                "validation_min_greater_equal_than_required",
                f"Must be no less than {self.options['minSelect']}.",
            )
        return errors

    def validate(self, value: Any) -> None:
        values = self.values_of(value)
        self.check_count(values)
        minimum = int(self.options["minSelect"] or 0)
        if values and len(values) < minimum:
            raise FieldError(
                "validation_not_enough_values",
                f"Select at least {minimum}.",
                {"minSelect": minimum},
            )
