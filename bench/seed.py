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
#: The rule scenario: notes owned by members, listed by one signed-in member
#: under a rule on ``@request.auth.id`` and a field of the owner (a join).
MEMBERS = "members"
MEMBER_COUNT = 20
MEMBER_PASSWORD = "bench-member-password"
NOTES = "notes"
NOTE_COUNT = 10_000
NOTES_RULE = "owner = @request.auth.id && owner.verified = true"
MEMBERS_SCHEMA: dict[str, Any] = {
    "name": MEMBERS,
    "type": "auth",
    "listRule": "id = @request.auth.id",
    "viewRule": "id = @request.auth.id",
    "fields": [{"name": "nickname", "type": "text"}],
}


def notes_schema(members_id: str) -> dict[str, Any]:
    """``notes``: a title, a view count and an owner among the members."""
    return {
        "name": NOTES,
        "type": "base",
        "listRule": NOTES_RULE,
        "viewRule": NOTES_RULE,
        "fields": [
            {"name": "title", "type": "text"},
            {"name": "views", "type": "number"},
            {"name": "owner", "type": "relation", "collectionId": members_id, "maxSelect": 1},
        ],
        "indexes": [
            f"CREATE INDEX idx_{NOTES}_owner_views ON {NOTES} (owner, views)",
        ],
    }


def members() -> Iterator[dict[str, Any]]:
    """The members, verified, with fixed ids and emails."""
    for n in range(MEMBER_COUNT):
        yield {
            "id": record_id("m", n),
            "email": f"member{n}@bench.example.com",
            "password": MEMBER_PASSWORD,
            "passwordConfirm": MEMBER_PASSWORD,
            "verified": True,
            "nickname": f"member {n}",
        }


def notes(count: int, seed: int) -> Iterator[dict[str, Any]]:
    """``count`` notes spread evenly over the members, identical for the same ``seed``."""
    rng = random.Random(f"{seed}:notes")
    for n in range(count):
        yield {
            "id": record_id("n", n),
            "title": " ".join(rng.choices(_WORDS, k=rng.randint(3, 8))),
            "views": rng.randint(0, 1000),
            "owner": record_id("m", n % MEMBER_COUNT),
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


def login(url: str, email: str, password: str, collection: str = "_superusers") -> str:
    """A token of ``collection`` (superusers by default) from ``auth-with-password``."""
    resp = httpx.post(
        f"{url}/api/collections/{collection}/auth-with-password",
        json={"identity": email, "password": password},
        timeout=HTTP_TIMEOUT,
    )
    resp.raise_for_status()
    return str(resp.json()["token"])


def prepare(url: str, token: str) -> None:
    """Enable large batches and create the ``posts``, ``members`` and ``notes`` collections."""
    headers = {"Authorization": token}

    def send(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = httpx.request(method, url + path, json=body, headers=headers, timeout=60)
        if resp.status_code != 200:
            raise RuntimeError(f"{method} {path} -> {resp.status_code}: {resp.text[:300]}")
        answer: dict[str, Any] = resp.json()
        return answer

    batch = {"enabled": True, "maxRequests": BATCH_SIZE, "timeout": 120, "maxBodySize": 0}
    send("PATCH", "/api/settings", {"batch": batch})
    send("POST", "/api/collections", SCHEMA)
    members_id = send("POST", "/api/collections", MEMBERS_SCHEMA)["id"]
    send("POST", "/api/collections", notes_schema(members_id))


def load(url: str, token: str, rows: Iterator[dict[str, Any]], collection: str = COLLECTION) -> int:
    """Create ``rows`` in ``collection`` through ``POST /api/batch``; return how many."""
    created = 0
    chunk: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, headers={"Authorization": token}, timeout=HTTP_TIMEOUT) as c:
        for row in rows:
            chunk.append(row)
            if len(chunk) == BATCH_SIZE:
                created += _send(c, chunk, collection)
                chunk = []
        if chunk:
            created += _send(c, chunk, collection)
    return created


def load_notes(url: str, token: str, seed: int) -> str:
    """Create the members and their notes; return the first member's token."""
    load(url, token, members(), MEMBERS)
    load(url, token, notes(NOTE_COUNT, seed), NOTES)
    return login(url, "member0@bench.example.com", MEMBER_PASSWORD, MEMBERS)


def _send(client: httpx.Client, chunk: list[dict[str, Any]], collection: str) -> int:
    path = f"/api/collections/{collection}/records"
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
