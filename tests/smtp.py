"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, in its own thread.

Every message the server accepts is parsed and kept in order. Tests wait for
mail with :meth:`SMTPServer.wait_for`, which blocks on a condition variable in a
worker thread (never a sleep loop). The ``smtp_server`` fixture gives each test
a fresh server without AUTH; build ``SMTPServer(username=..., password=...)``
directly to require credentials.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Self

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the server received it.

    Attributes:
        envelope_from: The ``MAIL FROM`` address.
        envelope_to: The ``RCPT TO`` addresses.
        to: The addresses of the To header.
        subject: The Subject header (decoded).
        html: The text/html body part (LF line endings), or ``""``.
        text: The text/plain body part (LF line endings), or ``""``.
        auth_mechanism: The AUTH mechanism the client used, or ``""``.
        auth_login: The user name the client authenticated as, or ``""``.
        message: The whole parsed message (headers such as From, Message-ID).
    """

    envelope_from: str
    envelope_to: list[str]
    to: list[str]
    subject: str
    html: str
    text: str
    auth_mechanism: str
    auth_login: str
    message: EmailMessage = field(repr=False)


@dataclass(frozen=True)
class _Login:
    mechanism: str
    login: str


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return ""
    content: str = part.get_content()
    return content.replace("\r\n", "\n")  # SMTP's wire line endings


class _FreePortController(Controller):
    """A Controller bound to a port the OS picks (no probe-then-bind race)."""

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        async def bind() -> asyncio.AbstractServer:
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
            )
            # Set before the controller connects to check readiness.
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bind()


class SMTPServer:
    """An SMTP server on 127.0.0.1 that records what it receives.

    Args:
        username: When set, clients must AUTH (PLAIN or LOGIN) with this user
            name and ``password`` before ``MAIL FROM``; AUTH is offered without
            TLS (``auth_require_tls=False``).
        password: The password for ``username``.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, username: str = "", password: str = "") -> None:
        self._username = username
        self._password = password
        self._cond = threading.Condition()
        self._messages: list[ReceivedMessage] = []
        self._controller = _FreePortController(
            self,
            hostname=HOST,
            # A fixed name: the default resolves the FQDN (a DNS lookup).
            server_hostname="keel-test-smtp",
            authenticator=self._authenticate,
            auth_require_tls=False,
        )

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return HOST

    @property
    def port(self) -> int:
        """The listening port (valid once started)."""
        port: int = self._controller.port
        return port

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of the messages received so far, oldest first."""
        with self._cond:
            return list(self._messages)

    def clear(self) -> None:
        """Forget the messages received so far."""
        with self._cond:
            self._messages.clear()

    def start(self) -> None:
        """Start listening; returns once the server answers connections."""
        self._controller.start()

    def stop(self) -> None:
        """Stop listening and join the server thread."""
        self._controller.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def wait_for(
        self,
        predicate: Callable[[ReceivedMessage], bool] = lambda m: True,
        # The timeout bounds the blocking wait in the worker thread, which an
        # outer asyncio.timeout could not interrupt.
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> ReceivedMessage:
        """The first received message matching ``predicate``, waiting for it if needed.

        The wait blocks on the server's condition variable in a worker thread,
        so the event loop keeps running and the call returns as soon as the
        message arrives.

        Raises:
            AssertionError: no matching message within ``timeout`` seconds; the
                error lists what was received.
        """

        def find() -> ReceivedMessage | None:
            return next((m for m in self._messages if predicate(m)), None)

        def block() -> ReceivedMessage | None:
            with self._cond:
                return self._cond.wait_for(find, timeout)

        found = await asyncio.to_thread(block)
        if found is None:
            received = [(m.envelope_from, m.envelope_to, m.subject) for m in self.messages]
            raise AssertionError(f"no matching message within {timeout}s; received: {received}")
        return found

    # aiosmtpd hooks (run in the server thread).

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        valid = (
            bool(self._username)
            and isinstance(auth_data, LoginPassword)
            and auth_data.login == self._username.encode()
            and auth_data.password == self._password.encode()
        )
        if not valid:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=_Login(mechanism, self._username))

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        # Enforced here rather than with auth_required=True, which warns when
        # TLS is not required (and warnings are errors in this test suite).
        if self._username and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        to_header = parsed["To"]
        login = session.auth_data if isinstance(session.auth_data, _Login) else None
        received = ReceivedMessage(
            envelope_from=envelope.mail_from or "",
            envelope_to=list(envelope.rcpt_tos),
            to=[a.addr_spec for a in to_header.addresses] if to_header is not None else [],
            subject=str(parsed["Subject"] or ""),
            html=_body(parsed, "html"),
            text=_body(parsed, "plain"),
            auth_mechanism=login.mechanism if login else "",
            auth_login=login.login if login else "",
            message=parsed,
        )
        with self._cond:
            self._messages.append(received)
            self._cond.notify_all()
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """A started SMTP server without AUTH, stopped after the test."""
    with SMTPServer() as server:
        yield server
