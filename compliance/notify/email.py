"""E-mail over SMTP: a multipart message (plain text, HTML with inline images) sent with STARTTLS or TLS.

The message is `multipart/alternative` with a `text/plain` part first and a `multipart/related` part
holding the `text/html` and its images, which the HTML refers to as `cid:<content id>`. It carries
Date, Message-ID (in the sender's domain), Content-Language and `Auto-Submitted: auto-generated`
(RFC 3834, so that out-of-office replies stay away). The password is sent only over an encrypted
connection, and a server that does not offer STARTTLS when it is required gets nothing.

A message is sent once the server accepted it (`250` after DATA): what the server answers to QUIT,
or a connection dropped after that, changes nothing, so the digest is not sent twice. Recipients the
server refuses while it accepts others are returned (`Sent.refused`), and the delivery is recorded as
partly sent. A password with non-ASCII characters is sent UTF-8 encoded with AUTH PLAIN or LOGIN
(RFC 4616), which smtplib cannot do; no error text ever shows any of its characters.
"""

from __future__ import annotations

import base64
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, cast

from compliance.notify import DeliveryError, NotConfigured, Sent, email_configured

if TYPE_CHECKING:
    from compliance.settings import Settings


@dataclass(frozen=True, slots=True)
class InlineImage:
    """An image the HTML shows with `<img src="cid:{cid}">`."""

    cid: str  # without angle brackets
    data: bytes
    filename: str
    subtype: str = "png"


def content_id(sender: str) -> str:
    """A unique content id in the sender's domain, without angle brackets."""
    return make_msgid(domain=_domain(sender))[1:-1]


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip(" >") or "compliance-monitor.invalid"


def compose(*, subject: str, sender: str, recipients: Sequence[str], text: str, html: str | None = None,
            images: Sequence[InlineImage] = (), lang: str = "nl", now: datetime | None = None) -> EmailMessage:
    """A message ready to send: text, optionally HTML with inline images, and the usual headers."""
    from datetime import UTC

    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=_domain(sender))
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
        html_part = cast(EmailMessage, message.get_payload()[1])  # type: ignore[index]
        for image in images:
            html_part.add_related(image.data, maintype="image", subtype=image.subtype, cid=f"<{image.cid}>",
                                  filename=image.filename, disposition="inline")
    message["Content-Language"] = lang  # last: setting the content drops Content-* headers
    return message


def send(settings: Settings, message: EmailMessage, recipients: Sequence[str]) -> Sent:
    """Send message to recipients through the configured server; who accepted it, and who refused.

    Raises NotConfigured when the settings lack something, DeliveryError when the server refuses or
    cannot be reached before it accepted the message (the message names the server's answer, never the
    password).
    """
    problem = email_configured(settings)
    if problem:
        raise NotConfigured(f"cannot send e-mail: {problem}")
    if not recipients:
        raise NotConfigured("cannot send e-mail: no recipients")
    smtp = settings.smtp
    host, port = smtp.host or "", smtp.effective_port
    context = ssl.create_default_context(cafile=str(settings.resolve(smtp.ca_file)) if smtp.ca_file else None)
    sender = settings.digest.sender or ""
    client: smtplib.SMTP | None = None
    try:
        client = smtplib.SMTP_SSL(host, port, timeout=smtp.timeout, context=context) if smtp.tls \
            else smtplib.SMTP(host, port, timeout=smtp.timeout)
        client.ehlo()
        if not smtp.tls and smtp.starttls:
            if not client.has_extn("starttls"):
                raise DeliveryError(f"the mail server {host}:{port} does not offer STARTTLS, which "
                                    "smtp.starttls requires; nothing was sent")
            client.starttls(context=context)
            client.ehlo()
        if smtp.user and smtp.password is not None:
            _login(client, smtp.user, smtp.password.get_secret_value(), f"{host}:{port}")
        refused = client.send_message(message, from_addr=sender, to_addrs=list(recipients))
    except (DeliveryError, NotConfigured):
        _close(client)
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        _close(client)
        raise DeliveryError(f"the mail server {host}:{port} refused every recipient: "
                            + "; ".join(_answer(code, text) for code, text in exc.recipients.values())) from None
    except smtplib.SMTPResponseException as exc:
        _close(client)
        raise DeliveryError(f"the mail server {host}:{port} answered {_answer(exc.smtp_code, exc.smtp_error)}") \
            from None
    except UnicodeError:  # its text would show the character (of a password, say): never shown
        _close(client)
        raise DeliveryError(f"cannot send through the mail server {host}:{port}: a value has characters that "
                            "cannot be sent (non-ASCII in an address?)") from None
    except (smtplib.SMTPException, OSError) as exc:
        _close(client)
        reason = str(exc).strip() or type(exc).__name__
        raise DeliveryError(f"cannot send through the mail server {host}:{port}: {reason}") from None
    # accepted: from here on nothing can make it unsent (an odd answer to QUIT, a dropped connection)
    _close(client, quit=True)
    return Sent(len(recipients) - len(refused),
                {address: _answer(code, text) for address, (code, text) in refused.items()})


def _login(client: smtplib.SMTP, user: str, password: str, server: str) -> None:
    """Log in; a non-ASCII user or password UTF-8 encoded with AUTH PLAIN or LOGIN (smtplib sends ASCII only)."""
    if user.isascii() and password.isascii():
        client.login(user, password)
        return
    offered = (client.esmtp_features.get("auth") or "").upper().split()
    encoded = [base64.b64encode(value.encode("utf-8")).decode("ascii") for value in (user, password)]
    if "PLAIN" in offered:
        token = base64.b64encode(b"\0" + user.encode("utf-8") + b"\0" + password.encode("utf-8")).decode("ascii")
        code, answer = client.docmd("AUTH", f"PLAIN {token}")
    elif "LOGIN" in offered:
        code, answer = client.docmd("AUTH", "LOGIN")
        for value in encoded:
            if code != 334:
                break
            code, answer = client.docmd(value)
    else:
        raise NotConfigured(f"the SMTP password (or smtp.user) has non-ASCII characters, which the mail server "
                            f"{server} cannot take: it offers neither AUTH PLAIN nor LOGIN "
                            f"({', '.join(offered) or 'no AUTH at all'}). Use a password of ASCII characters only "
                            "(COMPLIANCE_SMTP_PASSWORD), or enable AUTH PLAIN on the server")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, answer)


def _close(client: smtplib.SMTP | None, *, quit: bool = False) -> None:
    """Say goodbye (when asked) and close; whatever the server answers or does then is of no consequence."""
    if client is None:
        return
    try:
        if quit:
            client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        client.close()


def _answer(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(message.split())}"
