"""Process configuration: defaults ← TOML file ← ``KEEL_*`` environment ← flags.

The result is one frozen :class:`Config`. Settings an administrator edits at
run time live in the database instead (:mod:`keel.core.settings`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_MAX_BODY_SIZE = 32 << 20


@dataclass(frozen=True, slots=True)
class Config:
    """Everything a Keel process needs to start."""

    #: Folder for the SQLite database and local data.
    data_dir: str = "keel_data"
    #: Database URL; empty means ``sqlite:///<data_dir>/data.db``.
    database_url: str = ""
    #: ``host:port`` to listen on.
    http: str = "127.0.0.1:8090"
    #: Worker processes; 0 means one per CPU core.
    workers: int = 0
    #: Largest accepted request body, in bytes (JSON and forms without files).
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    #: Largest accepted multipart body with files, in bytes; each file is also
    #: limited by its field's ``maxSize``. Files stream to temporary disk
    #: files, never whole into memory.
    max_upload_size: int = 8 << 30
    #: Redis for fan-out across worker processes and nodes (realtime), e.g.
    #: ``redis://127.0.0.1:6379/0``; empty: in-process only, and other workers
    #: notice changes by polling the database.
    redis_url: str = ""
    #: Where record files live: empty means the folder ``<data_dir>/storage``;
    #: or ``s3://KEY:SECRET@bucket/prefix?endpoint=…&region=…`` for
    #: S3-compatible object storage.
    storage_url: str = ""
    #: SQLite ``synchronous`` setting: FULL (durable on power loss) or NORMAL.
    sqlite_synchronous: str = "FULL"
    #: Time budget of one SQL statement, in milliseconds; past it the request
    #: gets a 400 and the worker moves on.
    statement_timeout_ms: int = 10_000
    #: argon2id cost for new password hashes: OWASP's recommended minimum
    #: (19 MiB, 2 passes, 1 lane), about the cost of PocketBase's bcrypt(10).
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    #: Comma-separated IPs or CIDR networks of reverse proxies whose
    #: ``X-Forwarded-For``-style headers (named in the ``trustedProxy``
    #: settings) are believed; the client IP is the peer address otherwise.
    trusted_proxies: str = "127.0.0.1/32,::1/128"
    #: Always-on limits of the auth endpoints (sign-in, OTP, reset, …), per
    #: client IP and per identity (email, OTP id), in a moving window; 0 turns
    #: one off. Counted per worker process until a shared store is configured.
    auth_ip_limit: int = 30
    auth_identity_limit: int = 10
    auth_window_seconds: int = 60

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir) / 'data.db'}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or str(Path(self.data_dir) / "storage")

    @property
    def resolved_workers(self) -> int:
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


def _coerce(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Config)}[name]
    if kind in ("int", int):
        return int(raw)
    return str(raw)


def load_config(
    toml_path: str | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Config:
    """Build the configuration from its four sources, later ones winning.

    Args:
        toml_path: a TOML file with keys named like the fields; ``KEEL_CONFIG``
            names one when this is ``None``.
        environ: the environment to read ``KEEL_<FIELD>`` from.
        overrides: values from command-line flags; ``None`` values are skipped.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = toml_path or env.get("KEEL_CONFIG")
    names = {f.name for f in fields(Config)}
    if path:
        with open(path, "rb") as fh:
            for key, raw in tomllib.load(fh).items():
                if key in names:
                    values[key] = _coerce(key, raw)
    for name in names:
        raw = env.get(f"KEEL_{name.upper()}")
        if raw is not None and raw != "":
            values[name] = _coerce(name, raw)
    for key, raw in overrides.items():
        if raw is not None:
            values[key] = _coerce(key, raw)
    return replace(Config(), **values)
