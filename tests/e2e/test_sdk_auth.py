"""Auth flows of the official PocketBase JS SDK against a real ``keel serve``.

``tests/node/sdk_auth.mjs`` drives the npm ``pocketbase`` package: register,
log in with a password and refresh, request an OTP and log in with the code
read from the mail Keel sent to a real local SMTP server. The same script and
flow pass against the real PocketBase binary.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.oidc import NODE_DIR, node_for
from tests.smtp import SMTPServer

pytestmark = pytest.mark.e2e

SDK_SCRIPT = NODE_DIR / "sdk_auth.mjs"
SDK_TIMEOUT = 60.0
EMAIL = "jane@example.com"
PASSWORD = "jane-secret-123"
USERS = {
    "name": "users",
    "type": "auth",
    "createRule": "",
    "viewRule": "id = @request.auth.id",
    "otp": {"enabled": True},
}


@pytest.fixture
def node() -> str:
    """The node executable with the ``pocketbase`` SDK installed (asked first: it may skip)."""
    return node_for("pocketbase")


@pytest.fixture
async def users(
    http: httpx.AsyncClient, su: dict[str, str], smtp_server: SMTPServer
) -> dict[str, Any]:
    """An auth collection ``users`` with OTP on, and mail going to ``smtp_server``."""
    created = await http.post("/api/collections", headers=su, json=USERS)
    assert 200 == created.status_code, created.text
    settings = {
        "meta": {"senderName": "Keel tests", "senderAddress": "no-reply@keel.test"},
        "smtp": {"enabled": True, "host": smtp_server.host, "port": smtp_server.port},
    }
    patched = await http.patch("/api/settings", headers=su, json=settings)
    assert 200 == patched.status_code, patched.text
    collection: dict[str, Any] = created.json()
    return collection


async def run_sdk(node: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one ``sdk_auth.mjs`` subcommand, off the event loop."""
    return await asyncio.to_thread(
        subprocess.run,
        [node, str(SDK_SCRIPT), *args],
        cwd=NODE_DIR,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SDK_TIMEOUT,
    )


async def sdk(node: str, *args: str) -> dict[str, Any]:
    """The JSON printed by a subcommand that must succeed."""
    done = await run_sdk(node, *args)
    assert 0 == done.returncode, f"sdk_auth {' '.join(args)}:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def emailed_code(smtp_server: SMTPServer, length: int) -> str:
    """The one run of ``length`` digits in the mail sent to :data:`EMAIL`."""
    mail = await smtp_server.wait_for(lambda m: EMAIL in m.to, timeout=30.0)
    body = mail.text or mail.html
    codes: set[str] = set(re.findall(rf"(?<!\d)\d{{{length}}}(?!\d)", body))
    assert ([EMAIL], 1) == (mail.to, len(codes)), body
    assert mail.subject.startswith("OTP for "), mail.subject
    return codes.pop()


async def test_register_then_login_with_password_and_refresh(
    node: str, server: Server, users: dict[str, Any]
) -> None:
    """A user registered through the SDK logs in with its password and refreshes its token."""
    registered = await sdk(node, "register", server.base_url, "users", EMAIL, PASSWORD)
    assert ("users", False) == (registered["collectionName"], registered["verified"])

    login = await sdk(node, "login", server.base_url, "users", EMAIL, PASSWORD)

    assert (True, registered["id"], EMAIL) == (
        login["isValid"],
        login["record"]["id"],
        login["record"]["email"],
    )
    assert "" != login["token"]
    assert "" != login["refreshedToken"]


async def test_wrong_password_is_refused(node: str, server: Server, users: dict[str, Any]) -> None:
    """A wrong password fails in the SDK with PocketBase's 400 error body."""
    await sdk(node, "register", server.base_url, "users", EMAIL, PASSWORD)

    done = await run_sdk(node, "login", server.base_url, "users", EMAIL, "not-the-password")

    error = json.loads(done.stderr.splitlines()[0])
    assert (1, 400, "Failed to authenticate.") == (
        done.returncode,
        error["status"],
        error["message"],
    )


async def test_login_with_emailed_otp(
    node: str, server: Server, users: dict[str, Any], smtp_server: SMTPServer
) -> None:
    """An OTP requested through the SDK arrives by mail and logs the user in, verified."""
    registered = await sdk(node, "register", server.base_url, "users", EMAIL, PASSWORD)

    otp_id = (await sdk(node, "request-otp", server.base_url, "users", EMAIL))["otpId"]
    code = await emailed_code(smtp_server, users["otp"]["length"])

    login = await sdk(node, "otp-login", server.base_url, "users", otp_id, code)

    assert (registered["id"], EMAIL, True) == (
        login["record"]["id"],
        login["record"]["email"],
        login["record"]["verified"],
    )
    assert "" != login["token"]


async def test_wrong_otp_is_refused(
    node: str, server: Server, users: dict[str, Any], smtp_server: SMTPServer
) -> None:
    """A code that is not the emailed one fails with PocketBase's 400 error body."""
    await sdk(node, "register", server.base_url, "users", EMAIL, PASSWORD)
    otp_id = (await sdk(node, "request-otp", server.base_url, "users", EMAIL))["otpId"]
    code = await emailed_code(smtp_server, users["otp"]["length"])
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)

    done = await run_sdk(node, "otp-login", server.base_url, "users", otp_id, wrong)

    error = json.loads(done.stderr.splitlines()[0])
    assert (1, 400) == (done.returncode, error["status"])
