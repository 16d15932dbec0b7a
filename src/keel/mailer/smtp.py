"""Outgoing mail: the message, the ``Mailer`` role and its SMTP transport.

Settings mirror PocketBase's SMTP settings (host, port, username, password,
tls, authMethod, localName). Every transport failure surfaces as
:class:`MailerError`; no ``aiosmtplib`` exception leaves this module.

Note: this package is a leaf. It must not import ``keel.core``, ``keel.http``
or any other Keel layer.
"""

from __future__ import annotations

import email.errors
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from html.parser import HTMLParser
from typing import Protocol

import aiosmtplib


class MailerError(Exception):
    """A message could not be built or delivered (connection, TLS, auth, refusal)."""


@dataclass(frozen=True)
class Message:
    """One e-mail to send.

    Attributes:
        sender_name: Display name of the From header (may be empty).
        sender_address: Address of the From header and the SMTP envelope sender.
        to: Recipient addresses; at least one is required.
        subject: The Subject header.
        html: The HTML body.
        text: The plain-text alternative; when empty it is derived from ``html``
            with :func:`html_to_text`.
        headers: Extra headers; each replaces a generated header of the same name.
    """

    sender_name: str
    sender_address: str
    to: Sequence[str]
    subject: str
    html: str
    text: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


class Mailer(Protocol):
    """Delivers messages; implemented by :class:`SMTPMailer` (and test doubles)."""

    async def send(self, message: Message) -> None:
        """Deliver ``message`` to every recipient.

        Raises:
            MailerError: the message could not be built or delivered.
        """
        ...


# Elements whose content is not readable text.
_SKIPPED_TAGS = frozenset(
    {"head", "title", "style", "script", "template", "svg", "iframe", "object", "noscript"}
)
# Elements that do not start a new line; every other element does.
_INLINE_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "code",
        "em",
        "font",
        "i",
        "img",
        "s",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "u",
    }
)
_WHITESPACE = re.compile(r"\s+")


