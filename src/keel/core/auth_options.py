"""Options of auth collections: sign-in methods, token lifetimes, email templates.

They follow PocketBase's collection JSON (``passwordAuth``, ``otp``, ``mfa``,
``oauth2``, ``authToken``…). Secrets (token signing secrets, OAuth2 client
secrets) are kept in the stored options and never shown by the API. Keel adds
``apiKeyRule``: who may mint API keys acting as a record of the collection.
"""

from __future__ import annotations

import copy
from typing import Any

from keel.core.errors import FieldError
from keel.security.token import random_secret

#: Token kinds, their option key and default lifetime in seconds.
TOKEN_OPTIONS: dict[str, tuple[str, int]] = {
    "auth": ("authToken", 604800),
    "passwordReset": ("passwordResetToken", 1800),
    "emailChange": ("emailChangeToken", 1800),
    "verification": ("verificationToken", 259200),
    "file": ("fileToken", 180),
}
MIN_DURATION = 10
OTP_MIN_LENGTH, OTP_MAX_LENGTH = 4, 32
OAUTH2_PROVIDERS = ("oidc", "oidc2", "oidc3", "github", "google")
MAPPED_FIELDS = ("id", "name", "username", "avatarURL")


def _template(subject: str, lines: list[str]) -> dict[str, str]:
    body = "\n".join([*lines, "<p>\n  Thanks,<br/>\n  {APP_NAME} team\n</p>"])
    return {"subject": subject, "body": body}


def _link(path: str, label: str) -> str:
    return (
        f'<p>\n  <a class="btn" href="{{APP_URL}}/_/#/auth/{path}/{{TOKEN}}" '
        f'target="_blank" rel="noopener">{label}</a>\n</p>'
    )


TEMPLATES: dict[str, dict[str, str]] = {
    "verificationTemplate": _template(
        "Verify your {APP_NAME} email",
        [
            "<p>Hello,</p>",
            "<p>Thank you for joining us at {APP_NAME}.</p>",
            "<p>Click on the button below to verify your email address.</p>",
            _link("confirm-verification", "Verify"),
            "<p><i>If you didn't recently register, please ignore this email.</i></p>",
        ],
    ),
    "resetPasswordTemplate": _template(
        "Reset your {APP_NAME} password",
        [
            "<p>Hello,</p>",
            "<p>Click on the button below to reset your password.</p>",
            _link("confirm-password-reset", "Reset password"),
            "<p><i>If you didn't ask to reset your password, please ignore this email.</i></p>",
        ],
    ),
    "confirmEmailChangeTemplate": _template(
        "Confirm your {APP_NAME} new email address",
        [
            "<p>Hello,</p>",
            "<p>Click on the button below to confirm your new email address.</p>",
            _link("confirm-email-change", "Confirm new email"),
            "<p><i>If you didn't ask to change your email address, please ignore this "
            "email.</i></p>",
        ],
    ),
}
OTP_TEMPLATE = _template(
    "OTP for {APP_NAME}",
    [
        "<p>Hello,</p>",
        "<p>Your one-time password is: <strong>{OTP}</strong></p>",
        "<p><i>If you didn't ask for the one-time password, you can ignore this email.</i></p>",
    ],
)
ALERT_TEMPLATE = _template(
    "Login from a new location",
    [
        "<p>Hello,</p>",
        "<p>We noticed a login to your {APP_NAME} account from a new location:</p>",
        "<p><em>{ALERT_INFO}</em></p>",
        "<p><strong>If this wasn't you, you should immediately change your {APP_NAME} "
        "account password to revoke access from all other locations.</strong></p>",
        "<p>If this was you, you may disregard this email.</p>",
    ],
)


def default_auth_options() -> dict[str, Any]:
    """Every auth option with its default, fresh secrets included."""
    options: dict[str, Any] = {
        "authRule": "",
        "manageRule": None,
        "apiKeyRule": None,
        "authAlert": {"enabled": True, "emailTemplate": dict(ALERT_TEMPLATE)},
        "oauth2": {
            "providers": [],
            "mappedFields": dict.fromkeys(MAPPED_FIELDS, ""),
            "enabled": False,
        },
        "passwordAuth": {"enabled": True, "identityFields": ["email"]},
        "mfa": {"enabled": False, "duration": 1800, "rule": ""},
        "otp": {"enabled": False, "duration": 180, "length": 8, "emailTemplate": OTP_TEMPLATE},
    }
    for key, duration in TOKEN_OPTIONS.values():
        options[key] = {"duration": duration, "secret": random_secret(50)}
    options.update(copy.deepcopy(TEMPLATES))
    return copy.deepcopy(options)


