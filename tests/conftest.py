"""Shared fixtures: a fresh Keel app per test, on SQLite and on PostgreSQL.

PostgreSQL comes from ``KEEL_TEST_POSTGRES_URL`` (default: the local server as
user ``postgres``). Each test gets its own database, dropped afterwards. When
the server is unreachable the PostgreSQL cases skip, except under ``CI=true``,
where a missing service is a failure.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from keel.core.app import App
from keel.core.config import Config
from keel.http.app import create_app
from tests.oidc import oidc_provider  # noqa: F401  (fixture)
from tests.s3 import s3_server  # noqa: F401  (fixture)
from tests.smtp import smtp_server  # noqa: F401  (fixture)

POSTGRES_URL = os.environ.get(
    "KEEL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SUPERUSER_EMAIL = "admin@example.com"
SUPERUSER_PASSWORD = "1234567890"


TEST_DATABASE = "keel_tests"


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.partition("?")[0].rpartition("/")
    return f"{base}/{name}"


async def _admin_connection(url: str = POSTGRES_URL) -> Any:
    try:
        return await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")


async def create_postgres_database() -> str:
    """A URL to a new, empty PostgreSQL schema of its own.

    Each test gets a schema (not a whole database, which is much slower to
    create) in the ``keel_tests`` database; asyncpg passes the URL's
    ``search_path`` parameter to the server.
    """
    conn = await _admin_connection()
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", TEST_DATABASE)
        if not exists:
            # Another test process may create it at the same moment.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
    finally:
        await conn.close()
    schema = "t_" + secrets.token_hex(6)
    url = _with_database(POSTGRES_URL, TEST_DATABASE)
    conn = await _admin_connection(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    return f"{url}?search_path={schema}"


async def drop_postgres_database(url: str) -> None:
    """Drop the schema made by :func:`create_postgres_database`."""
    base, _, query = url.partition("?search_path=")
    conn = await _admin_connection(base)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{query}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> str:
    """The storage engine under test; every app-level test runs on both."""
    engine_name: str = request.param
    return engine_name


@pytest.fixture
async def database_url(engine: str, tmp_path: Path) -> AsyncIterator[str]:
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'data.db'}"
        return
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    # A cheap argon2id cost keeps per-test superuser logins fast.
    return Config(
        data_dir=str(tmp_path),
        database_url=database_url,
        max_body_size=1 << 20,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )


@pytest.fixture
async def app(config: Config) -> AsyncIterator[App]:
    keel = App(config)
    await keel.start()
    try:
        yield keel
    finally:
        await keel.stop()


@pytest.fixture
async def client(app: App) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the ASGI app in-process (the App is started)."""
    transport = httpx.ASGITransport(app=create_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as http:
        yield http


@pytest.fixture
async def superuser_token(client: httpx.AsyncClient, app: App) -> str:
    from keel.core.actions.records import create_record
    from keel.core.request import Auth, RequestInfo

    coll = app.collection("_superusers")
    info = RequestInfo(auth=Auth(collection=coll))
    await create_record(
        app,
        coll,
        {
            "email": SUPERUSER_EMAIL,
            "password": SUPERUSER_PASSWORD,
            "passwordConfirm": SUPERUSER_PASSWORD,
        },
        info,
    )
    response = await client.post(
        "/api/collections/_superusers/auth-with-password",
        json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD},
    )
    assert 200 == response.status_code, response.text
    token: str = response.json()["token"]
    return token


@pytest.fixture
def su(superuser_token: str) -> dict[str, str]:
    """Headers authenticating as the superuser."""
    return {"Authorization": superuser_token}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("engine") == "postgres":
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path
