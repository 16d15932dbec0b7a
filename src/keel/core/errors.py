"""Domain errors, one hierarchy with stable codes.

The HTTP layer turns each into PocketBase's error body
``{"status": …, "message": …, "data": {…}}`` in one place::

    KeelError                     status  code
     ├── BadRequestError            400   bad_request
     │    └── ValidationError       400   validation_failed   (data: per field)
     ├── UnauthorizedError          401   unauthorized
     │    └── MFARequiredError      401   mfa_required   (body: {"mfaId": …})
     ├── ForbiddenError             403   forbidden
     ├── NotFoundError              404   not_found
     ├── PayloadTooLargeError       413   payload_too_large
     ├── TooManyRequestsError       429   too_many_requests
     └── ServiceUnavailableError    503   unavailable
"""

from __future__ import annotations

from typing import Any


class KeelError(Exception):
    """Base of every error a client may see.

    Attributes:
        status: the HTTP status it maps to.
        code: a stable snake_case identifier.
        message: a human sentence, PocketBase's wording where it has one.
        data: structured details (per-field errors for validation).
    """

    status = 500
    code = "internal_error"
    default_message = "Something went wrong while processing your request."

    def __init__(self, message: str | None = None, data: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.data: dict[str, Any] = data or {}
        super().__init__(self.message)


class BadRequestError(KeelError):
    status = 400
    code = "bad_request"
    default_message = "Something went wrong while processing your request."


class UnauthorizedError(KeelError):
    status = 401
    code = "unauthorized"
    default_message = "The request requires valid record authorization token."


class MFARequiredError(UnauthorizedError):
    """The first factor succeeded; the client must finish with another method.

    PocketBase answers this with a bare ``{"mfaId": …}`` body, not the error shape.
    """

    code = "mfa_required"

    def __init__(self, mfa_id: str) -> None:
        super().__init__("Multi-factor authentication is required.", {"mfaId": mfa_id})
        self.mfa_id = mfa_id


class ForbiddenError(KeelError):
    status = 403
    code = "forbidden"
    default_message = "You are not allowed to perform this request."


class NotFoundError(KeelError):
    status = 404
    code = "not_found"
    default_message = "The requested resource wasn't found."


class PayloadTooLargeError(KeelError):
    status = 413
    code = "payload_too_large"
    default_message = "Request entity too large."


class TooManyRequestsError(KeelError):
    """A rate limit refused the request; ``retry_after`` seconds until it may retry."""

    status = 429
    code = "too_many_requests"
    default_message = "Too Many Requests."

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__()
        self.retry_after = max(int(retry_after), 1)


class ServiceUnavailableError(KeelError):
    status = 503
    code = "unavailable"
    default_message = "The service is temporarily unavailable, try again."


class FieldError(Exception):
    """One invalid value: a stable ``validation_*`` code and a message.

    Raised by field validators; collected into a :class:`ValidationError`.
    """

    def __init__(self, code: str, message: str, params: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.params = params or {}

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.params:
            out["params"] = self.params
        return out


class ValidationError(BadRequestError):
    """A request whose values failed validation.

    ``errors`` maps a field path (``"title"``, ``"fields.2.name"``) to either a
    :class:`FieldError` or a nested mapping; ``data`` holds its JSON form.
    """

    code = "validation_failed"

    def __init__(self, message: str, errors: dict[str, Any]) -> None:
        super().__init__(message, _errors_json(errors))
        self.errors = errors


def _errors_json(errors: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in errors.items():
        if isinstance(value, FieldError):
            out[key] = value.as_json()
        elif isinstance(value, dict):
            out[key] = _errors_json(value)
        else:
            out[key] = value
    return out
