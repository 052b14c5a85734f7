"""Deliveries when the other side misbehaves (issue 15): nothing sent twice, nothing lost without a word.

- an SMTP server (aiosmtpd on loopback, STARTTLS, AUTH) that accepts the digest and then answers QUIT
  with something other than 221, or drops the connection: the digest is sent, once;
- a server that refuses one of three recipients: recorded as `partial` with the refused address,
  reported by `digest send` and `digest status`, and not sent again;
- a password with non-ASCII characters: logs in (AUTH PLAIN or LOGIN, UTF-8), or exits 2 with what to
  do when the server offers neither; none of its characters is ever shown;
- Slack (a local HTTP server): a Retry-After beyond the cap is not waited for, and the token or webhook
  URL never goes over plain http to another host.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from compliance.db import Database
from compliance.db.models import Delivery
from compliance.notify.slack import MAX_RETRY_AFTER
from tests.compliance.notify_servers import SLACK_TOKEN, WEBHOOK_PATH, SlackServer, free_port

pytestmark = pytest.mark.faults

USER = "monitor@gemeente.example"
PASSWORD = "Pw-SMTP-7f3a9c1e"
NON_ASCII_PASSWORD = "Wachtwoord-één-ß-€-7f3a"
RECIPIENTS = ("ciso@gemeente.example", "directie@gemeente.example", "fg@gemeente.example")


class OddMailServer:
    """aiosmtpd on loopback with STARTTLS and AUTH that can answer QUIT oddly, drop the connection once it
    accepted a message, and refuse some recipients."""

    def __init__(
        self,
        folder: Path,
        *,
        password: str = PASSWORD,
        quit_answer: str | None = None,
        drop_after_data: bool = False,
        refuse: tuple[str, ...] = (),
        exclude_auth: tuple[str, ...] = (),
    ) -> None:
        import trustme

        self.ca = trustme.CA()
        self.ca_file = folder / "smtp-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.port = free_port()
        self.password = password
        self.quit_answer = quit_answer
        self.drop_after_data = drop_after_data
        self.refuse = refuse
        self.exclude_auth = exclude_auth
        self.messages: list[list[str]] = []  # the recipients of each message accepted
        self.logins: list[tuple[str, str]] = []
        self._controller: Any = None

    def __enter__(self) -> OddMailServer:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import MISSING, AuthResult

        server = self

        class Handler:
            async def handle_RCPT(self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any) -> str:
                if address in server.refuse:
                    return "550 5.1.1 <" + address + ">: mailbox unknown"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, smtp: Any, _session: Any, envelope: Any) -> str:
                server.messages.append(list(envelope.rcpt_tos))
                if server.drop_after_data:  # after the 250 went out: the client sees the connection gone
                    asyncio.get_running_loop().call_later(0.2, smtp.transport.abort)
                return "250 2.0.0 Accepted"

            async def handle_QUIT(self, *_: Any) -> Any:
                return server.quit_answer or MISSING

        def authenticate(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> Any:
            login, password = data.login.decode("utf-8"), data.password.decode("utf-8")
            server.logins.append((login, password))
            return AuthResult(success=login == USER and password == server.password, handled=False)

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1").configure_cert(context)
        logging.getLogger("mail.log").setLevel(logging.CRITICAL)
        self._controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticate,
            auth_require_tls=True,
            tls_context=context,
            require_starttls=True,
            auth_exclude_mechanism=list(self.exclude_auth),
        )
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()

    def config(self, recipients: tuple[str, ...] = RECIPIENTS[:2]) -> str:
        return (
            f"smtp:\n  host: 127.0.0.1\n  port: {self.port}\n  starttls: true\n  user: {USER}\n"
            f"  ca_file: {self.ca_file}\n  timeout: 10s\n"
            f"digest:\n  from: compliance@gemeente.example\n  lang: en\n  to: [{', '.join(recipients)}]\n"
        )


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[Any]:
    servers: list[OddMailServer] = []

    def start(**options: Any) -> OddMailServer:
        servers.append(OddMailServer(tmp_path, **options).__enter__())
        return servers[-1]

    yield start
    for server in servers:
        server.__exit__()


def deliveries(db_url: str) -> list[Delivery]:
    database = Database(db_url)
    try:
        with database.sessions() as session:
            return list(session.scalars(select(Delivery).order_by(Delivery.id)))
    finally:
        database.close()


def week_of_now() -> str:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from compliance.digest import digest_week

    return digest_week(datetime.now(UTC), ZoneInfo("Europe/Amsterdam")).label


# -- e-mail: accepted is sent ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "odd",
    [
        {"quit_answer": "421 4.3.2 Going away"},
        {"quit_answer": "500 5.5.1 What?"},
        {"drop_after_data": True},
    ],
)
def test_a_digest_the_server_accepted_is_sent_once_whatever_follows(
    project: Any, mail_server: Any, odd: dict[str, Any]
) -> None:
    server = mail_server(**odd)
    project.write_config(server.config())
    env = {"COMPLIANCE_SMTP_PASSWORD": PASSWORD}
    week = week_of_now()

    first = project.run("digest", "send", "--channel", "email", env=env)
    assert (first.exit_code, first.output) == (0, f"digest {week} by email: sent to 2 recipients\n")
    again = project.run("digest", "send", "--channel", "email", env=env)
    assert (again.exit_code, again.output) == (0, f"digest {week} by email: already sent earlier, not sent again\n")

    assert server.messages == [list(RECIPIENTS[:2])]
    assert [(d.result, d.recipients, d.error) for d in deliveries(project.db_url)] == [("sent", 2, None)]


# -- e-mail: some recipients refused -------------------------------------------------------------------------


def test_refused_recipients_are_recorded_reported_and_not_sent_again(project: Any, mail_server: Any) -> None:
    server = mail_server(refuse=(RECIPIENTS[2],))
    project.write_config(server.config(RECIPIENTS))
    env = {"COMPLIANCE_SMTP_PASSWORD": PASSWORD}
    week = week_of_now()
    refused = f"{RECIPIENTS[2]} (550 5.1.1 <{RECIPIENTS[2]}>: mailbox unknown)"

    sent = project.run("digest", "send", "--channel", "email", env=env)
    assert sent.exit_code == 1
    assert sent.output == (
        f"digest {week} by email: sent to 2 of 3 recipients; refused: {refused}. Not sent again "
        "to them: correct the address (digest.to, alerts.email) or the mailbox\n"
    )
    [row] = deliveries(project.db_url)
    assert (row.result, row.recipients, row.refused, row.error) == (
        "partial",
        2,
        {RECIPIENTS[2]: f"550 5.1.1 <{RECIPIENTS[2]}>: mailbox unknown"},
        f"refused: {refused}",
    )

    status = project.run("digest", "status", "--format", "json")
    assert status.exit_code == 0
    [digest] = json.loads(status.output)["digests"]
    assert {k: digest[k] for k in ("week", "channel", "result", "attempts", "recipients", "refused")} == {
        "week": week,
        "channel": "email",
        "result": "partial",
        "attempts": 1,
        "recipients": 2,
        "refused": [{"address": RECIPIENTS[2], "answer": f"550 5.1.1 <{RECIPIENTS[2]}>: mailbox unknown"}],
    }
    table = project.run("digest", "status")
    assert table.exit_code == 0
    assert "partial" in table.output and RECIPIENTS[2] in table.output and "not sent to them again" in table.output

    again = project.run("digest", "send", "--channel", "email", env=env)
    assert (again.exit_code, again.output) == (0, f"digest {week} by email: already sent earlier, not sent again\n")
    assert server.messages == [list(RECIPIENTS[:2])]  # the two who got it do not get it twice


def test_a_partly_sent_digest_is_listed_in_the_next_one(database: Any, tmp_path: Path, mail_server: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from compliance.digest import build_digest, render_text, send_digest
    from tests.compliance.notify_servers import settings_for

    server = mail_server(refuse=(RECIPIENTS[2],))
    settings = settings_for(tmp_path, database.url, server.config(RECIPIENTS), COMPLIANCE_SMTP_PASSWORD=PASSWORD)
    now = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    [outcome] = send_digest(database, settings, channels=["email"], now=now)
    assert (outcome.result, outcome.recipients) == ("partial", 2)

    for lang, expected in [
        (
            "en",
            f"partly delivered; refused: {RECIPIENTS[2]} (550 5.1.1 <{RECIPIENTS[2]}>: mailbox unknown) "
            "(not sent to them again)",
        ),
        (
            "nl",
            f"deels bezorgd; geweigerd: {RECIPIENTS[2]} (550 5.1.1 <{RECIPIENTS[2]}>: mailbox unknown) "
            "(niet opnieuw naar hen verstuurd)",
        ),
    ]:
        text = render_text(build_digest(database, settings, now=now + timedelta(days=7), lang=lang))
        assert expected in text


# -- e-mail: a password with non-ASCII characters -----------------------------------------------------------


def shows_none_of(output: str, secret: str) -> bool:
    odd = [c for c in secret if not c.isascii()]
    return not any(c in output or ascii(c)[1:-1] in output for c in odd) and secret not in output


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_a_non_ascii_password_logs_in(project: Any, mail_server: Any, mechanism: str) -> None:
    other = "LOGIN" if mechanism == "PLAIN" else "PLAIN"
    server = mail_server(password=NON_ASCII_PASSWORD, exclude_auth=(other,))
    project.write_config(server.config())

    result = project.run("digest", "send", "--channel", "email", env={"COMPLIANCE_SMTP_PASSWORD": NON_ASCII_PASSWORD})

    assert (result.exit_code, result.output) == (0, f"digest {week_of_now()} by email: sent to 2 recipients\n")
    assert server.logins == [(USER, NON_ASCII_PASSWORD)]


def test_a_wrong_non_ascii_password_fails_without_showing_it(project: Any, mail_server: Any) -> None:
    server = mail_server(password="something-else")
    project.write_config(server.config())

    result = project.run("digest", "send", "--channel", "email", env={"COMPLIANCE_SMTP_PASSWORD": NON_ASCII_PASSWORD})

    assert result.exit_code == 1
    assert result.output == (
        f"digest {week_of_now()} by email: attempt 1 failed: the mail server 127.0.0.1:"
        f"{server.port} answered 535 5.7.8 Authentication credentials invalid; retry at "
        f"{deliveries(project.db_url)[0].retry_at.isoformat(timespec='seconds')}\n"
    )
    assert shows_none_of(result.output, NON_ASCII_PASSWORD)
    assert shows_none_of(json.dumps([d.error for d in deliveries(project.db_url)]), NON_ASCII_PASSWORD)


def test_a_non_ascii_password_the_server_cannot_take_exits_2_with_a_fix(project: Any, mail_server: Any) -> None:
    server = mail_server(password=NON_ASCII_PASSWORD, exclude_auth=("PLAIN", "LOGIN"))
    project.write_config(server.config())

    result = project.run("digest", "send", "--channel", "email", env={"COMPLIANCE_SMTP_PASSWORD": NON_ASCII_PASSWORD})

    assert result.exit_code == 2
    assert result.output == (
        f"error: the SMTP password (or smtp.user) has non-ASCII characters, which the mail server 127.0.0.1:"
        f"{server.port} cannot take: it offers neither AUTH PLAIN nor LOGIN (no AUTH at all). Use a password of "
        "ASCII characters only (COMPLIANCE_SMTP_PASSWORD), or enable AUTH PLAIN on the server\n"
    )
    assert shows_none_of(result.output, NON_ASCII_PASSWORD)
    [row] = deliveries(project.db_url)
    assert (row.result, row.retry_at) == ("failed", None)  # a retry would not help: not retried
    assert server.messages == []


# -- Slack ----------------------------------------------------------------------------------------------------


@pytest.fixture
def slack_server() -> Iterator[SlackServer]:
    with SlackServer() as server:
        yield server


def slack_config(api_url: str) -> str:
    return f"slack:\n  mode: token\n  channel: '#management'\n  api_url: {api_url}\ndigest:\n  lang: en\n"


@pytest.mark.parametrize("mode", ["token", "webhook"])
def test_a_retry_after_beyond_the_cap_is_not_waited_for(project: Any, slack_server: SlackServer, mode: str) -> None:
    slack_server.script.append(
        (429, {"Retry-After": "3600", "Content-Type": "application/json"}, '{"ok": false, "error": "ratelimited"}')
    )
    if mode == "token":
        project.write_config(slack_config(slack_server.api_url))
        env = {"COMPLIANCE_SLACK_TOKEN": SLACK_TOKEN}
        answer = "Slack refused the message for #management: HTTP 429, ratelimited"
    else:
        project.write_config("slack:\n  mode: webhook\ndigest:\n  lang: en\n")
        env = {"COMPLIANCE_SLACK_WEBHOOK_URL": slack_server.webhook_url}
        answer = 'the Slack webhook answered HTTP 429: {"ok": false, "error": "ratelimited"}'

    started = time.monotonic()
    result = project.run("digest", "send", "--channel", "slack", env=env)

    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    [row] = deliveries(project.db_url)
    assert result.output == (
        f"digest {week_of_now()} by slack: attempt 1 failed: {answer} (Retry-After 3600 s is longer than the "
        f"{MAX_RETRY_AFTER:g} s waited at most; tried again later); retry at "
        f"{row.retry_at.isoformat(timespec='seconds')}\n"
    )
    assert len(slack_server.requests) == 1
    assert SLACK_TOKEN not in result.output and WEBHOOK_PATH not in result.output


def test_a_retry_after_within_the_cap_is_waited_for(project: Any, slack_server: SlackServer) -> None:
    slack_server.script.append(
        (429, {"Retry-After": "1", "Content-Type": "application/json"}, '{"ok": false, "error": "ratelimited"}')
    )
    project.write_config(slack_config(slack_server.api_url))
    started = time.monotonic()
    result = project.run("digest", "send", "--channel", "slack", env={"COMPLIANCE_SLACK_TOKEN": SLACK_TOKEN})
    assert time.monotonic() - started >= 1
    assert (result.exit_code, result.output) == (0, f"digest {week_of_now()} by slack: sent to 1 recipient\n")
    assert len(slack_server.requests) == 2


@pytest.mark.parametrize("api_url", ["http://slack.example/api/", "http://10.0.0.8:8080/api/", "ftp://slack.example/"])
def test_the_token_never_goes_over_plain_http_to_another_host(project: Any, api_url: str) -> None:
    project.write_config(slack_config(api_url))
    result = project.run("digest", "send", "--channel", "slack", env={"COMPLIANCE_SLACK_TOKEN": SLACK_TOKEN})
    assert (result.exit_code, result.output) == (
        2,
        (
            f"error: cannot send the digest by slack: slack.api_url '{api_url}' is not https: the token would "
            "cross the network readable; use https (plain http is allowed only to a loopback address, for tests)\n"
        ),
    )
    assert deliveries(project.db_url) == []


def test_the_webhook_url_never_goes_over_plain_http_to_another_host(project: Any) -> None:
    project.write_config("slack:\n  mode: webhook\ndigest:\n  lang: en\n")
    webhook = f"http://hooks.slack.example{WEBHOOK_PATH}"
    result = project.run("digest", "send", "--channel", "slack", env={"COMPLIANCE_SLACK_WEBHOOK_URL": webhook})
    assert (result.exit_code, result.output) == (
        2,
        (
            "error: cannot send the digest by slack: COMPLIANCE_SLACK_WEBHOOK_URL is not https: the webhook URL, a "
            "secret, would cross the network readable; use its https URL (plain http is allowed only to a loopback "
            "address, for tests)\n"
        ),
    )
    assert WEBHOOK_PATH not in result.output


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/api/", "http://localhost/api/", "http://[::1]/api/", "https://slack.com/api/"]
)
def test_https_or_loopback_may_carry_the_token(url: str) -> None:
    from compliance.notify import encrypted_or_local

    assert encrypted_or_local(url)


def test_retry_after_is_read_as_seconds_or_not_at_all() -> None:
    from compliance.notify.slack import retry_after

    assert retry_after({"Retry-After": ["3600"]}) == 3600
    assert retry_after({"retry-after": "1.5"}) == 1.5
    assert retry_after({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None
    assert retry_after({"Retry-After": "-5"}) is None
    assert retry_after({}) is None
