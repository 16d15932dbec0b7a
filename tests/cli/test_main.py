"""The ``keel`` command line, run as real subprocesses on temporary data folders.

Commands run on SQLite in ``--dir`` unless a test sets ``KEEL_DATABASE_URL``;
their effects are checked by opening the same data folder with an in-process
:class:`~keel.core.app.App`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from keel import __version__
from keel.core.actions.auth import auth_with_password
from keel.core.actions.records import create_record, view_record
from keel.core.app import App
from keel.core.config import load_config
from keel.core.errors import BadRequestError
from keel.core.request import Auth, RequestInfo

KEEL = str(Path(sys.executable).with_name("keel"))
EMAIL = "admin@example.com"
PASSWORD = "1234567890"
NEW_PASSWORD = "0987654321-new"
#: A cheap argon2id cost, for every process of a test (hashes stay comparable).
FAST_HASHING = {
    "KEEL_ARGON2_TIME_COST": "1",
    "KEEL_ARGON2_MEMORY_KIB": "1024",
    "KEEL_ARGON2_PARALLELISM": "1",
}

SCHEMA = {
    "collections": [
        {
            "id": "pbc_1000000001",
            "name": "authors",
            "type": "base",
            "listRule": "",
            "viewRule": "",
            "fields": [{"id": "text1000000001", "name": "name", "type": "text"}],
        },
        {
            "id": "pbc_1000000002",
            "name": "books",
            "type": "base",
            "fields": [
                {"id": "text1000000002", "name": "title", "type": "text"},
                {
                    "id": "relation1000000003",
                    "name": "author",
                    "type": "relation",
                    "collectionId": "pbc_1000000001",
                    "maxSelect": 1,
                },
            ],
        },
    ]
}


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


async def keel(*args: str | Path, database_url: str = "", check: bool = False) -> Result:
    """Run the ``keel`` executable; no KEEL_* from the outer environment leaks in.

    With ``check``, a non-zero exit fails the test (for setup steps).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(FAST_HASHING)
    env["COLUMNS"] = "1000"  # rich wraps at the terminal width; keep lines whole
    if database_url:
        env["KEEL_DATABASE_URL"] = database_url
    proc = await asyncio.create_subprocess_exec(
        KEEL,
        *map(str, args),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    result = Result(proc.returncode, out.decode(), err.decode())
    if check:
        assert 0 == result.returncode, f"keel {args}: {result.stdout}{result.stderr}"
    return result


@asynccontextmanager
async def open_app(data_dir: Path, database_url: str = "") -> AsyncIterator[App]:
    """The App of a data folder (or database), started in this process."""
    app = App(load_config(environ=FAST_HASHING, data_dir=str(data_dir), database_url=database_url))
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


def superuser_info(app: App) -> RequestInfo:
    return RequestInfo(auth=Auth(collection=app.collection("_superusers")))


async def can_log_in(data_dir: Path, email: str, password: str) -> bool:
    async with open_app(data_dir) as app:
        try:
            await auth_with_password(
                app,
                app.collection("_superusers"),
                {"identity": email, "password": password},
                RequestInfo(),
            )
        except BadRequestError:
            return False
        return True


def write_schema(path: Path, doc: dict[str, Any]) -> Path:
    if path.suffix == ".json":
        path.write_bytes(orjson.dumps(doc))
    else:
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


async def user_collections(data_dir: Path, database_url: str = "") -> list[dict[str, Any]]:
    """Every non-system collection as the API shows it, minus timestamps."""
    async with open_app(data_dir, database_url) as app:
        return sorted(
            (
                {k: v for k, v in c.to_json().items() if k not in ("created", "updated")}
                for c in app.collections
                if not c.system
            ),
            key=lambda c: str(c["id"]),
        )


# -- version and help ------------------------------------------------------------


async def test_version_prints_package_version() -> None:
    """``keel --version`` prints the version from keel.__version__ and exits 0."""
    result = await keel("--version")
    assert (0, f"keel {__version__}\n") == (result.returncode, result.stdout)


async def test_help_lists_commands() -> None:
    """``keel --help`` exits 0 and lists every top-level command."""
    result = await keel("--help")
    assert 0 == result.returncode, result.stderr
    for command in ("serve", "migrate", "superuser", "schema"):
        assert command in result.stdout


async def test_serve_help_lists_options() -> None:
    """``keel serve --help`` exits 0 and documents --http, --dir and --workers."""
    result = await keel("serve", "--help")
    assert 0 == result.returncode, result.stderr
    for option in ("--http", "--dir", "--workers"):
        assert option in result.stdout


# -- superusers ------------------------------------------------------------------


async def test_superuser_create_twice_fails(tmp_path: Path) -> None:
    """Creating a superuser whose email exists exits non-zero with a uniqueness error."""
    first = await keel("superuser", "create", EMAIL, PASSWORD, "--dir", tmp_path)
    assert (0, f"Created superuser {EMAIL}.\n") == (first.returncode, first.stdout)
    result = await keel("superuser", "create", EMAIL, NEW_PASSWORD, "--dir", tmp_path)
    assert 0 != result.returncode
    assert "validation_not_unique" in result.stdout + result.stderr
    assert await can_log_in(tmp_path, EMAIL, PASSWORD)


async def test_superuser_upsert_changes_password(tmp_path: Path) -> None:
    """``superuser upsert`` on an existing email replaces its password."""
    await keel("superuser", "create", EMAIL, PASSWORD, "--dir", tmp_path, check=True)
    result = await keel("superuser", "upsert", EMAIL, NEW_PASSWORD, "--dir", tmp_path)
    assert (0, f"Updated superuser {EMAIL}.\n") == (result.returncode, result.stdout)
    assert (True, False) == (
        await can_log_in(tmp_path, EMAIL, NEW_PASSWORD),
        await can_log_in(tmp_path, EMAIL, PASSWORD),
    )


async def test_superuser_upsert_creates_missing(tmp_path: Path) -> None:
    """``superuser upsert`` on an unknown email creates the superuser."""
    result = await keel("superuser", "upsert", EMAIL, PASSWORD, "--dir", tmp_path)
    assert (0, f"Created superuser {EMAIL}.\n") == (result.returncode, result.stdout)
    assert await can_log_in(tmp_path, EMAIL, PASSWORD)


async def test_superuser_update_changes_password(tmp_path: Path) -> None:
    """``superuser update`` replaces the password of an existing superuser."""
    await keel("superuser", "create", EMAIL, PASSWORD, "--dir", tmp_path, check=True)
    result = await keel("superuser", "update", EMAIL, NEW_PASSWORD, "--dir", tmp_path)
    assert 0 == result.returncode, result.stdout + result.stderr
    assert await can_log_in(tmp_path, EMAIL, NEW_PASSWORD)


async def test_superuser_update_unknown_email_fails(tmp_path: Path) -> None:
    """``superuser update`` of an email nobody has exits non-zero and creates nothing."""
    await keel("superuser", "create", EMAIL, PASSWORD, "--dir", tmp_path, check=True)
    result = await keel("superuser", "update", "nobody@example.com", PASSWORD, "--dir", tmp_path)
    assert 0 != result.returncode
    assert "no superuser with email nobody@example.com" in result.stdout
    assert not await can_log_in(tmp_path, "nobody@example.com", PASSWORD)


async def test_superuser_delete_removes(tmp_path: Path) -> None:
    """``superuser delete`` removes the superuser; deleting again exits non-zero."""
    await keel("superuser", "create", EMAIL, PASSWORD, "--dir", tmp_path, check=True)
    deleted = await keel("superuser", "delete", EMAIL, "--dir", tmp_path)
    assert (0, f"Deleted superuser {EMAIL}.\n") == (deleted.returncode, deleted.stdout)
    assert not await can_log_in(tmp_path, EMAIL, PASSWORD)
    again = await keel("superuser", "delete", EMAIL, "--dir", tmp_path)
    assert 0 != again.returncode


# -- migrate ---------------------------------------------------------------------


async def test_migrate_applies_then_has_nothing_to_apply(tmp_path: Path) -> None:
    """``migrate`` applies the system migrations once, then prints "nothing to apply"."""
    first = await keel("migrate", "--dir", tmp_path)
    assert 0 == first.returncode, first.stdout + first.stderr
    assert first.stdout.startswith("applied ")
    second = await keel("migrate", "--dir", tmp_path)
    assert (0, "nothing to apply\n") == (second.returncode, second.stdout)


# -- schema apply / export ---------------------------------------------------------


async def test_schema_apply_creates_collections(tmp_path: Path) -> None:
    """``schema apply`` creates the collections of a YAML file and prints each create."""
    schema = write_schema(tmp_path / "schema.yaml", SCHEMA)
    result = await keel("schema", "apply", schema, "--dir", tmp_path / "data")
    assert (0, "create authors\ncreate books\n") == (result.returncode, result.stdout)
    collections = await user_collections(tmp_path / "data")
    assert ["authors", "books"] == [c["name"] for c in collections]
    relation = next(f for f in collections[1]["fields"] if f["name"] == "author")
    assert "pbc_1000000001" == relation["collectionId"]


async def test_schema_apply_twice_prints_no_changes(tmp_path: Path) -> None:
    """Applying the same file again changes nothing and prints "No changes."."""
    schema = write_schema(tmp_path / "schema.yaml", SCHEMA)
    await keel("schema", "apply", schema, "--dir", tmp_path / "data", check=True)
    before = await user_collections(tmp_path / "data")
    result = await keel("schema", "apply", schema, "--dir", tmp_path / "data")
    assert (0, "No changes.\n") == (result.returncode, result.stdout)
    assert before == await user_collections(tmp_path / "data")


async def test_schema_apply_rename_keeps_data(tmp_path: Path) -> None:
    """Renaming a field (same id, new name) prints an update and keeps its values."""
    data_dir = tmp_path / "data"
    schema = write_schema(tmp_path / "schema.yaml", SCHEMA)
    await keel("schema", "apply", schema, "--dir", data_dir, check=True)
    async with open_app(data_dir) as app:
        info = superuser_info(app)
        author = await create_record(app, app.collection("authors"), {"name": "Herbert"}, info)
        book = await create_record(
            app, app.collection("books"), {"title": "Dune", "author": author.id}, info
        )

    renamed = orjson.loads(orjson.dumps(SCHEMA))
    renamed["collections"][1]["fields"][0]["name"] = "heading"
    result = await keel(
        "schema", "apply", write_schema(tmp_path / "renamed.yaml", renamed), "--dir", data_dir
    )
    assert (0, "update books: field title -> heading\n") == (result.returncode, result.stdout)

    async with open_app(data_dir) as app:
        stored = await view_record(app, app.collection("books"), book.id, superuser_info(app))
    shown = stored.to_json(show_hidden=True)
    assert ("Dune", author.id) == (shown.get("heading"), shown.get("author"))
    assert "title" not in shown


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
async def test_schema_export_round_trips(tmp_path: Path, suffix: str) -> None:
    """A file written by ``schema export`` recreates the same collections on a fresh dir."""
    source, target = tmp_path / "source", tmp_path / "target"
    await keel(
        "schema",
        "apply",
        write_schema(tmp_path / "schema.yaml", SCHEMA),
        "--dir",
        source,
        check=True,
    )
    exported = tmp_path / f"exported{suffix}"
    result = await keel("schema", "export", exported, "--dir", source)
    assert (0, f"Exported 2 collection(s) to {exported}.\n") == (result.returncode, result.stdout)

    applied = await keel("schema", "apply", exported, "--dir", target)
    assert (0, "create authors\ncreate books\n") == (applied.returncode, applied.stdout)
    assert await user_collections(source) == await user_collections(target)


@pytest.mark.parametrize("engine", ["postgres"])
async def test_schema_export_from_sqlite_applies_to_postgres(
    tmp_path: Path, database_url: str
) -> None:
    """A schema exported from a SQLite dir recreates the same collections on PostgreSQL."""
    source = tmp_path / "source"
    await keel(
        "schema",
        "apply",
        write_schema(tmp_path / "schema.yaml", SCHEMA),
        "--dir",
        source,
        check=True,
    )
    exported = tmp_path / "exported.yaml"
    result = await keel("schema", "export", exported, "--dir", source)
    assert 0 == result.returncode, result.stdout + result.stderr

    applied = await keel(
        "schema", "apply", exported, "--dir", tmp_path / "pg", database_url=database_url
    )
    assert (0, "create authors\ncreate books\n") == (applied.returncode, applied.stdout)
    assert await user_collections(source) == await user_collections(tmp_path / "pg", database_url)
