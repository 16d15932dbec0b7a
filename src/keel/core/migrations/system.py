"""System migrations: Keel's own tables, applied in order and recorded.

Each migration is a coroutine taking the open transaction; its name is stored
in ``_migrations`` once it ran. Never edit a released migration; add one.
"""

from __future__ import annotations

import secrets
import zlib
from collections.abc import Awaitable, Callable

import orjson

from keel.core.auth_options import default_auth_options
from keel.core.collection import Collection, id_field
from keel.core.fields.base import Field
from keel.core.fields.date import AutodateField, DateField, now_text
from keel.core.fields.json import JSONField
from keel.core.fields.number import BoolField, NumberField
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


OWNER_RULE = (
    "@request.auth.id != '' && recordRef = @request.auth.id && "
    "collectionRef = @request.auth.collectionId"
)


def _text(name: str, *, hidden: bool = False, required: bool = True, max: int = 0) -> TextField:
    return TextField(name, system=True, hidden=hidden, required=required, max=max)


def _owner_index(name: str) -> str:
    return (
        f"CREATE INDEX `idx_{name}_collectionRef_recordRef` ON `_{name}` (collectionRef, recordRef)"
    )


def _system_collection(
    coll_id: str, name: str, fields: list[Field], indexes: list[str], delete_rule: str | None
) -> Collection:
    now = now_text()
    all_fields: list[Field] = [
        id_field(),
        _text("collectionRef"),
        _text("recordRef"),
        *fields,
        AutodateField("created", system=True, onCreate=True, onUpdate=False),
        AutodateField("updated", system=True, onCreate=True, onUpdate=True),
    ]
    for fld in all_fields:
        if not fld.id:
            fld.id = f"{fld.type}{zlib.crc32(fld.name.encode())}"
    return Collection(
        id=coll_id,
        name=name,
        type="base",
        system=True,
        fields=all_fields,
        indexes=indexes,
        rules={
            "listRule": OWNER_RULE,
            "viewRule": OWNER_RULE,
            "createRule": None,
            "updateRule": None,
            "deleteRule": delete_rule,
        },
        created=now,
        updated=now,
    )


def auth_system_collections() -> list[Collection]:
    """One-time passwords, pending MFA, OAuth2 links and API keys."""
    return [
        _system_collection(
            "pbc_1638494021",
            "_otps",
            [
                PasswordField("password", system=True, hidden=True, required=True, min=0),
                _text("sentTo", hidden=True, required=False),
                NumberField("attempts", system=True, hidden=True, onlyInt=True, min=0),
            ],
            [_owner_index("otps")],
            None,
        ),
        _system_collection(
            "pbc_2279338944",
            "_mfas",
            [_text("method")],
            [_owner_index("mfas")],
            None,
        ),
        _system_collection(
            "pbc_2281828961",
            "_externalAuths",
            [_text("provider"), _text("providerId")],
            [
                "CREATE UNIQUE INDEX `idx_externalAuths_record_provider` ON `_externalAuths` "
                "(collectionRef, recordRef, provider)",
                "CREATE UNIQUE INDEX `idx_externalAuths_collection_provider` ON `_externalAuths` "
                "(collectionRef, provider, providerId)",
            ],
            OWNER_RULE,
        ),
        _system_collection(
            "pbc_keel_apikeys",
            "_apiKeys",
            [
                _text("name", max=100),
                JSONField("scopes", system=True, maxSize=20000),
                _text("hash", hidden=True),
                DateField("expires", system=True),
            ],
            [_owner_index("apiKeys")],
            OWNER_RULE,
        ),
    ]


async def _insert_collection(tx: Executor, coll: Collection) -> None:
    for stmt in create_table(dialect_of(tx), coll):
        await tx.execute(stmt)
    await tx.execute(
        "INSERT INTO _collections (id, name, type, system, data, created, updated) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            coll.id,
            coll.name,
            coll.type,
            True,
            orjson.dumps(coll.to_storage()).decode(),
            coll.created,
            coll.updated,
        ),
    )


async def auth(tx: Executor) -> None:
    """Complete ``_superusers``' auth options; add the auth system collections."""
    row = await tx.fetch_one("SELECT data FROM _collections WHERE id = ?", (SUPERUSERS_ID,))
    assert row is not None
    data = orjson.loads(row[0])
    options = default_auth_options()
    options.update(data.get("options", {}))
    options["authRule"] = ""
    options["manageRule"] = None
    data["options"] = options
    await tx.execute(
        "UPDATE _collections SET data = ? WHERE id = ?",
        (orjson.dumps(data).decode(), SUPERUSERS_ID),
    )
    for coll in auth_system_collections():
        await _insert_collection(tx, coll)
    await tx.execute("UPDATE _params SET value = ? WHERE id = 'version'", (secrets.token_hex(8),))


async def events(tx: Executor) -> None:
    """The event outbox read by realtime (keel.core.outbox) and realtime clients."""
    serial = (
        "BIGSERIAL PRIMARY KEY"
        if dialect_of(tx).name == "postgres"
        else "INTEGER PRIMARY KEY AUTOINCREMENT"
    )
    for stmt in (
        f"CREATE TABLE _keel_events (id {serial}, collection TEXT NOT NULL, "
        "record TEXT NOT NULL, action TEXT NOT NULL, data TEXT NOT NULL, old TEXT, "
        "created TEXT NOT NULL, stamp DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX idx__keel_events_stamp ON _keel_events (stamp)",
        "CREATE TABLE _keel_realtime (id TEXT PRIMARY KEY NOT NULL, auth TEXT NOT NULL, "
        "subscriptions TEXT NOT NULL, updated DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX idx__keel_realtime_updated ON _keel_realtime (updated)",
    ):
        await tx.execute(stmt)


async def events_by_id(tx: Executor) -> None:
    """The outbox is pruned by id: its stamp index only cost every write a page."""
    await tx.execute("DROP INDEX IF EXISTS idx__keel_events_stamp")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("0001_init", init),
    ("0002_auth", auth),
    ("0003_events", events),
    ("0004_events_by_id", events_by_id),
]
