"""A real OpenID Connect provider for OAuth2 tests, and a browser stand-in for it.

``oidc_provider`` (session-scoped) runs ``tests/node/oidc_provider.mjs``, the
npm ``oidc-provider`` package, on 127.0.0.1 on a port the OS picks, and stops
it by PID at the end of the session. It knows one confidential client
(:data:`CLIENT_ID` / :data:`CLIENT_SECRET`) with the redirect URIs in
:data:`REDIRECT_URIS`; because the client is registered as a native app, a
loopback redirect URI also matches on any port (RFC 8252), so
``http://127.0.0.1:8090/api/oauth2-redirect`` is allowed. Its login form
accepts any login; see the script for how a login becomes claims (``sub`` is
the login, ``email_verified`` is false when the login contains
``unverified``).

Without ``node`` or ``tests/node/node_modules`` (``npm ci --prefix
tests/node``) the fixture skips, except under ``CI=true``, where it fails;
:func:`node_for` applies the same rule to other tests' node scripts.

:func:`authorize` plays the user's browser: it opens an authorization URL,
signs in, consents and returns the query of the redirect to the client.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, NoReturn
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import pytest

NODE_DIR = Path(__file__).parent / "node"
SCRIPT = NODE_DIR / "oidc_provider.mjs"
CLIENT_ID = "keel-test"
CLIENT_SECRET = "keel-test-secret"
REDIRECT_URIS = (
    "http://127.0.0.1/oauth2-redirect",
    "http://localhost/oauth2-redirect",
    "http://127.0.0.1/api/oauth2-redirect",
    "http://localhost/api/oauth2-redirect",
)
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# Sign-in, consent and their redirects take about eight requests.
MAX_BROWSER_STEPS = 20


@dataclass(frozen=True)
class OidcProvider:
    """A running OpenID Connect provider; endpoints come from its discovery document."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    pid: int
    log: Path


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE ``(code_verifier, code_challenge)`` pair for ``S256``."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def node_for(package: str) -> str:
    """The ``node`` executable, once ``package`` is installed in ``tests/node``.

    Skips the test when either is missing, except under ``CI=true``, where it fails.
    """
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed")
    if not (NODE_DIR / "node_modules" / package).is_dir():
        _unavailable(f"{package} is not installed: run `npm ci --prefix {NODE_DIR}`")
    return node


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


class _ReadyLine:
    """Copies the provider's output to its log and catches its ``READY <issuer>`` line."""

    def __init__(self, stream: IO[bytes], log: Path) -> None:
        self.issuer: str | None = None
        self.settled = threading.Event()  # READY seen, or the output ended
        self._thread = threading.Thread(target=self._pump, args=(stream, log), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[bytes], log: Path) -> None:
        with log.open("wb") as out:
            for line in stream:
                out.write(line)
                out.flush()
                text = line.decode("utf-8", "replace").strip()
                if self.issuer is None and text.startswith("READY "):
                    self.issuer = text.removeprefix("READY ")
                    self.settled.set()
        self.settled.set()

    def join(self) -> None:
        self._thread.join(timeout=STOP_TIMEOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """The OpenID Connect provider of ``tests/node/oidc_provider.mjs``, for the whole session."""
    node = node_for("oidc-provider")
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    args = [node, str(SCRIPT), "--port", "0"]
    for uri in REDIRECT_URIS:
        args += ["--redirect-uri", uri]
    proc = subprocess.Popen(
        args,
        cwd=NODE_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    ready = _ReadyLine(proc.stdout, log)
    try:
        ready.settled.wait(timeout=START_TIMEOUT)
        if ready.issuer is None:
            pytest.fail(f"the OIDC provider did not start:\n{log.read_text()}")
        with httpx.Client(trust_env=False, timeout=10.0) as http:
            response = http.get(f"{ready.issuer}/.well-known/openid-configuration")
        assert 200 == response.status_code, response.text
        discovery = response.json()
        yield OidcProvider(
            issuer=discovery["issuer"],
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_uris=REDIRECT_URIS,
            authorization_endpoint=discovery["authorization_endpoint"],
            token_endpoint=discovery["token_endpoint"],
            userinfo_endpoint=discovery["userinfo_endpoint"],
            jwks_uri=discovery["jwks_uri"],
            pid=proc.pid,
            log=log,
        )
    finally:
        _stop(proc)
        ready.join()
        proc.stdout.close()


class _FormParser(HTMLParser):
    """The first ``<form>`` of a page: its action and its named inputs' values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form" and self.action is None:
            self.action = attributes.get("action", "")
        elif tag == "input" and self.action is not None and not self._done and "name" in attributes:
            self.fields[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._done = True


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def authorize(auth_url: str, login: str, password: str = "any password") -> dict[str, str]:
    """Sign in as ``login`` at ``auth_url``, consent, and return the redirect's query.

    ``auth_url`` is a full authorization request (``client_id``, ``redirect_uri``,
    ``response_type=code``, ``scope``, ``state``, and optionally ``code_challenge``
    with ``code_challenge_method=S256``). Cookies are kept and redirects
    followed while they stay on the provider's origin; the first redirect
    elsewhere (to ``redirect_uri``) is not followed: its query parameters are
    returned, e.g. ``code``, ``state`` and ``iss``, or ``error`` and
    ``error_description`` when the provider refused.

    Raises:
        RuntimeError: the provider answered with a page that is neither a
            redirect nor a form (e.g. an unknown client or redirect URI), or
            the flow did not end.
    """
    provider = _origin(auth_url)
    with httpx.Client(trust_env=False, timeout=10.0) as browser:
        response = browser.get(auth_url)
        for _ in range(MAX_BROWSER_STEPS):
            if response.is_redirect:
                target = urljoin(str(response.url), response.headers["location"])
                if _origin(target) != provider:
                    return dict(parse_qsl(urlsplit(target).query))
                response = browser.get(target)
                continue
            form = _FormParser()
            form.feed(response.text)
            if 200 != response.status_code or form.action is None:
                raise RuntimeError(
                    f"{response.request.method} {response.url} answered "
                    f"{response.status_code}:\n{response.text}"
                )
            fields = form.fields
            if fields.get("prompt") == "login":
                fields.update(login=login, password=password)
            response = browser.post(urljoin(str(response.url), form.action), data=fields)
    raise RuntimeError(f"no redirect to the client after {MAX_BROWSER_STEPS} requests")
