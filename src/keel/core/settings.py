"""Runtime settings an administrator edits through ``/api/settings``.

They are stored as one JSON document in ``_params`` (id ``settings``). Each
section has a schema of typed keys; later capabilities add their sections.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keel.core.errors import FieldError, ValidationError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_COLOR = re.compile(r"^#[0-9a-fA-F]{3,8}$")


@dataclass(frozen=True, slots=True)
class Key:
    """One setting: its type, default, and extra check."""

    kind: type
    default: Any
    required: bool = False
    minimum: int | None = None
    check: Callable[[Any], FieldError | None] | None = None


def _matches(
    pattern: re.Pattern[str], message: str, code: str
) -> Callable[[Any], FieldError | None]:
    def check(value: Any) -> FieldError | None:
        if value and not pattern.match(value):
            return FieldError(code, message)
        return None

    return check


SCHEMA: dict[str, dict[str, Key]] = {
    "meta": {
        "appName": Key(str, "Acme", required=True),
        "appURL": Key(
            str,
            "http://localhost:8090",
            required=True,
            check=_matches(_URL, "Must be a valid url.", "validation_is_url"),
        ),
        "senderName": Key(str, "Support", required=True),
        "senderAddress": Key(
            str,
            "support@example.com",
            required=True,
            check=_matches(_EMAIL, "Must be a valid email address.", "validation_is_email"),
        ),
        "hideControls": Key(bool, False),
        "accentColor": Key(
            str,
            "#1055c9",
            check=_matches(_COLOR, "Must be a valid hex color.", "validation_invalid_color"),
        ),
    },
    "batch": {
        "enabled": Key(bool, False),
        "maxRequests": Key(int, 50, minimum=0),
        "timeout": Key(int, 3, minimum=0),
        "maxBodySize": Key(int, 0, minimum=0),
    },
}


def default_settings() -> dict[str, Any]:
    return {
        section: {k: copy.deepcopy(v.default) for k, v in keys.items()}
        for section, keys in SCHEMA.items()
    }


def merge_settings(current: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply a partial update to ``current`` and validate the result.

    Raises:
        ValidationError: unknown sections or keys, wrong types, out-of-range values.
    """
    message = "An error occurred while saving the new settings."
    if not isinstance(patch, dict):
        raise ValidationError("Failed to load the submitted data due to invalid formatting.", {})
    result = copy.deepcopy(current)
    errors: dict[str, Any] = {}
    for section, values in patch.items():
        keys = SCHEMA.get(section)
        if keys is None:
            errors[section] = FieldError("validation_unknown_setting", "Unknown settings section.")
            continue
        if not isinstance(values, dict):
            errors[section] = FieldError("validation_invalid_value", "Must be an object.")
            continue
        section_errors: dict[str, FieldError] = {}
        for key, value in values.items():
            spec = keys.get(key)
            if spec is None:
                section_errors[key] = FieldError("validation_unknown_setting", "Unknown setting.")
                continue
            problem = _check(spec, value)
            if problem is not None:
                section_errors[key] = problem
            else:
                result[section][key] = value
        if section_errors:
            errors[section] = section_errors
    if errors:
        raise ValidationError(message, errors)
    return result


def _check(spec: Key, value: Any) -> FieldError | None:
    if spec.kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, spec.kind)
    if not ok:
        return FieldError("validation_invalid_value", f"Must be a {spec.kind.__name__}.")
    if spec.required and value in ("", None):
        return FieldError("validation_required", "Cannot be blank.")
    if spec.minimum is not None and value < spec.minimum:
        return FieldError(
            "validation_min_greater_equal_than_required",
            f"Must be no less than {spec.minimum}.",
            {"threshold": spec.minimum},
        )
    return spec.check(value) if spec.check else None


def load_settings(stored: dict[str, Any] | None) -> dict[str, Any]:
    """Stored settings over the defaults (new keys get their default)."""
    result = default_settings()
    for section, values in (stored or {}).items():
        if section in result and isinstance(values, dict):
            result[section].update({k: v for k, v in values.items() if k in result[section]})
    return result
