"""Per-request context: the App, the caller's auth, and rule-visible request data."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from keel.core.actions.auth import authenticate
from keel.core.app import App
from keel.core.fields.file import Upload
from keel.core.request import RequestInfo


def get_app(request: Request) -> App:
    app: App = request.app.state.keel
    return app


async def fresh_app(request: Request) -> App:
    """The App, its schema and settings refreshed once per request.

    A change made through another worker or node is seen from the first call
    in a request on; later calls in the same request cost nothing.
    """
    app = get_app(request)
    if _DATA_VERSION not in request.scope:
        request.scope[_DATA_VERSION] = await app.refresh()
    return app


#: Where a request keeps the data version its refresh read.
_DATA_VERSION = "keel.data_version"


def bearer_token(request: Request) -> str:
    """The token of the Authorization header, raw or with a ``Bearer`` prefix."""
    header = request.headers.get("authorization", "").strip()
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return header


async def request_info(request: Request, body: dict[str, Any] | None = None) -> RequestInfo:
    """Refresh the schema if another worker changed it, then identify the caller."""
    app = await fresh_app(request)
    auth = await authenticate(app, bearer_token(request))
    scope = request.scope
    return RequestInfo(
        auth=auth,
        method=request.method,
        query=dict(request.query_params) if scope["query_string"] else {},
        # ASGI servers give header names in lower case; a repeated header
        # keeps its last value.
        headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
        body={k: _for_rules(v) for k, v in (body or {}).items()},
        data_version=scope[_DATA_VERSION],
    )


def _for_rules(value: Any) -> Any:
    """Uploads appear to rules (``@request.body.*``) as their file names."""
    if isinstance(value, Upload):
        return value.filename
    if isinstance(value, list):
        return [v.filename if isinstance(v, Upload) else v for v in value]
    return value
