"""``SMTPMailer`` against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from keel.mailer.smtp import Mailer, MailerError, Message, SMTPMailer, html_to_text
from tests.smtp import SMTPServer

USERNAME = "mailer@example.com"
PASSWORD = "s3cret-pass"


MESSAGE = Message(
    sender_name="Keel Support",
    sender_address="support@example.com",
    to=["alice@example.com", "bob@example.com"],
    subject="Verify your email",
    html='<p>Hello,</p><p>Click <a href="https://keel.test/verify?t=1">here</a>.</p>',
)


def _message(**changes: Any) -> Message:
    return dataclasses.replace(MESSAGE, **changes)


@pytest.fixture
def auth_server() -> Iterator[SMTPServer]:
    """A started SMTP server that requires USERNAME/PASSWORD."""
    with SMTPServer(username=USERNAME, password=PASSWORD) as server:
        yield server


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_send_delivers_html_and_derived_text(smtp_server: SMTPServer) -> None:
    """A plain send delivers subject, recipients, both alternatives and the From name."""
    mailer: Mailer = SMTPMailer(smtp_server.host, smtp_server.port)

    await mailer.send(_message())

    received = await smtp_server.wait_for()
    assert "support@example.com" == received.envelope_from
    assert ["alice@example.com", "bob@example.com"] == received.envelope_to
    assert ["alice@example.com", "bob@example.com"] == received.to
    assert "Verify your email" == received.subject
    assert MESSAGE.html == received.html.strip()
    assert "Hello,\nClick here (https://keel.test/verify?t=1)." == received.text.strip()
    sender = received.message["From"].addresses[0]
    assert ("Keel Support", "support@example.com") == (sender.display_name, sender.addr_spec)
    assert "multipart/alternative" == received.message.get_content_type()
    assert received.message["Message-ID"].endswith("@example.com>")
    assert received.message["Date"] is not None
    assert "" == received.auth_mechanism


async def test_send_uses_given_text_and_extra_headers(smtp_server: SMTPServer) -> None:
    """An explicit text body is sent as is, and extra headers replace generated ones."""
    mailer = SMTPMailer(smtp_server.host, smtp_server.port)
    message = _message(
        text="Plain version",
        headers={"X-Keel-Event": "verification", "Message-ID": "<fixed@keel.test>"},
    )

    await mailer.send(message)

    received = await smtp_server.wait_for(lambda m: m.subject == "Verify your email")
    assert "Plain version" == received.text.strip()
    assert "verification" == received.message["X-Keel-Event"]
    assert ["<fixed@keel.test>"] == received.message.get_all("Message-ID")


async def test_send_encodes_non_ascii_headers(smtp_server: SMTPServer) -> None:
    """A non-ASCII display name and subject arrive intact."""
    mailer = SMTPMailer(smtp_server.host, smtp_server.port)

    await mailer.send(_message(sender_name="Kéel Équipe", subject="Vérifiez votre e-mail"))

    received = await smtp_server.wait_for()
    assert "Vérifiez votre e-mail" == received.subject
    assert "Kéel Équipe" == received.message["From"].addresses[0].display_name


@pytest.mark.parametrize("auth_method", ["PLAIN", "LOGIN", "login", ""])
async def test_send_authenticates(auth_server: SMTPServer, auth_method: str) -> None:
    """With a username the mailer authenticates with the configured method (empty = PLAIN)."""
    mailer = SMTPMailer(
        auth_server.host,
        auth_server.port,
        username=USERNAME,
        password=PASSWORD,
        auth_method=auth_method,
    )

    await mailer.send(_message())

    received = await auth_server.wait_for()
    assert (auth_method.upper() or "PLAIN", USERNAME) == (
        received.auth_mechanism,
        received.auth_login,
    )


@pytest.mark.parametrize("auth_method", ["PLAIN", "LOGIN"])
async def test_wrong_credentials_raise_mailer_error(
    auth_server: SMTPServer, auth_method: str
) -> None:
    """Rejected credentials raise MailerError and nothing is delivered."""
    mailer = SMTPMailer(
        auth_server.host,
        auth_server.port,
        username=USERNAME,
        password="wrong",
        auth_method=auth_method,
    )

    with pytest.raises(MailerError):
        await mailer.send(_message())

    assert [] == auth_server.messages


async def test_missing_credentials_raise_mailer_error(auth_server: SMTPServer) -> None:
    """A server that requires AUTH refuses a mailer without a username: MailerError."""
    mailer = SMTPMailer(auth_server.host, auth_server.port)

    with pytest.raises(MailerError):
        await mailer.send(_message())

    assert [] == auth_server.messages


async def test_connection_refused_raises_mailer_error(closed_port: int) -> None:
    """A port nobody listens on raises MailerError, not an aiosmtplib/OS error."""
    mailer = SMTPMailer("127.0.0.1", closed_port, timeout=5.0)

    with pytest.raises(MailerError):
        await mailer.send(_message())


async def test_implicit_tls_against_plain_server_raises_mailer_error(
    smtp_server: SMTPServer,
) -> None:
    """tls=True against a clear-text server fails the handshake as MailerError."""
    mailer = SMTPMailer(smtp_server.host, smtp_server.port, tls=True, timeout=5.0)

    with pytest.raises(MailerError):
        await mailer.send(_message())

    assert [] == smtp_server.messages


@pytest.mark.parametrize(
    "message",
    [
        _message(to=[]),
        _message(to=["not an address"]),
        _message(subject="Hi\r\nBcc: victim@example.com"),
    ],
    ids=["no-recipient", "invalid-address", "header-injection"],
)
async def test_invalid_message_raises_mailer_error(
    smtp_server: SMTPServer, message: Message
) -> None:
    """A message that cannot be built safely raises MailerError and sends nothing."""
    mailer = SMTPMailer(smtp_server.host, smtp_server.port)

    with pytest.raises(MailerError):
        await mailer.send(message)

    assert [] == smtp_server.messages


def test_unknown_auth_method_is_rejected() -> None:
    """An auth method other than PLAIN/LOGIN is a configuration error."""
    with pytest.raises(ValueError, match="CRAM-MD5"):
        SMTPMailer("127.0.0.1", 25, username="u", auth_method="CRAM-MD5")


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("plain &amp; simple", "plain & simple"),
        ("<p>Hello   \n  <b>world</b></p>", "Hello world"),
        ("<p>one</p><div>two</div>", "one\ntwo"),
        ('<a href="https://x.test/a?b=1">Verify</a>', "Verify (https://x.test/a?b=1)"),
        ('<a href="https://x.test">https://x.test</a>', "https://x.test"),
        ('<a href="https://x.test"><img src="logo.png"></a>', "https://x.test"),
        ("<a>no href</a>", "no href"),
        ("a<br>b<br><br>c", "a\nb\n\nc"),
        ("<ul><li>one</li><li>two</li></ul>", "- one\n- two"),
        (
            "<html><head><title>T</title><style>p {}</style></head>"
            "<body><script>alert(1)</script><p>Body</p></body></html>",
            "Body",
        ),
        ("<p>unclosed <a href='u'>link", "unclosed link (u)"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    """HTML becomes readable text: tags dropped, links kept as "text (url)", spaces collapsed."""
    assert expected == html_to_text(html)


async def test_wait_for_fails_with_what_was_received(smtp_server: SMTPServer) -> None:
    """The test server's wait_for raises AssertionError listing the received mail."""
    await SMTPMailer(smtp_server.host, smtp_server.port).send(_message(subject="Other"))

    with pytest.raises(AssertionError, match="'Other'"):
        await smtp_server.wait_for(lambda m: m.subject == "Wanted", timeout=0)
