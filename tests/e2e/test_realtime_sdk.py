"""Realtime through the official PocketBase JS SDK against a real ``keel serve``.

``tests/node/sdk_realtime.mjs`` subscribes from Node with
``pb.collection('notes').subscribe('*', cb)`` (the ``eventsource`` package
stands in for the browser's ``EventSource``), once plainly and once with a
``filter`` option; the test writes over HTTP and reads the events the SDK's
callbacks got, one JSON line each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, public_collection
from tests.oidc import NODE_DIR, node_for

pytestmark = pytest.mark.e2e

SDK_SCRIPT = NODE_DIR / "sdk_realtime.mjs"
LINE_TIMEOUT = 30.0
NOTES = public_collection("notes", {"name": "title", "type": "text"})


@pytest.fixture
def node() -> str:
    """The node executable with the SDK and ``eventsource`` installed (it may skip)."""
    node_for("pocketbase")
    return node_for("eventsource")


@contextlib.asynccontextmanager
async def sdk_subscriber(
    node: str, server: Server, count: int, filter_text: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``sdk_realtime.mjs`` running, subscribed (its ``ready`` line read); killed on exit."""
    proc = await asyncio.create_subprocess_exec(
        node,
        str(SDK_SCRIPT),
        server.base_url,
        "notes",
        str(count),
        filter_text,
        cwd=NODE_DIR,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        ready = await read_line(proc)
        assert ready["ready"] and ready["clientId"], ready
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def read_line(proc: asyncio.subprocess.Process) -> Any:
    """The next JSON line the script printed; fails with its stderr when it ended."""
    assert proc.stdout is not None and proc.stderr is not None
    line = await asyncio.wait_for(proc.stdout.readline(), LINE_TIMEOUT)
    if not line:
        await proc.wait()
        error = (await proc.stderr.read()).decode()
        pytest.fail(f"sdk_realtime.mjs exited {proc.returncode}:\n{error}")
    return json.loads(line)


async def test_sdk_receives_create_update_delete(
    node: str, server: Server, http: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """The SDK's callbacks get create, update and delete, with a filter's enter/leave too."""
    created = await http.post("/api/collections", json=NOTES, headers=su)
    assert 200 == created.status_code, created.text
    async with sdk_subscriber(node, server, 8, "title != 'hidden'") as proc:
        record = (await http.post("/api/collections/notes/records", json={"title": "a"})).json()
        url = f"/api/collections/notes/records/{record['id']}"
        assert 200 == (await http.patch(url, json={"title": "hidden"})).status_code
        assert 200 == (await http.patch(url, json={"title": "b"})).status_code
        assert 204 == (await http.delete(url)).status_code
        lines = [await read_line(proc) for _ in range(8)]
        assert 0 == await asyncio.wait_for(proc.wait(), LINE_TIMEOUT)
    rid = record["id"]
    got = {
        sub: [(e["action"], e["id"], e["title"], e["change"]) for e in lines if e["sub"] == sub]
        for sub in ("all", "filtered")
    }
    assert {
        "all": [
            ("create", rid, "a", ""),
            ("update", rid, "hidden", ""),
            ("update", rid, "b", ""),
            ("delete", rid, "b", ""),
        ],
        "filtered": [
            ("create", rid, "a", ""),
            ("delete", rid, "a", "leave"),  # the version it last saw
            ("create", rid, "b", "enter"),
            ("delete", rid, "b", ""),
        ],
    } == got
