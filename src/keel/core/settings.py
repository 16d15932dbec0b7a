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
    #: Never shown by the API (passwords); an empty value sent keeps the stored one.
    secret: bool = False


def _matches(
    pattern: re.Pattern[str], message: str, code: str
) -> Callable[[Any], FieldError | None]:
    def check(value: Any) -> FieldError | None:
        if value and not pattern.match(value):
            return FieldError(code, message)
        return None

    return check


_AUTH_METHOD = re.compile(r"^(PLAIN|LOGIN)$")
#: Rate limit audiences: everyone, guests only, authenticated callers only.
AUDIENCES = ("", "@guest", "@auth")
#: PocketBase's default rules; labels are a path prefix, optionally after a
#: method (``POST /api/…``), or ``*:<action>`` / ``<collection>:<action>`` with
#: an action of auth, create, list, view, update or delete.
DEFAULT_RATE_RULES: list[dict[str, Any]] = [
    {"label": "*:auth", "audience": "", "duration": 3, "maxRequests": 2},
    {"label": "*:create", "audience": "", "duration": 5, "maxRequests": 20},
    {"label": "/api/batch", "audience": "", "duration": 1, "maxRequests": 3},
    {"label": "/api/", "audience": "", "duration": 10, "maxRequests": 300},
]
_LABEL = re.compile(
    r"^((GET|POST|PATCH|PUT|DELETE|HEAD) )?/\S*$"
    r"|^[A-Za-z0-9_*]+:(auth|create|list|view|update|delete)$"
)


def _check_strings(value: Any) -> FieldError | None:
    if not all(isinstance(v, str) and v for v in value):
        return FieldError("validation_invalid_value", "Must be a list of non-empty strings.")
    return None


def _check_rate_rules(value: Any) -> FieldError | None:
    for rule in value:
        if (
            not isinstance(rule, dict)
            or set(rule) - {"label", "audience", "duration", "maxRequests"}
            or not isinstance(rule.get("label"), str)
            or not _LABEL.match(rule["label"])
            or rule.get("audience", "") not in AUDIENCES
            or not _positive_int(rule.get("duration"))
            or not _positive_int(rule.get("maxRequests"))
        ):
            return FieldError(
                "validation_invalid_rate_limit_rule",
                "Each rule needs a label (path or <collection>:<action>), an audience "
                "('', '@guest' or '@auth') and positive duration and maxRequests.",
            )
    return None


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


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
    "smtp": {
        "enabled": Key(bool, False),
        "host": Key(str, "smtp.example.com"),
        "port": Key(int, 587, minimum=1),
        "username": Key(str, ""),
        "password": Key(str, "", secret=True),
        "authMethod": Key(
            str,
            "",
            check=_matches(_AUTH_METHOD, "Must be PLAIN or LOGIN.", "validation_in_invalid"),
        ),
        "tls": Key(bool, False),
        "localName": Key(str, ""),
    },
    "rateLimits": {
        "enabled": Key(bool, False),
        "rules": Key(list, DEFAULT_RATE_RULES, check=_check_rate_rules),
        "excludedIPs": Key(list, [], check=_check_strings),
    },
    "trustedProxy": {
        "headers": Key(list, [], check=_check_strings),
        "useLeftmostIP": Key(bool, False),
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
            if spec.secret and value == "":
                continue  # the API never shows secrets, so clients send them back blank
            problem = _check(spec, value)
            if problem is not None:
                section_errors[key] = problem
            else:
                result[section][key] = copy.deepcopy(value)
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


def public_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as the API shows them: secrets left out."""
    out = copy.deepcopy(settings)
    for section, keys in SCHEMA.items():
        for key, spec in keys.items():
            if spec.secret:
                out.get(section, {}).pop(key, None)
    return out
