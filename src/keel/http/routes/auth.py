"""Auth endpoints of auth collections, impersonation, and API keys."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keel.core.actions import api_keys, auth_email, oauth2, otp
from keel.core.actions.auth import (
    auth_methods,
    auth_with_password,
    impersonate,
    refresh,
    require_auth_collection,
)
from keel.core.collection import Collection
from keel.core.presentation import present, projection_of
from keel.core.record import Record
from keel.core.request import Auth, RequestInfo
from keel.http.body import read_data
from keel.http.context import fresh_app, get_app, request_info
from keel.http.rate_limit import guard_auth
from keel.http.response import JSONResponse


async def _context(request: Request) -> tuple[Collection, dict[str, Any], RequestInfo]:
    app = get_app(request)
    body = await read_data(request, app.config.max_body_size)
    info = await request_info(request, body)
    coll = require_auth_collection(app, request.path_params["collection"])
    return coll, body, info


async def _auth_response(
    request: Request,
    coll: Collection,
    token: str,
    record: Record,
    info: RequestInfo,
    meta: dict[str, Any] | None = None,
) -> Response:
    """``{token, record[, meta]}``; the record as it sees itself, with ``expand``/``fields``."""
    app = get_app(request)
    own = RequestInfo(
        auth=Auth(record=record, collection=coll) if not info.auth.is_superuser else info.auth,
        method=info.method,
        query=info.query,
        headers=info.headers,
    )
    projection = projection_of(info)
    body: dict[str, Any] = {
        "token": token,
        "record": await present(app, coll, record, own, projection),
    }
    if meta is not None:
        body["meta"] = meta
    return JSONResponse(body)


async def methods(request: Request) -> Response:
    app = await fresh_app(request)
    coll = require_auth_collection(app, request.path_params["collection"])
    return JSONResponse(auth_methods(coll))


async def password_login(request: Request) -> Response:
    coll, body, info = await _context(request)
    identity = body.get("identity")
    await guard_auth(request, coll, identity if isinstance(identity, str) else "")
    token, record = await auth_with_password(get_app(request), coll, body, info)
    return await _auth_response(request, coll, token, record, info)


async def refresh_token(request: Request) -> Response:
    coll, _, info = await _context(request)
    token, record = await refresh(get_app(request), coll, info)
    return await _auth_response(request, coll, token, record, info)


async def oauth2_login(request: Request) -> Response:
    coll, body, info = await _context(request)
    await guard_auth(request, coll, "")
    token, record, meta = await oauth2.auth_with_oauth2(get_app(request), coll, body, info)
    return await _auth_response(request, coll, token, record, info, meta)


async def request_otp(request: Request) -> Response:
    coll, body, _ = await _context(request)
    email = body.get("email")
    await guard_auth(request, coll, email if isinstance(email, str) else "")
    otp_id = await otp.request_otp(get_app(request), coll, body)
    return JSONResponse({"otpId": otp_id})


async def otp_login(request: Request) -> Response:
    coll, body, info = await _context(request)
    otp_id = body.get("otpId")
    await guard_auth(request, coll, otp_id if isinstance(otp_id, str) else "")
    token, record = await otp.auth_with_otp(get_app(request), coll, body, info)
    return await _auth_response(request, coll, token, record, info)


def _email_action(name: str, identity_key: str) -> Any:
    action = getattr(auth_email, name.replace("-", "_"))

    async def endpoint(request: Request) -> Response:
        coll, body, _ = await _context(request)
        identity = body.get(identity_key)
        await guard_auth(request, coll, identity if isinstance(identity, str) else "")
        await action(get_app(request), coll, body)
        return Response(status_code=204)

    return endpoint


async def request_email_change(request: Request) -> Response:
    coll, body, info = await _context(request)
    await guard_auth(request, coll, info.auth.id)
    await auth_email.request_email_change(get_app(request), coll, body, info)
    return Response(status_code=204)


async def impersonate_record(request: Request) -> Response:
    coll, body, info = await _context(request)
    token, record = await impersonate(get_app(request), coll, request.path_params["id"], body, info)
    return await _auth_response(request, coll, token, record, info)


async def list_keys(request: Request) -> Response:
    info = await request_info(request)
    items = await api_keys.list_api_keys(get_app(request), info)
    return JSONResponse({"items": items})


async def mint_key(request: Request) -> Response:
    app = get_app(request)
    body = await read_data(request, app.config.max_body_size)
    info = await request_info(request, body)
    return JSONResponse(await api_keys.mint_api_key(app, body, info))


async def revoke_key(request: Request) -> Response:
    info = await request_info(request)
    await api_keys.revoke_api_key(get_app(request), request.path_params["id"], info)
    return Response(status_code=204)


_BASE = "/api/collections/{collection}"
routes = [
    Route(f"{_BASE}/auth-methods", methods, methods=["GET"]),
    Route(f"{_BASE}/auth-with-password", password_login, methods=["POST"]),
    Route(f"{_BASE}/auth-refresh", refresh_token, methods=["POST"]),
    Route(f"{_BASE}/auth-with-oauth2", oauth2_login, methods=["POST"]),
    Route(f"{_BASE}/request-otp", request_otp, methods=["POST"]),
    Route(f"{_BASE}/auth-with-otp", otp_login, methods=["POST"]),
    Route(
        f"{_BASE}/request-verification",
        _email_action("request-verification", "email"),
        methods=["POST"],
    ),
    Route(
        f"{_BASE}/confirm-verification",
        _email_action("confirm-verification", "token"),
        methods=["POST"],
    ),
    Route(
        f"{_BASE}/request-password-reset",
        _email_action("request-password-reset", "email"),
        methods=["POST"],
    ),
    Route(
        f"{_BASE}/confirm-password-reset",
        _email_action("confirm-password-reset", "token"),
        methods=["POST"],
    ),
    Route(f"{_BASE}/request-email-change", request_email_change, methods=["POST"]),
    Route(
        f"{_BASE}/confirm-email-change",
        _email_action("confirm-email-change", "token"),
        methods=["POST"],
    ),
    Route(f"{_BASE}/impersonate/{{id}}", impersonate_record, methods=["POST"]),
    Route("/api/keys", list_keys, methods=["GET"]),
    Route("/api/keys", mint_key, methods=["POST"]),
    Route("/api/keys/{id}", revoke_key, methods=["DELETE"]),
]
