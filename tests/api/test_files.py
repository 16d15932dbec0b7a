"""File fields through the API: uploads, modifiers, downloads, thumbnails, protected files.

Every test runs on SQLite and PostgreSQL, with local and S3 (moto) storage.
"""

from __future__ import annotations

import gc
import io
import secrets
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from keel.core.app import App
from keel.core.config import Config
from keel.core.files import collect_garbage
from tests.s3 import S3Server

DOCS: dict[str, Any] = {
    "name": "docs",
    "listRule": "",
    "viewRule": "",
    "createRule": "",
    "updateRule": "",
    "deleteRule": "",
    "fields": [
        {"name": "title", "type": "text", "required": True},
        {"name": "files", "type": "file", "maxSelect": 5, "maxSize": 200_000},
        {"name": "cover", "type": "file", "maxSelect": 1, "thumbs": ["20x10", "0x8", "20x10t"]},
        {"name": "photo", "type": "file", "maxSelect": 1, "mimeTypes": ["image/png"]},
    ],
}


@pytest.fixture(params=["local", "s3"])
def config(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Config:
    """The usual test configuration, with local or S3 file storage."""
    storage = ""
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        storage = server.url("t" + secrets.token_hex(6))
    return Config(
        data_dir=str(tmp_path),
        database_url=database_url,
        max_body_size=1 << 20,
        max_upload_size=4 << 20,
        storage_url=storage,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )


@pytest.fixture
async def docs(client: httpx.AsyncClient, su: dict[str, str]) -> AsyncIterator[str]:
    response = await client.post("/api/collections", json=DOCS, headers=su)
    assert 200 == response.status_code, response.text
    yield response.json()["id"]


def png(width: int = 40, height: int = 20) -> bytes:
    """A PNG whose top half is red and bottom half blue."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width, height // 2))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def create(client: httpx.AsyncClient, files: Any, **data: Any) -> httpx.Response:
    return await client.post(
        "/api/collections/docs/records", data={"title": "t", **data}, files=files
    )


async def stored(app: App) -> list[str]:
    return await app.files.list("")


# -- uploads ----------------------------------------------------------------------


async def test_upload_and_download(client: httpx.AsyncClient, docs: str, app: App) -> None:
    """Uploaded files get server-made names, are stored, and download with nosniff."""
    response = await create(
        client, [("files", ("Report Q1.TXT", b"hello", "text/plain")), ("files", ("b.txt", b"x"))]
    )
    assert 200 == response.status_code, response.text
    record = response.json()
    names = record["files"]
    assert 2 == len(names)
    assert names[0].startswith("report_q1_") and names[0].endswith(".txt")
    assert sorted(f"{docs}/{record['id']}/{n}" for n in names) == await stored(app)
    got = await client.get(f"/api/files/docs/{record['id']}/{names[0]}")
    assert (200, b"hello") == (got.status_code, got.content)
    assert "nosniff" == got.headers["x-content-type-options"]
    assert got.headers["content-disposition"].startswith("inline")
    download = await client.get(f"/api/files/{docs}/{record['id']}/{names[0]}?download=1")
    assert download.headers["content-disposition"].startswith("attachment")


async def test_modifiers_replace_and_remove(client: httpx.AsyncClient, docs: str, app: App) -> None:
    """`field` replaces, `field+` appends, `field-` removes; replaced files leave storage."""
    record = (await create(client, [("files", ("a.txt", b"a"))])).json()
    url = f"/api/collections/docs/records/{record['id']}"
    first = record["files"][0]
    added = await client.patch(url, files=[("files+", ("b.txt", b"b"))])
    assert 200 == added.status_code, added.text
    assert first == added.json()["files"][0] and 2 == len(added.json()["files"])
    second = added.json()["files"][1]
    removed = await client.patch(url, json={"files-": [first]})
    assert [second] == removed.json()["files"]
    replaced = await client.patch(url, files=[("files", ("c.txt", b"c"))])
    assert 1 == len(replaced.json()["files"]) and second not in replaced.json()["files"]
    await app.idle()  # deletions of released files run after the commit
    keys = await stored(app)
    assert [f"{docs}/{record['id']}/{replaced.json()['files'][0]}"] == keys
    unknown = await client.patch(url, json={"files": ["bogus_abcdefghij.txt"]})
    assert 400 == unknown.status_code
    assert "validation_invalid_file" == unknown.json()["data"]["files"]["code"]


async def test_single_file_field_and_clearing(
    client: httpx.AsyncClient, docs: str, app: App
) -> None:
    """A new upload replaces a single file; null clears it and deletes the file."""
    record = (await create(client, [("cover", ("a.png", png()))])).json()
    url = f"/api/collections/docs/records/{record['id']}"
    again = await client.patch(url, files=[("cover", ("b.png", png()))])
    assert again.json()["cover"] != record["cover"]
    cleared = await client.patch(url, json={"cover": None})
    assert "" == cleared.json()["cover"]
    await app.idle()
    assert [] == await stored(app)


async def test_limits_and_types(client: httpx.AsyncClient, docs: str, app: App) -> None:
    """Too big, the wrong type, or too many files: 400 and nothing stored or saved."""
    big = await create(client, [("files", ("big.bin", b"x" * 200_001))])
    assert 400 == big.status_code
    assert "validation_file_size_limit" == big.json()["data"]["files"]["code"]
    wrong = await create(client, [("photo", ("fake.png", b"GIF89a not a png"))])
    assert 400 == wrong.status_code
    assert "validation_invalid_mime_type" == wrong.json()["data"]["photo"]["code"]
    many = await create(client, [("files", (f"{i}.txt", b"x")) for i in range(6)])
    assert 400 == many.status_code
    wrong_field = await create(client, [("title", ("t.txt", b"x"))])
    assert 400 == wrong_field.status_code
    listed = await client.get("/api/collections/docs/records")
    assert 0 == listed.json()["totalItems"]
    assert [] == await stored(app)


async def test_failed_request_leaves_no_file(
    client: httpx.AsyncClient, docs: str, app: App
) -> None:
    """A valid upload in an invalid request (missing title) is removed again."""
    response = await client.post(
        "/api/collections/docs/records", files=[("files", ("a.txt", b"a"))]
    )
    assert 400 == response.status_code
    assert [] == await stored(app)


async def test_oversized_body_is_refused_early(
    client: httpx.AsyncClient, docs: str, app: App
) -> None:
    """A body over the upload limit gets 413 from its Content-Length, storing nothing."""
    response = await create(client, [("files", ("a.bin", b"x" * (4 << 20)))])
    assert 413 == response.status_code
    assert {"status", "message", "data"} == set(response.json())
    assert [] == await stored(app)


@pytest.mark.parametrize(
    "name",
    [
        "../../evil.txt",
        "..%2f..%2fevil.txt",
        "\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fevil.txt",  # fullwidth ../../
        "..\\..\\evil.txt",
        "/etc/passwd",
        "C:\\Windows\\evil.txt",
        "evil\x00.txt",
        "a" * 5000 + ".txt",
        ".htaccess",
    ],
)
async def test_hostile_names_stay_inside(
    client: httpx.AsyncClient, docs: str, app: App, tmp_path: Path, name: str
) -> None:
    """Whatever the upload is called, its stored name is one safe segment under the record."""
    response = await create(client, [("files", (name, b"payload"))])
    if response.status_code == 400:  # the multipart parser refuses some headers outright
        assert [] == await stored(app)
        return
    assert 200 == response.status_code, response.text
    record = response.json()
    (stored_name,) = record["files"]
    assert "/" not in stored_name and "\\" not in stored_name and ".." not in stored_name
    assert [f"{docs}/{record['id']}/{stored_name}"] == await stored(app)
    # Anything named evil* must sit in a record folder of a storage root.
    outside = [p for p in tmp_path.parent.rglob("evil*") if p.parents[2].name != "storage"]
    assert [] == outside


# -- serving ----------------------------------------------------------------------


async def test_range_and_etag(client: httpx.AsyncClient, docs: str) -> None:
    """Range requests get 206 with Content-Range; a matching If-None-Match gets 304."""
    data = bytes(range(256)) * 4
    record = (await create(client, [("files", ("d.bin", data))])).json()
    url = f"/api/files/docs/{record['id']}/{record['files'][0]}"
    full = await client.get(url)
    etag = full.headers["etag"]
    part = await client.get(url, headers={"Range": "bytes=10-19"})
    assert (206, data[10:20]) == (part.status_code, part.content)
    assert f"bytes 10-19/{len(data)}" == part.headers["content-range"]
    tail = await client.get(url, headers={"Range": "bytes=-5"})
    assert data[-5:] == tail.content
    beyond = await client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert 416 == beyond.status_code
    assert 304 == (await client.get(url, headers={"If-None-Match": etag})).status_code
    missing = await client.get(f"/api/files/docs/{record['id']}/nope_abcdefghij.bin")
    assert 404 == missing.status_code


async def test_active_content_is_downloaded(client: httpx.AsyncClient, docs: str) -> None:
    """HTML and SVG are served as attachments with a sandboxing CSP."""
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    record = (
        await create(
            client,
            [("files", ("x.svg", svg, "image/svg+xml")), ("files", ("x.html", b"<html>hi"))],
        )
    ).json()
    for name in record["files"]:
        got = await client.get(f"/api/files/docs/{record['id']}/{name}")
        assert got.headers["content-disposition"].startswith("attachment")
        assert "sandbox" in got.headers["content-security-policy"]


async def test_thumbnails(client: httpx.AsyncClient, docs: str, app: App) -> None:
    """Listed thumb sizes are made once and kept; others get the original."""
    source = png(40, 80)  # tall: a 20x10 crop keeps a band of it
    record = (await create(client, [("cover", ("c.png", source))])).json()
    url = f"/api/files/docs/{record['id']}/{record['cover']}"
    thumb = await client.get(url + "?thumb=20x10t")
    image = Image.open(io.BytesIO(thumb.content))
    assert (20, 10) == image.size
    assert (255, 0, 0) == image.convert("RGB").getpixel((10, 5))  # the top (red) band
    assert (4, 8) == Image.open(io.BytesIO((await client.get(url + "?thumb=0x8")).content)).size
    original = await client.get(url + "?thumb=33x33")
    assert source == original.content
    keys = await stored(app)
    assert 3 == len(keys)  # the original and two thumbnails
    await client.delete(f"/api/collections/docs/records/{record['id']}")
    await app.idle()
    assert [] == await stored(app)


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


async def test_image_bomb_is_not_decoded(client: httpx.AsyncClient, docs: str) -> None:
    """A huge declared image gets no thumbnail (the original bytes come back)."""
    bomb = bomb_png(100_000, 100_000)
    record = (await create(client, [("cover", ("b.png", bomb))])).json()
    got = await client.get(f"/api/files/docs/{record['id']}/{record['cover']}?thumb=20x10")
    assert (200, bomb) == (got.status_code, got.content)


async def test_protected_files(client: httpx.AsyncClient, su: dict[str, str], docs: str) -> None:
    """Protected files need a file token of someone the view rule lets see the record."""
    await client.patch(
        "/api/collections/docs",
        json={
            "viewRule": "@request.auth.id != ''",
            "fields": [
                *[f for f in DOCS["fields"]],
                {"name": "secret", "type": "file", "maxSelect": 1, "protected": True},
            ],
        },
        headers=su,
    )
    record = (await create(client, [("secret", ("s.txt", b"classified"))])).json()
    assert "secret" not in record or record["secret"]  # guests may create (createRule "")
    view = await client.get(f"/api/collections/docs/records/{record['id']}", headers=su)
    name = view.json()["secret"]
    url = f"/api/files/docs/{record['id']}/{name}"
    assert 404 == (await client.get(url)).status_code
    assert 401 == (await client.post("/api/files/token")).status_code
    token = (await client.post("/api/files/token", headers=su)).json()["token"]
    got = await client.get(f"{url}?token={token}")
    assert (200, b"classified") == (got.status_code, got.content)
    assert 404 == (await client.get(f"{url}?token={token}x")).status_code
    assert 404 == (await client.get(f"{url}?token={su['Authorization']}")).status_code


async def test_deleting_collection_deletes_files(
    client: httpx.AsyncClient, su: dict[str, str], docs: str, app: App
) -> None:
    """Dropping a collection deletes its stored files."""
    await create(client, [("files", ("a.txt", b"a"))])
    assert 1 == len(await stored(app))
    assert 204 == (await client.delete("/api/collections/docs", headers=su)).status_code
    await app.idle()
    assert [] == await stored(app)


async def test_garbage_collection(client: httpx.AsyncClient, docs: str, app: App) -> None:
    """gc deletes old unreferenced files and keeps referenced and recent ones."""
    record = (await create(client, [("files", ("a.txt", b"a"))])).json()
    orphan = f"{docs}/{record['id']}/orphan_abcdefghij.txt"
    await app.files.put(orphan, io.BytesIO(b"left behind"), "text/plain")
    assert [] == await collect_garbage(app)  # too recent: maybe a request in flight
    assert [orphan] == await collect_garbage(app, dry_run=True, grace_seconds=0)
    assert 2 == len(await stored(app))
    assert [orphan] == await collect_garbage(app, grace_seconds=0)
    assert [f"{docs}/{record['id']}/{record['files'][0]}"] == await stored(app)


async def test_unfinished_file_part_leaks_nothing(
    client: httpx.AsyncClient, docs: str, app: App
) -> None:
    """A body ending inside a file part is refused; its temporary file is closed, none stored."""
    body = b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n\r\nabc'
    response = await client.post(
        "/api/collections/docs/records",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert 400 == response.status_code  # no title: the unfinished part is not a file
    gc.collect()  # an unclosed temporary file would warn here (warnings are errors)
    assert [] == await stored(app)
