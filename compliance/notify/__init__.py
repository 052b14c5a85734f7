"""Notifications: e-mail (SMTP) and Slack, every attempt recorded in `deliveries`, breach deadline alerts.

- `compliance.notify.email`: compose a multipart message (text, HTML, inline images) and send it over
  SMTP with STARTTLS or TLS;
- `compliance.notify.slack`: post Block Kit messages with a bot token or an incoming webhook;
- `compliance.notify.deliveries`: record each attempt (when, channel, recipients, result), never send
  what was sent, retry what failed with back-off;
- `compliance.notify.alerts`: the breach register's 72-hour deadline alerts.

Secrets (the SMTP password, the Slack token and webhook URL) come from the environment only and are
scrubbed from every error text before it is logged, printed or stored (`scrub`, from `compliance.logs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

from compliance.errors import ComplianceError
from compliance.logs import REDACTED, scrub

if TYPE_CHECKING:
    from babel.support import NullTranslations

    from compliance.settings import Settings

CHANNELS = ("email", "slack")
LANGUAGES = ("nl", "en")
#: The gettext domain of the digest's and the alerts' texts (locale/nl/LC_MESSAGES/notify.po).
DOMAIN = "notify"


@cache
def translations(lang: str) -> NullTranslations:
    """The catalog of notification texts for lang (English: none needed, the msgids are English)."""
    from babel.support import Translations

    if lang not in LANGUAGES:
        raise ComplianceError(f"unknown language '{lang}'; use one of {', '.join(LANGUAGES)}")
    return Translations.load(str(files("compliance.notify") / "locale"), [lang], domain=DOMAIN)


def gettext(lang: str) -> Callable[[str], str]:
    return translations(lang).gettext


def ngettext(lang: str) -> Callable[[str, str, int], str]:
    return translations(lang).ngettext


class DeliveryError(ComplianceError):
    """A channel could not deliver: the server refused, could not be reached, or answered an error."""


class NotConfigured(ComplianceError):
    """A channel is asked for but the configuration lacks what it needs."""


@dataclass(frozen=True, slots=True)
class Sent:
    """What a channel accepted: how many recipients, and those it refused, each with the server's answer."""

    recipients: int
    refused: dict[str, str] = field(default_factory=dict)


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value in the settings, and the parts of them that an error text could show."""
    found: list[str] = []
    for secret in (settings.smtp.password, settings.slack.token, settings.slack.webhook_url):
        value = secret.get_secret_value() if secret is not None else ""
        if len(value) >= 4:
            found.append(value)
    webhook = settings.slack.webhook_url.get_secret_value() if settings.slack.webhook_url else ""
    if "://" in webhook:
        from urllib.parse import urlsplit

        path = urlsplit(webhook).path  # errors of HTTP libraries often name the path, not the whole URL
        if len(path.strip("/")) >= 4:
            found.append(path)
    return sorted(set(found), key=len, reverse=True)


def email_configured(settings: Settings) -> str | None:
    """Why e-mail cannot be sent with these settings, or None when it can (recipients aside)."""
    smtp = settings.smtp
    if not smtp.host:
        return "smtp.host is not set (or COMPLIANCE_SMTP_HOST)"
    if not settings.digest.sender:
        return "digest.from, the sender address, is not set (or COMPLIANCE_DIGEST_FROM)"
    if smtp.user and smtp.password is None:
        return "smtp.user is set but the password is not: set COMPLIANCE_SMTP_PASSWORD"
    if smtp.user and not (smtp.tls or smtp.starttls):
        return "smtp.user is set without smtp.starttls or smtp.tls; the password is never sent unencrypted"
    return None


def slack_configured(settings: Settings) -> str | None:
    """Why Slack cannot be used with these settings, or None when it can."""
    slack = settings.slack
    mode = slack.effective_mode
    if mode is None:
        return "no Slack credentials: set COMPLIANCE_SLACK_TOKEN or COMPLIANCE_SLACK_WEBHOOK_URL"
    if mode == "token" and slack.token is None:
        return "slack.mode is token but COMPLIANCE_SLACK_TOKEN is not set"
    if mode == "webhook" and slack.webhook_url is None:
        return "slack.mode is webhook but COMPLIANCE_SLACK_WEBHOOK_URL is not set"
    if mode == "token" and not encrypted_or_local(slack.api_url):
        return (
            f"slack.api_url '{slack.api_url}' is not https: the token would cross the network readable; "
            "use https (plain http is allowed only to a loopback address, for tests)"
        )
    if (
        mode == "webhook"
        and slack.webhook_url is not None
        and not encrypted_or_local(slack.webhook_url.get_secret_value())
    ):
        return (
            "COMPLIANCE_SLACK_WEBHOOK_URL is not https: the webhook URL, a secret, would cross the network "
            "readable; use its https URL (plain http is allowed only to a loopback address, for tests)"
        )
    return None


def encrypted_or_local(url: str) -> bool:
    """Whether a secret may go to url: https, or plain http to this machine (localhost, 127.0.0.0/8, ::1)."""
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "https":
        return True
    if scheme != "http":
        return False
    host = (parts.hostname or "").rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


__all__ = [
    "CHANNELS",
    "DOMAIN",
    "LANGUAGES",
    "REDACTED",
    "DeliveryError",
    "NotConfigured",
    "Sent",
    "email_configured",
    "encrypted_or_local",
    "gettext",
    "ngettext",
    "scrub",
    "secrets_of",
    "slack_configured",
    "translations",
]
