"""String fields: text, email, url, editor and password."""

from __future__ import annotations

import functools
import re
import secrets
from typing import Any, ClassVar
from urllib.parse import urlsplit

from keel.core.errors import FieldError
from keel.core.fields.base import Field, required_error, type_error

DEFAULT_TEXT_MAX = 5000
DEFAULT_EDITOR_MAX_SIZE = 5 << 20
_EMAIL_RE = re.compile(
    r"^[^@\s\"(),:;<>\[\\\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
#: The longest value an autogenerate pattern may make.
MAX_GENERATED = 5000
_GEN_PART = re.compile(r"\[([^\]]+)\]\{(\d+)\}")


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise type_error("a string")


def _charset(spec: str) -> str:
    chars: list[str] = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            chars.extend(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            chars.append(spec[i])
            i += 1
    return "".join(dict.fromkeys(chars))


@functools.lru_cache(maxsize=256)
def compile_generator(pattern: str) -> tuple[tuple[str, int], ...] | None:
    """Parse an autogenerate pattern made of ``[charset]{n}`` parts.

    Returns ``None`` when the pattern has another shape, an empty charset, or
    makes values longer than :data:`MAX_GENERATED`.
    """
    parts: list[tuple[str, int]] = []
    pos = 0
    for match in _GEN_PART.finditer(pattern):
        chars = _charset(match.group(1))
        if match.start() != pos or not chars:  # e.g. [z-a]: nothing to draw from
            return None
        parts.append((chars, int(match.group(2))))
        pos = match.end()
    if pos != len(pattern) or not parts or sum(n for _, n in parts) > MAX_GENERATED:
        return None
    return tuple(parts)


def generate(pattern: str) -> str:
    """A random string matching an autogenerate pattern (from the OS's CSPRNG)."""
    return "".join(_random_chars(chars, count) for chars, count in compile_generator(pattern) or ())


def _random_chars(chars: str, count: int) -> str:
    n = len(chars)
    if n > 256:
        return "".join(secrets.choice(chars) for _ in range(count))
    # One read of random bytes instead of one per character. Bytes at or past
    # the largest multiple of ``n`` are dropped, so every character stays
    # equally likely (no modulo bias).
    table = _byte_table(chars)
    if table is not None:
        # ASCII charsets (every id): the drop and the mapping in C.
        mapping, dropped = table
        out = b""
        while len(out) < count:
            out += secrets.token_bytes(count + 8).translate(mapping, dropped)
        return out[:count].decode("ascii")
    limit = 256 - 256 % n
    picked: list[str] = []
    while len(picked) < count:
        picked.extend(chars[b % n] for b in secrets.token_bytes(count + 8) if b < limit)
    return "".join(picked[:count])


@functools.lru_cache(maxsize=256)
def _byte_table(chars: str) -> tuple[bytes, bytes] | None:
    """For an ASCII charset: random byte → character, and the bytes to drop."""
    if not chars.isascii():
        return None
    n = len(chars)
    limit = 256 - 256 % n
    mapping = bytes(ord(chars[b % n]) if b < limit else 0 for b in range(256))
    return mapping, bytes(range(limit, 256))


class TextField(Field):
    type = "text"
    OPTIONS: ClassVar[dict[str, Any]] = {
        "required": False,
        "min": 0,
        "max": 0,
        "pattern": "",
        "autogeneratePattern": "",
        "primaryKey": False,
    }

    def check_options(self) -> dict[str, FieldError]:
        errors: dict[str, FieldError] = {}
        if self.options["min"] < 0:
            errors["min"] = FieldError(
                "validation_min_greater_equal_than_required", "Must be no less than 0."
            )
        if self.options["max"] < 0 or (
            self.options["max"] and self.options["max"] < self.options["min"]
        ):
            errors["max"] = FieldError(
                "validation_min_greater_equal_than_required",
                f"Must be no less than {self.options['min']}.",
            )
        if self.options["pattern"]:
            try:
                re.compile(self.options["pattern"])
            except re.error:
                errors["pattern"] = FieldError(
                    "validation_invalid_regex", "Invalid regular expression pattern."
                )
        gen = self.options["autogeneratePattern"]
        if gen and compile_generator(gen) is None:
            errors["autogeneratePattern"] = FieldError(
                "validation_invalid_regex",
                "Only patterns made of [charset]{n} parts are supported, e.g. [a-z0-9]{15}.",
            )
        return errors

    def normalize(self, value: Any) -> str:
        return _as_text(value)

    def validate(self, value: Any) -> None:
        if value == "":
            if self.required:
                raise required_error()
            return
        length = len(value)
        minimum = self.options["min"]
        maximum = self.options["max"] or DEFAULT_TEXT_MAX
        if minimum and length < minimum:
            raise FieldError(
                "validation_min_text_constraint",
                f"Must be at least {minimum} character(s).",
                {"min": minimum},
            )
        if length > maximum:
            raise FieldError(
                "validation_max_text_constraint",
                f"Must be no more than {maximum} character(s).",
                {"max": maximum},
            )
        pattern = self.options["pattern"]
        if pattern and not re.search(pattern, value):
            raise FieldError("validation_invalid_format", "Invalid value format.")


class EmailField(Field):
    type = "email"
    OPTIONS: ClassVar[dict[str, Any]] = {"required": False, "exceptDomains": [], "onlyDomains": []}

    def check_options(self) -> dict[str, FieldError]:
        if self.options["exceptDomains"] and self.options["onlyDomains"]:
            return {
                "onlyDomains": FieldError(
                    "validation_on_only_domains",
                    "exceptDomains and onlyDomains can't be set together.",
                )
            }
        return {}

    def normalize(self, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise type_error("a string")
        return value.strip()

    def _domain(self, value: str) -> str:
        return value.rsplit("@", 1)[-1].lower()

    def validate(self, value: Any) -> None:
        if value == "":
            if self.required:
                raise required_error()
            return
        if len(value) > 255 or not _EMAIL_RE.match(value):
            raise FieldError("validation_is_email", "Must be a valid email address.")
        _check_domain(self._domain(value), self.options)


def _check_domain(domain: str, options: dict[str, Any]) -> None:
    only = [d.lower() for d in options["onlyDomains"]]
    excluded = [d.lower() for d in options["exceptDomains"]]
    if only and domain not in only:
        raise FieldError("validation_email_domain_not_allowed", "Email domain is not allowed.")
    if excluded and domain in excluded:
        raise FieldError("validation_email_domain_not_allowed", "Email domain is not allowed.")


class URLField(Field):
    type = "url"
    OPTIONS: ClassVar[dict[str, Any]] = {"required": False, "exceptDomains": [], "onlyDomains": []}

    check_options = EmailField.check_options
    normalize = EmailField.normalize

    def validate(self, value: Any) -> None:
        if value == "":
            if self.required:
                raise required_error()
            return
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if (
            parts is None
            or parts.scheme.lower() not in {"http", "https", "ftp", "ftps"}
            or not parts.hostname
            or any(c.isspace() for c in value)
        ):
            raise FieldError("validation_invalid_url", "Must be a valid url.")
        only, excluded = self.options["onlyDomains"], self.options["exceptDomains"]
        host = parts.hostname.lower()
        if (only and host not in [d.lower() for d in only]) or host in [
            d.lower() for d in excluded
        ]:
            raise FieldError("validation_url_domain_not_allowed", "Url domain is not allowed.")


class EditorField(Field):
    type = "editor"
    OPTIONS: ClassVar[dict[str, Any]] = {"required": False, "maxSize": 0, "convertURLs": False}

    def check_options(self) -> dict[str, FieldError]:
        if self.options["maxSize"] < 0:
            return {
                "maxSize": FieldError(
                    "validation_min_greater_equal_than_required", "Must be no less than 0."
                )
            }
        return {}

    def normalize(self, value: Any) -> str:
        return _as_text(value)

    def validate(self, value: Any) -> None:
        if value == "":
            if self.required:
                raise required_error()
            return
        limit = self.options["maxSize"] or DEFAULT_EDITOR_MAX_SIZE
        if len(value.encode()) > limit:
            raise FieldError(
                "validation_content_size_limit",
                f"The maximum allowed content size is {limit} bytes.",
                {"maxSize": limit},
            )


class PasswordField(Field):
    """A password, stored as a hash and never shown; used by auth collections.

    ``normalize`` keeps the plain text so ``validate`` can check its length; the
    record layer hashes it before it is written.
    """

    type = "password"
    OPTIONS: ClassVar[dict[str, Any]] = {
        "required": False,
        "min": 8,
        "max": 0,
        "pattern": "",
        "cost": 0,
    }

    def normalize(self, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise type_error("a string")
        return value

    def validate(self, value: Any) -> None:
        if value == "":
            if self.required:
                raise required_error()
            return
        minimum, maximum = self.options["min"], self.options["max"] or 71
        if len(value) < minimum:
            raise FieldError(
                "validation_min_text_constraint",
                f"Must be at least {minimum} character(s).",
                {"min": minimum},
            )
        if len(value) > maximum:
            raise FieldError(
                "validation_max_text_constraint",
                f"Must be no more than {maximum} character(s).",
                {"max": maximum},
            )
        pattern = self.options["pattern"]
        if pattern and not re.search(pattern, value):
            raise FieldError("validation_invalid_format", "Invalid value format.")