class _TextExtractor(HTMLParser):
    """Collects the readable text of an HTML document; see :func:`html_to_text`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._out: list[str] = []
        self._skip_depth = 0
        self._line_has_text = False
        self._link_href: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip_depth += 1
            return
        if self._skip_depth:
            return
        if tag == "br":
            self._out.append("\n")
            self._line_has_text = False
        elif tag == "a":
            self._link_href = next((v or "" for k, v in attrs if k == "href"), "")
            self._link_text = []
        elif tag not in _INLINE_TAGS:
            self._break_line()
            if tag == "li":
                self._out.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
            return
        if self._skip_depth:
            return
        if tag == "a" and self._link_href is not None:
            self._write(self._link_label(), into_link=False)
            self._link_href = None
        elif tag not in _INLINE_TAGS:
            self._break_line()

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self._write(_WHITESPACE.sub(" ", data), into_link=self._link_href is not None)

    def text(self) -> str:
        """The collected text: one line per block, spaces collapsed, ends trimmed."""
        if self._link_href is not None:  # an unclosed <a> still shows its label
            self._write(self._link_label(), into_link=False)
            self._link_href = None
        lines = (_WHITESPACE.sub(" ", line).strip() for line in "".join(self._out).split("\n"))
        return "\n".join(lines).strip("\n")

    def _link_label(self) -> str:
        label = _WHITESPACE.sub(" ", "".join(self._link_text)).strip()
        href = (self._link_href or "").strip()
        if not href or href == label:
            return label or href
        return f"{label} ({href})" if label else href

    def _write(self, text: str, *, into_link: bool) -> None:
        if into_link:
            self._link_text.append(text)
        elif text:
            self._out.append(text)
            self._line_has_text = self._line_has_text or bool(text.strip())

    def _break_line(self) -> None:
        # Consecutive block boundaries make one line break, not blank lines.
        if self._line_has_text:
            self._out.append("\n")
            self._line_has_text = False


def html_to_text(html: str) -> str:
    """A plain-text rendering of ``html`` for the text/plain alternative.

    Tags are dropped (and with them the content of ``script``, ``style``,
    ``head`` and similar), every block element starts a new line, ``<br>``
    always breaks the line, list items get a ``- `` prefix, a link becomes
    ``text (url)`` (just the URL when the text is empty or equals it), and runs
    of whitespace collapse to one space. Malformed HTML never raises.
    """
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return extractor.text()


def build_mime(message: Message) -> EmailMessage:
    """The multipart/alternative MIME message for ``message``.

    Raises:
        MailerError: no recipient, an invalid address, or a header value with a
            line break (header injection).
    """
    if not message.to:
        raise MailerError("the message has no recipient")
    try:
        mime = EmailMessage()
        mime["From"] = Address(display_name=message.sender_name, addr_spec=message.sender_address)
        mime["To"] = [Address(addr_spec=address) for address in message.to]
        mime["Subject"] = message.subject
        mime["Date"] = format_datetime(datetime.now(UTC))
        # An explicit domain: without one make_msgid resolves the FQDN (blocking DNS).
        domain = message.sender_address.rpartition("@")[2] or "localhost"
        mime["Message-ID"] = make_msgid(domain=domain)
        mime.set_content(message.text or html_to_text(message.html))
        mime.add_alternative(message.html, subtype="html")
        for name, value in message.headers.items():
            del mime[name]
            mime[name] = value
    except (ValueError, TypeError, IndexError, email.errors.MessageError) as exc:
        raise MailerError(f"invalid message: {exc}") from exc
    return mime


_AUTH_METHODS = ("PLAIN", "LOGIN")
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class SMTPMailer:
    """Sends mail through an SMTP server, one connection per message.

    Args:
        host: SMTP server host name or IP.
        port: SMTP server port (e.g. 587 or 25; 465 with ``tls``).
        username: Authenticate as this user; empty means no authentication.
        password: Password for ``username``.
        tls: ``True`` for implicit TLS (SMTPS). ``False`` connects in clear text
            and upgrades with STARTTLS whenever the server offers it.
        auth_method: ``"PLAIN"`` or ``"LOGIN"`` (case-insensitive); empty means PLAIN.
        local_name: Name sent with EHLO; empty means ``"localhost"`` (as PocketBase).
        timeout: Seconds allowed for connecting and for each SMTP command.

    Raises:
        ValueError: an unknown ``auth_method``.

    Note:
        Like PocketBase (Go's ``net/smtp``), credentials are only sent over TLS
        or to a loopback host; otherwise :meth:`send` raises :class:`MailerError`
        without sending them.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str = "",
        password: str = "",
        tls: bool = False,
        auth_method: str = "",
        local_name: str = "",
        timeout: float = 10.0,
    ) -> None:
        method = auth_method.upper() or "PLAIN"
        if method not in _AUTH_METHODS:
            raise ValueError(f"auth_method must be PLAIN or LOGIN, not {auth_method!r}")
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._tls = tls
        self._auth_method = method
        self._local_name = local_name or "localhost"
        self._timeout = timeout

    async def send(self, message: Message) -> None:
        """Deliver ``message`` over a fresh connection, then close it.

        Raises:
            MailerError: the message is invalid, or connecting, TLS, the
                authentication or the delivery failed, or the server refused
                any recipient (the others may have received it).
        """
        mime = build_mime(message)
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            local_hostname=self._local_name,
            timeout=self._timeout,
            use_tls=self._tls,
            # None: STARTTLS when the server offers it; never on top of implicit TLS.
            start_tls=False if self._tls else None,
        )
        try:
            async with client:
                if self._username:
                    await self._authenticate(client)
                refused, _ = await client.send_message(
                    mime, sender=message.sender_address, recipients=list(message.to)
                )
        except aiosmtplib.SMTPException as exc:
            raise MailerError(f"SMTP delivery via {self._host}:{self._port} failed: {exc}") from exc
        except OSError as exc:  # includes ssl.SSLError and TimeoutError
            raise MailerError(
                f"SMTP connection to {self._host}:{self._port} failed: {exc}"
            ) from exc
        if refused:
            raise MailerError(f"recipients refused: {', '.join(sorted(refused))}")

    async def _authenticate(self, client: aiosmtplib.SMTP) -> None:
        encrypted = client.get_transport_info("sslcontext") is not None
        if not encrypted and self._host not in _LOCAL_HOSTS:
            raise MailerError("refusing to send SMTP credentials over an unencrypted connection")
        if client.is_ehlo_or_helo_needed:
            await client.ehlo()
        if self._auth_method == "LOGIN":
            await client.auth_login(self._username, self._password)
        else:
            await client.auth_plain(self._username, self._password)
