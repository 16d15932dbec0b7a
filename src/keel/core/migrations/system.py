"""System migrations: Keel's own tables, applied in order and recorded.

Each migration is a coroutine taking the open transaction; its name is stored
in ``_migrations`` once it ran. Never edit a released migration; add one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson

from keel.core.collection import Collection, id_field
from keel.core.fields.date import AutodateField, now_text
from keel.core.fields.number import BoolField
from keel.core.fields.text import EmailField, PasswordField, TextField
from keel.core.schema import create_table
from keel.core.settings import default_settings
from keel.query.dialect import dialect_of
from keel.security.token import random_secret
from keel.storage.db.database import Executor

Migration = Callable[[Executor], Awaitable[None]]

SUPERUSERS_ID = "pbc_3142635823"


def superusers_collection() -> Collection:
    """The system auth collection of administrators."""
    now = now_text()
    return Collection(
        id=SUPERUSERS_ID,
        name="_superusers",
        type="auth",
        system=True,
        fields=[
            id_field(),
            PasswordField(
                "password", "password901924565", system=True, hidden=True, required=True, min=8
            ),
            TextField(
                "tokenKey",
                "text2504183744",
                system=True,
                hidden=True,
                required=True,
                min=30,
                max=60,
                autogeneratePattern="[a-zA-Z0-9]{50}",
            ),
            EmailField("email", "email3885137012", system=True, required=True),
            BoolField("emailVisibility", "bool1547992806", system=True),
            BoolField("verified", "bool256245529", system=True),
            AutodateField(
                "created", "autodate2990389176", system=True, onCreate=True, onUpdate=False
            ),
            AutodateField(
                "updated", "autodate3332085495", system=True, onCreate=True, onUpdate=True
            ),
        ],
        indexes=[
            "CREATE UNIQUE INDEX `idx_tokenKey_pbc_3142635823` ON `_superusers` (`tokenKey`)",
            "CREATE UNIQUE INDEX `idx_email_pbc_3142635823` ON `_superusers` (`email`)",
        ],
        options={
            "authRule": "",
            "manageRule": None,
            "authToken": {"secret": random_secret(50), "duration": 86400},
        },
        created=now,
        updated=now,
    )


async def init(tx: Executor) -> None:
    """Create ``_params``, ``_collections`` and the ``_superusers`` collection."""
    d = dialect_of(tx)
    await tx.execute(
        "CREATE TABLE _params (id TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL, "
        "created TEXT DEFAULT '' NOT NULL, updated TEXT DEFAULT '' NOT NULL)"
    )
    await tx.execute(
        "CREATE TABLE _collections (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, "
        "type TEXT NOT NULL, system "
        + d.column_type("bool")
        + " DEFAULT "
        + d.false
        + " NOT NULL, data TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL)"
    )
    await tx.execute("CREATE UNIQUE INDEX idx__collections_name ON _collections (LOWER(name))")
    now = now_text()
    await tx.execute(
        "INSERT INTO _params (id, value, created, updated) VALUES (?, ?, ?, ?)",
        ("settings", orjson.dumps(default_settings()).decode(), now, now),
    )
    await tx.execute(
        "INSERT INTO _params (id, value, created, updated) VALUES (?, ?, ?, ?)",
        ("version", "0", now, now),
    )
    coll = superusers_collection()
    for stmt in create_table(d, coll):
        await tx.execute(stmt)
    await tx.execute(
        "INSERT INTO _collections (id, name, type, system, data, created, updated) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (coll.id, coll.name, coll.type, True, orjson.dumps(coll.to_storage()).decode(), now, now),
    )


MIGRATIONS: list[tuple[str, Migration]] = [
    ("0001_init", init),
]
