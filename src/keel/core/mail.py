"""Emails to auth records: templates filled in and sent over the configured SMTP.

Templates are ``{subject, body}`` pairs stored in the collection options, with
PocketBase's placeholders: ``{APP_NAME}``, ``{APP_URL}``, ``{TOKEN}``,
``{OTP}``, ``{OTP_ID}``, ``{ALERT_INFO}`` and ``{RECORD:<field>}``. Values are
HTML-escaped in the body.

Mail leaves in a background task after the request is answered, so the time a
``request-*`` endpoint takes does not reveal whether the address exists.
"""

from __future__ import annotations

import html
import logging
import re
from typing import TYPE_CHECKING, Any

from keel.core.collection import Collection
from keel.core.record import Record
from keel.mailer.smtp import Mailer, MailerError, Message, SMTPMailer

if TYPE_CHECKING:
    from keel.core.app import App

log = logging.getLogger("keel.mail")

_RECORD_PLACEHOLDER = re.compile(r"\{RECORD:([A-Za-z0-9_]+)\}")


def mailer_from_settings(smtp: dict[str, Any]) -> Mailer | None:
    """An SMTP mailer for the ``smtp`` settings section; ``None`` when disabled."""
    if not smtp.get("enabled"):
        return None
    return SMTPMailer(
        host=smtp["host"],
        port=smtp["port"],
        username=smtp.get("username", ""),
        password=smtp.get("password", ""),
        tls=bool(smtp.get("tls")),
        auth_method=smtp.get("authMethod", ""),
        local_name=smtp.get("localName", ""),
    )


def render(
    app: App, template: dict[str, str], record: Record, values: dict[str, str]
) -> tuple[str, str]:
    """The subject and HTML body of ``template`` for ``record``."""
    meta = app.settings["meta"]
    plain = {"APP_NAME": meta["appName"], "APP_URL": meta["appURL"].rstrip("/"), **values}

    def fill(text: str, escape: bool) -> str:
        def record_value(match: re.Match[str]) -> str:
            fld = record.collection.field(match.group(1))
            if fld is None or fld.type == "password" or fld.name == "tokenKey":
                return ""
            value = str(record.data.get(fld.name, ""))
            return html.escape(value) if escape else value

        for key, value in plain.items():
            text = text.replace("{" + key + "}", html.escape(value) if escape else value)
        return _RECORD_PLACEHOLDER.sub(record_value, text)

    return fill(template.get("subject", ""), False), fill(template.get("body", ""), True)


def send_template(
    app: App,
    coll: Collection,
    record: Record,
    template_key: str,
    to: str,
    values: dict[str, str],
) -> None:
    """Render the collection's template ``template_key`` and send it in the background.

    ``template_key`` is an option name (``verificationTemplate``) or a dotted
    path into one (``otp.emailTemplate``).
    """
    section: Any = coll.options
    for part in template_key.split("."):
        section = section.get(part, {}) if isinstance(section, dict) else {}
    subject, body = render(app, section, record, values)
    meta = app.settings["meta"]
    message = Message(
        sender_name=meta["senderName"],
        sender_address=meta["senderAddress"],
        to=[to],
        subject=subject,
        html=body,
    )
    mailer = app.mailer
    if mailer is None:
        log.warning("SMTP is disabled in the settings; %r to %s was not sent", subject, to)
        return
    app.spawn(_deliver(mailer, message))


async def _deliver(mailer: Mailer, message: Message) -> None:
    try:
        await mailer.send(message)
    except MailerError:
        log.exception("sending %r to %s failed", message.subject, ", ".join(message.to))