def public_auth_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options as the collections API shows them: no secrets."""
    out: dict[str, Any] = {}
    defaults = default_auth_options()
    for key in defaults:
        value = copy.deepcopy(options.get(key, defaults[key]))
        if key in {k for k, _ in TOKEN_OPTIONS.values()}:
            value = {"duration": value.get("duration", 0)}
        elif key == "oauth2":
            value["providers"] = [
                {k: v for k, v in p.items() if k != "clientSecret"} for p in value["providers"]
            ]
        out[key] = value
    return out


def merge_auth_options(
    current: dict[str, Any], data: dict[str, Any], errors: dict[str, Any]
) -> dict[str, Any]:
    """Apply the auth option keys of a collections API body to ``current``.

    Sub-objects merge key by key; secrets are never taken from the body, and an
    OAuth2 provider sent without ``clientSecret`` keeps its stored one. Problems
    are added to ``errors`` under PocketBase's keys.
    """
    defaults = default_auth_options()
    result = copy.deepcopy(defaults)
    for key, value in current.items():
        result[key] = copy.deepcopy(value)
    for key in defaults:
        if key not in data or key in ("authRule", "manageRule", "apiKeyRule"):
            continue
        sent = data[key]
        if not isinstance(sent, dict):
            errors[key] = FieldError("validation_invalid_value", "Must be an object.")
            continue
        problem = _merge_section(key, result[key], sent, defaults[key])
        if problem:
            errors[key] = problem
    return result


def _merge_section(
    key: str, target: dict[str, Any], sent: dict[str, Any], default: dict[str, Any]
) -> dict[str, Any]:
    problems: dict[str, Any] = {}
    for name, value in sent.items():
        if name not in default or name == "secret":
            if name != "secret":
                problems[name] = FieldError("validation_unknown_option", "Unknown option.")
            continue
        expected = default[name]
        if name == "providers":
            providers, provider_problems = _providers(value, target.get("providers", []))
            if provider_problems:
                problems[name] = provider_problems
            else:
                target[name] = providers
            continue
        if isinstance(expected, dict):
            if not isinstance(value, dict) or not all(
                isinstance(v, str) and k in expected for k, v in value.items()
            ):
                problems[name] = FieldError("validation_invalid_value", "Invalid value.")
            else:
                target[name] = {**target.get(name, {}), **value}
            continue
        if not _same_type(expected, value):
            problems[name] = FieldError("validation_invalid_value", "Invalid value.")
            continue
        target[name] = value
    if problems:
        return problems
    if "duration" in target and target["duration"] < MIN_DURATION:
        problems["duration"] = _minimum(MIN_DURATION)
    if key == "otp" and not OTP_MIN_LENGTH <= target["length"] <= OTP_MAX_LENGTH:
        problems["length"] = (
            _minimum(OTP_MIN_LENGTH)
            if target["length"] < OTP_MIN_LENGTH
            else FieldError(
                "validation_max_less_equal_than_required",
                f"Must be no greater than {OTP_MAX_LENGTH}.",
                {"threshold": OTP_MAX_LENGTH},
            )
        )
    if key == "passwordAuth" and not all(
        isinstance(f, str) and f for f in target["identityFields"]
    ):
        problems["identityFields"] = FieldError("validation_invalid_value", "Invalid value.")
    return problems


def _minimum(threshold: int) -> FieldError:
    return FieldError(
        "validation_min_greater_equal_than_required",
        f"Must be no less than {threshold}.",
        {"threshold": threshold},
    )


def _same_type(expected: Any, value: Any) -> bool:
    if isinstance(expected, bool):
        return isinstance(value, bool)
    if isinstance(expected, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(expected, list):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, type(expected))


PROVIDER_KEYS: dict[str, Any] = {
    "name": "",
    "clientId": "",
    "clientSecret": "",
    "authURL": "",
    "tokenURL": "",
    "userInfoURL": "",
    "displayName": "",
    "pkce": None,
    "extra": {},
}


def _providers(
    raw: Any, current: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any] | FieldError]:
    if not isinstance(raw, list):
        return [], FieldError("validation_invalid_value", "Must be a list.")
    old = {p.get("name"): p for p in current}
    built: list[dict[str, Any]] = []
    problems: dict[str, Any] = {}
    seen: set[str] = set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            problems[str(i)] = FieldError("validation_invalid_value", "Must be an object.")
            continue
        provider = dict(PROVIDER_KEYS)
        errs: dict[str, FieldError] = {}
        for k, v in item.items():
            if k not in PROVIDER_KEYS:
                errs[k] = FieldError("validation_unknown_option", "Unknown option.")
            elif k == "pkce" and v is not None and not isinstance(v, bool):
                errs[k] = FieldError("validation_invalid_value", "Must be a bool or null.")
            elif k == "extra" and not isinstance(v, dict):
                errs[k] = FieldError("validation_invalid_value", "Must be an object.")
            elif k not in ("pkce", "extra") and not isinstance(v, str):
                errs[k] = FieldError("validation_invalid_value", "Must be a string.")
            else:
                provider[k] = v
        name = provider["name"]
        if name not in OAUTH2_PROVIDERS:
            errs["name"] = FieldError("validation_invalid_provider", "Unknown OAuth2 provider.")
        elif name in seen:
            errs["name"] = FieldError("validation_duplicated_provider", "Duplicated provider.")
        seen.add(name)
        if not provider["clientSecret"]:
            provider["clientSecret"] = old.get(name, {}).get("clientSecret", "")
        required = ["clientId", "clientSecret"]
        if name.startswith("oidc"):
            required += ["authURL", "tokenURL", "userInfoURL"]
        for k in required:
            if not provider[k] and k not in errs:
                errs[k] = FieldError("validation_required", "Cannot be blank.")
        if errs:
            problems[str(i)] = errs
        built.append(provider)
    return built, problems


def token_settings(options: dict[str, Any], kind: str) -> tuple[str, int]:
    """The signing secret and lifetime of one token kind."""
    key, default = TOKEN_OPTIONS[kind]
    section = options.get(key) or {}
    return str(section.get("secret", "")), int(section.get("duration", default))
