"""A real ``keel serve`` process per test, on the engine under test.

The server listens on 127.0.0.1 on a free port with two workers, has a
superuser ``admin@example.com`` / ``1234567890`` (``su`` holds its token
header), and is stopped by PID when the test ends. Its output goes to
``server.log`` next to the data folder and is shown when it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

KEEL = str(Path(sys.executable).with_name("keel"))
SUPERUSER_EMAIL = "admin@example.com"
SUPERUSER_PASSWORD = "1234567890"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Server:
    """A running ``keel serve`` process."""

    base_url: str
    data_dir: Path
    pid: int
    log: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def keel_env(database_url: str) -> dict[str, str]:
    """The environment of a keel process: no inherited KEEL_*, the PostgreSQL URL if any."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    # A cheap argon2id cost: password hashing is not what these tests measure.
    env.update(
        KEEL_ARGON2_TIME_COST="1", KEEL_ARGON2_MEMORY_KIB="1024", KEEL_ARGON2_PARALLELISM="1"
    )
    if database_url.startswith("postgres"):
        env["KEEL_DATABASE_URL"] = database_url
    return env


def _wait_healthy(proc: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if 200 == httpx.get(f"{base_url}/api/health", timeout=1.0).status_code:
                return
        except httpx.TransportError:
            pass
        try:
            proc.wait(timeout=0.05)  # the pause between polls also notices an early exit
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"keel serve exited with {proc.returncode}:\n{log.read_text()}")
    pytest.fail(f"keel serve not healthy after {START_TIMEOUT}s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)
    # The server runs in its own session (group id = its PID): workers left
    # behind by an unclean exit are still in that group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def create_superuser(data_dir: Path, env: dict[str, str]) -> None:
    """``keel superuser create`` the test superuser in ``data_dir``; it must succeed."""
    created = subprocess.run(
        [KEEL, "superuser", "create", SUPERUSER_EMAIL, SUPERUSER_PASSWORD, "--dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 0 == created.returncode, created.stdout + created.stderr


@contextlib.contextmanager
def start_server(
    data_dir: Path, env: dict[str, str], log: Path, workers: int = 2
) -> Iterator[Server]:
    """``keel serve`` on a free 127.0.0.1 port until the block ends; stopped by PID.

    Its output goes to ``log``, which is shown if it does not become healthy.
    """
    base_url = f"http://127.0.0.1:{free_port()}"
    command = [KEEL, "serve", "--http", base_url.removeprefix("http://"), "--dir", str(data_dir)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--workers", str(workers)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(proc, base_url, log)
        yield Server(base_url=base_url, data_dir=data_dir, pid=proc.pid, log=log)
    finally:
        _stop(proc)


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    """``keel serve --workers 2`` on a fresh data folder, with a superuser."""
    data_dir = tmp_path / "keel_data"
    env = keel_env(database_url)
    create_superuser(data_dir, env)
    with start_server(data_dir, env, tmp_path / "server.log") as running:
        yield running


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``server`` that never reuses a connection, so requests spread over workers."""
    async with httpx.AsyncClient(
        base_url=server.base_url,
        limits=httpx.Limits(max_keepalive_connections=0),
        timeout=30.0,
    ) as client:
        yield client


async def superuser_headers(client: httpx.AsyncClient) -> dict[str, str]:
    """Headers of the test superuser, logged in through ``client``; the login must succeed."""
    response = await client.post(
        "/api/collections/_superusers/auth-with-password",
        json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD},
    )
    assert 200 == response.status_code, response.text
    return {"Authorization": response.json()["token"]}


def public_collection(name: str, *fields: dict[str, Any]) -> dict[str, Any]:
    """A base collection anyone may list, view, create, update and delete."""
    rules = dict.fromkeys(("listRule", "viewRule", "createRule", "updateRule", "deleteRule"), "")
    return {"name": name, **rules, "fields": list(fields)}


@pytest.fixture
async def su(http: httpx.AsyncClient) -> dict[str, str]:
    """Headers of the superuser, logged in through the API."""
    return await superuser_headers(http)
