"""The ``keel`` command line."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
import yaml
from rich.console import Console

from keel import __version__
from keel.core.actions import records as record_actions
from keel.core.actions.collections import import_collections
from keel.core.app import App
from keel.core.config import Config, load_config
from keel.core.errors import KeelError
from keel.core.files import collect_garbage
from keel.core.migrations.runner import migrate as run_migrations
from keel.core.request import Auth, RequestInfo

T = TypeVar("T")

cli = typer.Typer(
    help="Keel: a self-hosted backend with a PocketBase-compatible API.\n\n"
    "Start with `keel serve`, then create an administrator with "
    "`keel superuser create EMAIL PASSWORD`.",
    no_args_is_help=True,
    add_completion=False,
)
superuser = typer.Typer(help="Manage superusers (administrators).", no_args_is_help=True)
schema = typer.Typer(
    help="Collections as code: export and apply YAML or JSON.", no_args_is_help=True
)
files = typer.Typer(help="Record files in the file storage.", no_args_is_help=True)
cli.add_typer(superuser, name="superuser")
cli.add_typer(schema, name="schema")
cli.add_typer(files, name="files")
console = Console()

DirOption = Annotated[
    str | None,
    typer.Option(
        "--dir", help="Data folder (SQLite database and local files). Default: ./keel_data"
    ),
]


def _version(value: bool) -> None:
    if value:
        console.print(f"keel {__version__}")
        raise typer.Exit()


@cli.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Keel command line."""


def _config(data_dir: str | None, **overrides: Any) -> Config:
    return load_config(data_dir=data_dir, **overrides)


def _with_app(config: Config, work: Callable[[App], Awaitable[T]]) -> T:
    async def run() -> T:
        app = App(config)
        await app.start()
        try:
            return await work(app)
        finally:
            await app.stop()

    try:
        return asyncio.run(run())
    except KeelError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        if exc.data:
            console.print(orjson.dumps(exc.data, option=orjson.OPT_INDENT_2).decode())
        raise typer.Exit(1) from None


@cli.command()
def serve(
    http: Annotated[
        str | None, typer.Option("--http", help="Address to listen on. Default: 127.0.0.1:8090")
    ] = None,
    data_dir: DirOption = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker processes. Default: one per CPU core.")
    ] = None,
) -> None:
    """Start the web server (REST API on http://HOST:PORT/api/)."""
    import uvicorn

    from keel.http.protocol import HttpProtocol

    config = _config(data_dir, http=http, workers=workers)
    host, _, port = config.http.rpartition(":")
    _with_app(config, lambda app: asyncio.sleep(0))  # apply migrations once, before workers start
    os.environ["KEEL_DATA_DIR"] = config.data_dir
    os.environ["KEEL_HTTP"] = config.http
    if config.database_url:
        os.environ["KEEL_DATABASE_URL"] = config.database_url
    n = config.resolved_workers
    console.print(
        f"Keel {__version__} serving http://{config.http}/api/ "
        f"with {n} worker(s), data in {config.data_dir}"
    )
    uvicorn.run(
        "keel.http.app:create_app_from_env",
        factory=True,
        host=host or "127.0.0.1",
        port=int(port),
        workers=n,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http=HttpProtocol,
        # The client address is Keel's to decide (KEEL_TRUSTED_PROXIES and the
        # trustedProxy settings); uvicorn must not rewrite it from headers.
        proxy_headers=False,
    )


@cli.command()
def migrate(data_dir: DirOption = None) -> None:
    """Apply pending system migrations."""

    async def run(app: App) -> list[str]:
        return await run_migrations(app.db)

    config = _config(data_dir)

    async def standalone() -> list[str]:
        app = App(config)
        await app.db.connect()
        try:
            return await run_migrations(app.db)
        finally:
            await app.db.close()

    applied = asyncio.run(standalone())
    console.print("\n".join(f"applied {name}" for name in applied) or "nothing to apply")


def _system_info(app: App) -> RequestInfo:
    return RequestInfo(
        auth=Auth(record=None, collection=app.collection("_superusers")), context="cli"
    )


async def _find_superuser(app: App, email: str) -> str | None:
    row = await app.db.fetch_one(
        "SELECT id FROM _superusers WHERE LOWER(email) = LOWER(?)", (email,)
    )
    return str(row[0]) if row else None


def _password(password: str | None) -> str:
    return password or typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@superuser.command("create")
