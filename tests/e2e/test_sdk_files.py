"""Record files through the official PocketBase JS SDK against a real ``keel serve``.

``tests/node/sdk_files.mjs`` drives the npm ``pocketbase`` package: it signs
in as the superuser, uploads a PNG as a ``File`` in a record create, and
fetches the original and its 100x100 thumb from the URLs ``pb.files.getURL``
builds; with a protected field it also fetches that file with and without a
``pb.files.getToken()`` token.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import SUPERUSER_EMAIL, SUPERUSER_PASSWORD, Server
from tests.oidc import NODE_DIR, node_for

pytestmark = pytest.mark.e2e

SDK_SCRIPT = NODE_DIR / "sdk_files.mjs"
SDK_TIMEOUT = 60.0
FIELDS: list[dict[str, Any]] = [
    {"name": "title", "type": "text"},
    {"name": "image", "type": "file", "maxSelect": 1, "thumbs": ["100x100"]},
]
GALLERY = {"name": "gallery", "listRule": "", "viewRule": "", "createRule": "", "fields": FIELDS}
# A stored name: the snake-cased stem, "_", ten random [a-z0-9], the extension.
STORED_PNG = re.compile(r"^photo_[a-z0-9]{10}\.png$")


@pytest.fixture
def node() -> str:
    """The node executable with the ``pocketbase`` SDK installed (asked first: it may skip)."""
    return node_for("pocketbase")


@pytest.fixture
def png(tmp_path: Path) -> bytes:
    """A 300x200 RGB PNG written to ``tmp_path / "photo.png"``."""
    image = Image.new("RGB", (300, 200), (200, 30, 30))
    for x in range(0, 300, 10):  # stripes, so a wrong crop or scale shows in the pixels
        image.paste((30, 30, 200), (x, 0, x + 5, 200))
    out = io.BytesIO()
    image.save(out, format="PNG")
    data = out.getvalue()
    (tmp_path / "photo.png").write_bytes(data)
    return data


async def create_collection(
    http: httpx.AsyncClient, su: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    """A collection created through the API."""
    created = await http.post("/api/collections", headers=su, json=body)
    assert 200 == created.status_code, created.text
    collection: dict[str, Any] = created.json()
    return collection


async def upload(node: str, server: Server, collection: str, png: Path, *extra: str) -> Any:
    """The JSON printed by ``sdk_files.mjs upload``, which must succeed."""
    args = [SUPERUSER_EMAIL, SUPERUSER_PASSWORD, collection, str(png), *extra]
    done = await asyncio.to_thread(
        subprocess.run,
        [node, str(SDK_SCRIPT), "upload", server.base_url, *args],
        cwd=NODE_DIR,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SDK_TIMEOUT,
    )
    assert 0 == done.returncode, f"sdk_files upload:\n{done.stderr}"
    return json.loads(done.stdout)


async def test_upload_then_fetch_original_and_thumb(
    node: str,
    server: Server,
    http: httpx.AsyncClient,
    su: dict[str, str],
    png: bytes,
    tmp_path: Path,
) -> None:
    """A PNG uploaded through the SDK comes back byte for byte, with a 100x100 PNG thumb."""
    gallery = await create_collection(http, su, GALLERY)

    result = await upload(node, server, "gallery", tmp_path / "photo.png")

    assert STORED_PNG.match(result["image"]), result["image"]
    url = urlsplit(result["url"])
    assert (f"/api/files/{gallery['id']}/{result['id']}/{result['image']}", "") == (
        url.path,
        url.query,
    )
    thumb_url = urlsplit(result["thumbUrl"])
    assert (url.path, {"thumb": ["100x100"]}) == (thumb_url.path, parse_qs(thumb_url.query))
    assert png == base64.b64decode(result["originalBytes"])
    with Image.open(io.BytesIO(base64.b64decode(result["thumbBytes"]))) as thumb:
        assert ("PNG", (100, 100)) == (thumb.format, thumb.size)
    assert "image/png" == result["thumbType"]
    assert "" != result["fileToken"]


async def test_protected_file_needs_the_sdk_file_token(
    node: str,
    server: Server,
    http: httpx.AsyncClient,
    su: dict[str, str],
    png: bytes,
    tmp_path: Path,
) -> None:
    """A protected file is 404 without a file token and served with ``pb.files.getToken()``'s."""
    vault = {
        **GALLERY,
        "name": "vault",
        "viewRule": "@request.auth.id != ''",
        "fields": [
            *FIELDS,
            {"name": "secret", "type": "file", "maxSelect": 1, "protected": True},
        ],
    }
    await create_collection(http, su, vault)

    result = await upload(node, server, "vault", tmp_path / "photo.png", "secret")

    protected = result["protected"]
    assert (404, 200) == (protected["statusWithoutToken"], protected["statusWithToken"])
    assert png == base64.b64decode(protected["bytes"])
    assert "" == urlsplit(protected["url"]).query
