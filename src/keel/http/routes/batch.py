"""``POST /api/batch``: several record writes in one transaction.

Accepted sub-requests, as in PocketBase: create (``POST …/records``), update
(``PATCH …/records/{id}``), upsert (``PUT …/records``, by body ``id``) and
delete (``DELETE …/records/{id}``). Either every one succeeds and the answer
is a list of their responses, or none is kept and the answer is a 400 naming
the failed request.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keel.core.actions import records as actions
from keel.core.app import App
from keel.core.errors import (
    BadRequestError,
    FieldError,
    ForbiddenError,
    KeelError,
    NotFoundError,
    ValidationError,
)
from keel.core.files import has_uploads
from keel.core.request import RequestInfo
from keel.core.rule import ALL_ROWS
from keel.core.transaction import write_transaction
from keel.core.visibility import record_json
from keel.http.body import close_body, read_bytes, read_data
from keel.http.context import fresh_app, request_info
from keel.http.response import JSONResponse, error_body
from keel.storage.db.database import Executor

_RECORDS = re.compile(r"^/api/collections/([^/]+)/records(?:/([^/]+))?/?$")


class _Failed(Exception):
    def __init__(self, index: int, error: KeelError) -> None:
        super().__init__(error.message)
        self.index = index
        self.error = error


async def _run_one(
    app: App, tx: Executor, info: RequestInfo, item: dict[str, Any]
) -> dict[str, Any]:
    method = str(item.get("method", "")).upper()
    url = str(item.get("url", ""))
    body = item.get("body") or {}
    if not isinstance(body, dict):
        raise BadRequestError("Failed to load the submitted data due to invalid formatting.")
    match = _RECORDS.match(urlsplit(url).path)
    if match is None:
        raise NotFoundError("The batch request URL is not a supported records action.")
    coll = app.collection(unquote(match.group(1)))
    record_id = unquote(match.group(2)) if match.group(2) else None
    sub = RequestInfo(
        auth=info.auth, method=method, query={}, headers=info.headers, body=body, context="batch"
    )
    if method == "POST" and record_id is None:
        record = await actions.create_record(app, coll, body, sub, tx)
        return {"status": 200, "body": record_json(record, info.auth)}
    if method == "PATCH" and record_id is not None:
        record = await actions.update_record(app, coll, record_id, body, sub, tx)
        return {"status": 200, "body": record_json(record, info.auth)}
    if method == "PUT" and record_id is None:
        target = str(body.get("id") or "")
        exists = target and await actions.find_record(tx, coll, target, ALL_ROWS)
        if exists:
            rest = {k: v for k, v in body.items() if k != "id"}
            record = await actions.update_record(app, coll, target, rest, sub, tx)
        else:
            record = await actions.create_record(app, coll, body, sub, tx)
        return {"status": 200, "body": record_json(record, info.auth)}
    if method == "DELETE" and record_id is not None:
        await actions.delete_record(app, coll, record_id, sub, tx)
        return {"status": 204}
    raise NotFoundError("The batch request method and URL are not a supported records action.")


async def batch(request: Request) -> Response:
    app = await fresh_app(request)
    settings = app.settings["batch"]
    if not settings["enabled"]:
        raise ForbiddenError("Batch requests are not allowed.")
    limit = settings["maxBodySize"] or app.config.max_body_size
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("multipart/", "application/x-www-form-urlencoded")):
        try:
            data: Any = await read_data(request, limit)
            if has_uploads(data):
                raise BadRequestError("File uploads in batch requests are not supported yet.")
        finally:
            await close_body(request)
    else:
        raw = await read_bytes(request, limit)
        try:
            data = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            raise BadRequestError(
                "Failed to load the submitted data due to invalid formatting."
            ) from None
    requests = data.get("requests") if isinstance(data, dict) else None
    invalid = "Invalid batch request data."
    if not isinstance(requests, list) or not requests:
        raise ValidationError(
            invalid, {"requests": FieldError("validation_required", "Cannot be blank.")}
        )
    max_requests = settings["maxRequests"]
    if len(requests) > max_requests:
        raise ValidationError(
            invalid,
            {
                "requests": FieldError(
                    "validation_length_too_long",
                    f"The length must be no more than {max_requests}.",
                    {"max": max_requests, "min": 0},
                )
            },
        )
    if not all(isinstance(r, dict) for r in requests):
        raise ValidationError(
            invalid,
            {"requests": FieldError("validation_invalid_value", "Each request must be an object.")},
        )
    info = await request_info(request)
    results: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(settings["timeout"] or None):
            async with write_transaction(app) as tx:
                for index, item in enumerate(requests):
                    try:
                        results.append(await _run_one(app, tx, info, item))
                    except KeelError as exc:
                        raise _Failed(index, exc) from exc
    except _Failed as failed:
        err = failed.error
        raise ValidationError(
            "Batch transaction failed.",
            {
                "requests": {
                    str(failed.index): {
                        "code": "batch_request_failed",
                        "message": "Batch request failed.",
                        "response": error_body(err.status, err.message, err.data),
                    }
                }
            },
        ) from None
    except TimeoutError:
        raise BadRequestError("Batch transaction timed out; nothing was saved.") from None
    return JSONResponse(results)


routes = [Route("/api/batch", batch, methods=["POST"])]
