"""The benchmark data set: one schema and the same records in every system.

Records come from a ``random.Random`` with a fixed seed and carry fixed ids
(``p`` + 14 digits), so every system holds byte-identical rows apart from the
``created``/``updated`` timestamps. They are loaded through each system's own
public API, ``POST /api/batch``, 1,000 creates per batch.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx

COLLECTION = "posts"
BATCH_SIZE = 1000
HTTP_TIMEOUT = 300.0
SCHEMA: dict[str, Any] = {
    "name": COLLECTION,
    "type": "base",
    "listRule": "",
    "viewRule": "",
    "createRule": "",
    "updateRule": "",
    "deleteRule": "",
    "fields": [
        {"name": "title", "type": "text"},
        {"name": "body", "type": "text"},
        {"name": "views", "type": "number"},
        {"name": "published", "type": "bool"},
        {"name": "created", "type": "autodate", "onCreate": True, "onUpdate": False},
        {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
    ],
    "indexes": [f"CREATE INDEX idx_{COLLECTION}_views ON {COLLECTION} (views)"],
}
_WORDS = (  # noqa: SIM905 - a word list reads best as one string
    "keel harbor river stone signal orbit maple copper lantern meadow "
    "quartz falcon ember tide willow summit cinder prism glacier thistle "
    "beacon ledger anchor compass drift fable garnet hollow ivory juniper"
).split()


def record_id(prefix: str, n: int) -> str:
    """A valid 15-character PocketBase id: ``prefix`` then ``n`` zero-padded."""
    return f"{prefix}{n:0{15 - len(prefix)}d}"


def records(count: int, seed: int, prefix: str = "p") -> Iterator[dict[str, Any]]:
    """``count`` records, identical for the same ``seed`` and ``prefix``."""
    rng = random.Random(f"{seed}:{prefix}")
    for n in range(count):
        yield {
            "id": record_id(prefix, n),
            "title": " ".join(rng.choices(_WORDS, k=rng.randint(3, 8))),
            "body": " ".join(rng.choices(_WORDS, k=rng.randint(20, 60))),
            "views": rng.randint(0, 1000),
            "published": rng.random() < 0.5,
        }


def login(url: str, email: str, password: str) -> str:
    """A superuser token from ``auth-with-password``."""
    resp = httpx.post(
        f"{url}/api/collections/_superusers/auth-with-password",
        json={"identity": email, "password": password},
        timeout=HTTP_TIMEOUT,
    )
    resp.raise_for_status()
    return str(resp.json()["token"])


def prepare(url: str, token: str) -> None:
    """Enable large batches and create the ``posts`` collection."""
    headers = {"Authorization": token}
    batch = {"enabled": True, "maxRequests": BATCH_SIZE, "timeout": 120, "maxBodySize": 0}
    for method, path, body in (
        ("PATCH", "/api/settings", {"batch": batch}),
        ("POST", "/api/collections", SCHEMA),
    ):
        resp = httpx.request(method, url + path, json=body, headers=headers, timeout=60)
        if resp.status_code != 200:
            raise RuntimeError(f"{method} {path} -> {resp.status_code}: {resp.text[:300]}")


def load(url: str, token: str, rows: Iterator[dict[str, Any]]) -> int:
    """Create ``rows`` through ``POST /api/batch``; return how many were created."""
    created = 0
    chunk: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, headers={"Authorization": token}, timeout=HTTP_TIMEOUT) as c:
        for row in rows:
            chunk.append(row)
            if len(chunk) == BATCH_SIZE:
                created += _send(c, chunk)
                chunk = []
        if chunk:
            created += _send(c, chunk)
    return created


def _send(client: httpx.Client, chunk: list[dict[str, Any]]) -> int:
    path = f"/api/collections/{COLLECTION}/records"
    body = {"requests": [{"method": "POST", "url": path, "body": row} for row in chunk]}
    resp = client.post("/api/batch", json=body)
    if resp.status_code != 200:
        raise RuntimeError(f"seeding batch -> {resp.status_code}: {resp.text[:300]}")
    return len(chunk)


def count(url: str) -> int:
    """``totalItems`` of ``posts`` as the system reports it."""
    resp = httpx.get(f"{url}/api/collections/{COLLECTION}/records?perPage=1", timeout=60)
    resp.raise_for_status()
    return int(resp.json()["totalItems"])
