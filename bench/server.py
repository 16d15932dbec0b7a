"""The systems under test: start one on a free 127.0.0.1 port, stop it by PID.

Each system is a context manager. Entering it prepares a fresh data folder,
starts the server in its own process group and waits until it answers;
leaving it (normally, on an error or on Ctrl-C) stops that process group by
the PID it started, SIGTERM first and SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
START_TIMEOUT = 60.0
STOP_GRACE = 10.0


#: Keel's always-on auth rate limits are off in the benchmark: PocketBase has
#: none by default, and the sign-in scenario measures hashing, not refusals.
KEEL_ENV = {"KEEL_AUTH_IP_LIMIT": "0", "KEEL_AUTH_IDENTITY_LIMIT": "0"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    """A started server: where it listens and what it is."""

    name: str
    url: str
    data_dir: Path
    probe: str
    pid: int  # also the process group id: the server runs in its own session


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server did not answer {url} within {START_TIMEOUT:.0f} s; see {log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the process group led by ``proc`` (it was started in a new session)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_GRACE)
    except ProcessLookupError:
        pass  # already gone


@contextmanager
def serving(
    name: str, cmd: list[str], url: str, data_dir: Path, env: dict[str, str], probe: str
) -> Iterator[Running]:
    """Run ``cmd`` until the ``with`` block ends; its output goes to ``data_dir/../NAME.log``."""
    log = data_dir.parent / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: Ctrl-C reaches us, not it
        )
    try:
        _wait_ready(proc, url + probe, log)
        yield Running(name, url, data_dir, probe, proc.pid)
    finally:
        _stop(proc)


def reset_postgres(admin_url: str, database: str) -> str:
    """Drop and recreate ``database``; return its URL."""
    for sql in (
        f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
        f'CREATE DATABASE "{database}"',
    ):
        subprocess.run(
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", admin_url, "-c", sql],
            check=True,
            timeout=60,
            capture_output=True,
        )
    return admin_url.rsplit("/", 1)[0] + "/" + database


@dataclass
class Launcher:
    """How to prepare and start one system. ``kind`` is pocketbase, keel or ceiling."""

    name: str
    kind: str
    bin_dir: Path
    workers: int
    postgres_admin_url: str = ""
    postgres_database: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    database_url: str = ""

    def superuser(self, data_dir: Path, email: str, password: str) -> None:
        """Create the superuser the benchmark logs in with (before the server starts)."""
        if self.kind == "pocketbase":
            cmd = [str(self.bin_dir / "pocketbase"), "superuser", "upsert", email, password]
            cmd += ["--dir", str(data_dir)]
        elif self.kind == "keel":
            cmd = [str(self.bin_dir / "keel"), "superuser", "create", email, password]
            cmd += ["--dir", str(data_dir)]
        else:
            return
        subprocess.run(
            cmd, env={**os.environ, **self.env()}, check=True, timeout=120, capture_output=True
        )

    def password_hash(self, data_dir: Path) -> str:
        """The superuser's stored password hash, to state the hashing cost used."""
        sql = "SELECT password FROM _superusers LIMIT 1"
        if self.database_url:
            out = subprocess.run(
                ["psql", "-At", self.database_url, "-c", sql],
                check=True,
                timeout=60,
                capture_output=True,
                text=True,
            )
            return out.stdout.strip()
        with closing(sqlite3.connect(data_dir / "data.db")) as db:
            return str(db.execute(sql).fetchone()[0])

    def env(self) -> dict[str, str]:
        env = dict(self.extra_env)
        if self.database_url:
            env["KEEL_DATABASE_URL"] = self.database_url
        return env

    def command(self, port: int, data_dir: Path) -> tuple[list[str], str]:
        """The server command line and the path that answers once it is up."""
        listen = f"127.0.0.1:{port}"
        if self.kind == "pocketbase":
            pocketbase = str(self.bin_dir / "pocketbase")
            return [pocketbase, "serve", "--http", listen, "--dir", str(data_dir)], "/api/health"
        if self.kind == "keel":
            keel = [str(self.bin_dir / "keel"), "serve", "--http", listen, "--dir", str(data_dir)]
            return [*keel, "--workers", str(self.workers)], "/api/health"
        ceiling = [str(self.bin_dir / "python"), str(BENCH_DIR / "ceiling.py")]
        return [*ceiling, "--port", str(port), "--workers", str(self.workers)], "/"

    @contextmanager
    def start(self, work_dir: Path, email: str, password: str) -> Iterator[Running]:
        """A fresh data folder under ``work_dir``, the superuser, then the running server."""
        data_dir = work_dir / self.name / "data"
        data_dir.mkdir(parents=True)
        if self.postgres_admin_url:
            self.database_url = reset_postgres(self.postgres_admin_url, self.postgres_database)
        self.superuser(data_dir, email, password)
        port = free_port()
        cmd, probe = self.command(port, data_dir)
        url = f"http://127.0.0.1:{port}"
        with serving(self.name, cmd, url, data_dir, self.env(), probe) as running:
            yield running