def superuser_create(
    email: str, password: Annotated[str | None, typer.Argument()] = None, data_dir: DirOption = None
) -> None:
    """Create a superuser."""
    secret = _password(password)

    async def run(app: App) -> None:
        coll = app.collection("_superusers")
        body = {"email": email, "password": secret, "passwordConfirm": secret, "verified": True}
        await record_actions.create_record(app, coll, body, _system_info(app))

    _with_app(_config(data_dir), run)
    console.print(f"Created superuser {email}.")


@superuser.command("upsert")
def superuser_upsert(
    email: str, password: Annotated[str | None, typer.Argument()] = None, data_dir: DirOption = None
) -> None:
    """Create a superuser, or set the password of an existing one."""
    secret = _password(password)

    async def run(app: App) -> str:
        coll = app.collection("_superusers")
        found = await _find_superuser(app, email)
        if found:
            await record_actions.update_record(
                app, coll, found, {"password": secret, "passwordConfirm": secret}, _system_info(app)
            )
            return "Updated"
        await record_actions.create_record(
            app,
            coll,
            {"email": email, "password": secret, "passwordConfirm": secret, "verified": True},
            _system_info(app),
        )
        return "Created"

    console.print(f"{_with_app(_config(data_dir), run)} superuser {email}.")


@superuser.command("update")
def superuser_update(
    email: str, password: Annotated[str | None, typer.Argument()] = None, data_dir: DirOption = None
) -> None:
    """Change the password of an existing superuser."""
    secret = _password(password)

    async def run(app: App) -> bool:
        found = await _find_superuser(app, email)
        if not found:
            return False
        coll = app.collection("_superusers")
        await record_actions.update_record(
            app, coll, found, {"password": secret, "passwordConfirm": secret}, _system_info(app)
        )
        return True

    if not _with_app(_config(data_dir), run):
        console.print(f"[red]error:[/red] no superuser with email {email}")
        raise typer.Exit(1)
    console.print(f"Updated superuser {email}.")


@superuser.command("delete")
def superuser_delete(email: str, data_dir: DirOption = None) -> None:
    """Delete a superuser."""

    async def run(app: App) -> bool:
        found = await _find_superuser(app, email)
        if not found:
            return False
        await record_actions.delete_record(
            app, app.collection("_superusers"), found, _system_info(app)
        )
        return True

    if not _with_app(_config(data_dir), run):
        console.print(f"[red]error:[/red] no superuser with email {email}")
        raise typer.Exit(1)
    console.print(f"Deleted superuser {email}.")


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in {".yaml", ".yml"}


@schema.command("export")
def schema_export(file: Path, data_dir: DirOption = None) -> None:
    """Write every non-system collection to FILE (.yaml/.yml for YAML, else JSON)."""

    async def run(app: App) -> list[dict[str, Any]]:
        return [c.to_json() for c in app.collections if not c.system]

    collections = _with_app(_config(data_dir), run)
    doc = {"collections": collections}
    if _is_yaml(file):
        file.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    else:
        file.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    console.print(f"Exported {len(collections)} collection(s) to {file}.")


@schema.command("apply")
def schema_apply(
    file: Path,
    data_dir: DirOption = None,
    delete_missing: Annotated[
        bool, typer.Option("--delete-missing", help="Drop collections FILE does not list.")
    ] = False,
) -> None:
    """Create or update collections to match FILE, printing what changed. Idempotent."""
    text = file.read_text()
    try:
        doc = yaml.safe_load(text) if _is_yaml(file) else orjson.loads(text)
    except (yaml.YAMLError, orjson.JSONDecodeError) as exc:
        console.print(f"[red]error:[/red] {file} is not valid: {exc}")
        raise typer.Exit(1) from None
    if isinstance(doc, list):
        doc = {"collections": doc}
    doc = dict(doc or {})
    doc["deleteMissing"] = delete_missing

    async def run(app: App) -> list[str]:
        return await import_collections(app, doc)

    changes = _with_app(_config(data_dir), run)
    console.print("\n".join(changes) if changes else "No changes.")


@files.command("gc")
def files_gc(
    data_dir: DirOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be deleted.")
    ] = False,
) -> None:
    """Delete stored files no record names any more (older than an hour).

    They are left behind only when a process stops between storing an upload
    and saving its record, or when deleting a replaced file failed.
    """

    async def run(app: App) -> list[str]:
        return await collect_garbage(app, dry_run=dry_run)

    removed = _with_app(_config(data_dir), run)
    verb = "Would delete" if dry_run else "Deleted"
    console.print("\n".join(f"{verb} {key}" for key in removed) or "No orphan files.")


def main() -> None:
    cli()
