"""The digest by e-mail, through a real SMTP server on loopback (aiosmtpd, STARTTLS with a trustme CA, AUTH).

The data is the risk overview's known history (tests/compliance/report/conftest.py): week 10 of 2026,
digest made on Monday 9 March 2026 at 09:00.
"""

from __future__ import annotations

from datetime import timedelta
from email.utils import parsedate_to_datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from compliance.digest import build_digest, send_digest
from compliance.notify.deliveries import Deliveries
from compliance.report.language import Formatter
from tests.compliance.notify_servers import PASSWORD, USER, MailServer, parts, settings_for
from tests.compliance.report.conftest import NOW


@pytest.fixture
def mail(tmp_path: Path) -> Any:
    with MailServer(tmp_path) as server:
        yield server


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_the_digest_arrives_as_text_and_html_with_the_chart_inline(
        lang: str, tmp_path: Path, database: Any, seeded: None, mail: MailServer) -> None:
    settings = settings_for(tmp_path, database.url, mail.config() + f"  lang: {lang}\n",
                            COMPLIANCE_SMTP_PASSWORD=PASSWORD)

    [outcome] = send_digest(database, settings, channels=["email"], now=NOW)

    assert (outcome.result, outcome.key, outcome.recipients) == ("sent", "2026-W10", 2)
    assert mail.logins == [(USER, PASSWORD)]
    [envelope], [message] = mail.envelopes, mail.messages
    assert envelope.rcpt_tos == ["ciso@gemeente.example", "directie@gemeente.example"]
    assert parsedate_to_datetime(message["Date"]) == NOW
    assert message["Message-ID"].endswith("@gemeente.example>")
    assert message["Content-Language"] == lang
    assert message["Auto-Submitted"] == "auto-generated"
    assert [t for t, _ in parts(message)] == ["multipart/alternative", "text/plain", "multipart/related",
                                               "text/html", "image/png"]
    by_type = dict(parts(message))
    text, html, png = (by_type[t].get_content() for t in ("text/plain", "text/html", "image/png"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    cid = by_type["image/png"]["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html
    html = unescape(html)

    overview = build_digest(database, settings, now=NOW).overview
    f = Formatter(lang, "Europe/Amsterdam")
    score, change = f.percent(overview.compliance.percent), f.points(overview.change)
    week = {"nl": "Compliance-overzicht, week 10, 2026", "en": "Compliance digest, week 10, 2026"}[lang]
    assert message["Subject"].strip() == f"{week}: {score} ({change})"
    for body in (text, html):
        assert week in body and score in body and change in body
        assert "Logging of security events" in body  # the top risk, control A
        assert "DL-2026-0002, DL-2026-0003, DL-2026-0004" in body  # registered in week 10
        assert "Server room access logged" in body  # control E could not run
        assert "Lost folder" not in body and "train" not in body  # nothing typed into the register
    words = {"nl": ("Grootste risico's", "Datalekken", "termijn verstreken"),
             "en": ("Top risks", "Personal-data breaches", "overdue")}[lang]
    assert all(w in text and w in html for w in words)
    [attempt] = Deliveries(database).attempts("digest")
    assert (attempt.channel, attempt.result, attempt.recipients, attempt.attempt) == ("email", "sent", 2, 1)


def test_a_refused_digest_is_retried_with_back_off_and_reported_in_the_next(
        tmp_path: Path, database: Any, seeded: None, mail: MailServer) -> None:
    from compliance.digest import retry_digests

    settings = settings_for(tmp_path, database.url, mail.config() + "schedule:\n  retry_backoff: 5m\n",
                            COMPLIANCE_SMTP_PASSWORD=PASSWORD)
    mail.refuse(2)

    [first] = send_digest(database, settings, channels=["email"], now=NOW)
    assert (first.result, first.attempt) == ("failed", 1)
    assert first.error == f"the mail server 127.0.0.1:{mail.port} answered 451 4.3.0 Try again later"
    assert retry_digests(database, settings, now=NOW + timedelta(minutes=4)) == []  # not due yet
    # due 5 minutes after the first attempt ended (making the message takes a moment, longer under load)
    [second] = retry_digests(database, settings, now=NOW + timedelta(minutes=5, seconds=30))
    assert (second.result, second.attempt) == ("failed", 2)
    [third] = retry_digests(database, settings, now=NOW + timedelta(minutes=16))  # 5 min, then 10 min
    assert (third.result, third.attempt, third.recipients) == ("sent", 3, 2)
    assert retry_digests(database, settings, now=NOW + timedelta(hours=2)) == []

    attempts = Deliveries(database).attempts("digest", "2026-W10", "email")
    assert [(a.attempt, a.result) for a in attempts] == [(1, "failed"), (2, "failed"), (3, "sent")]
    assert [round((a.retry_at - a.finished_at).total_seconds() / 60) for a in attempts[:2]] == [5, 10]
    assert attempts[2].retry_at is None and attempts[2].error is None
    assert len(mail.messages) == 1

    # the next week's digest tells that this one failed twice before it got through
    following = build_digest(database, settings, now=NOW + timedelta(days=7), lang="en")
    [problem] = following.delivery_problems
    assert (problem.key, problem.channel, problem.failures, problem.delivered) == ("2026-W10", "email", 2, True)
    from compliance.digest import render_text

    assert (f"digest 2026-W10  by e-mail: failed 2 times (the mail server 127.0.0.1:{mail.port} answered 451 "
            "4.3.0 Try again later); delivered later") in render_text(following)


def test_a_digest_that_went_out_is_never_sent_again_for_that_week(
        tmp_path: Path, db_url: str, seeded: None, mail: MailServer) -> None:
    from compliance.db import Database

    settings = settings_for(tmp_path, db_url, mail.config(), COMPLIANCE_SMTP_PASSWORD=PASSWORD)
    first = Database(db_url)
    assert [o.result for o in send_digest(first, settings, now=NOW)] == ["sent"]
    first.close()

    again = Database(db_url)  # as after a restart
    later_that_week = NOW + timedelta(days=3)
    assert [o.describe() for o in send_digest(again, settings, now=later_that_week)] == [
        "digest 2026-W10 by email: already sent earlier, not sent again"]
    again.close()
    assert len(mail.messages) == 1


def test_a_server_without_starttls_gets_nothing(tmp_path: Path, database: Any, seeded: None) -> None:
    with MailServer(tmp_path, starttls=False) as plain:
        settings = settings_for(tmp_path, database.url, plain.config(), COMPLIANCE_SMTP_PASSWORD=PASSWORD)
        [outcome] = send_digest(database, settings, channels=["email"], now=NOW)
    assert outcome.result == "failed"
    assert outcome.error == (f"the mail server 127.0.0.1:{plain.port} does not offer STARTTLS, which "
                             "smtp.starttls requires; nothing was sent")
    assert plain.messages == [] and plain.logins == []


def test_a_wrong_password_fails_without_showing_it(tmp_path: Path, database: Any, seeded: None,
                                                   mail: MailServer) -> None:
    settings = settings_for(tmp_path, database.url, mail.config(), COMPLIANCE_SMTP_PASSWORD="wrong-" + PASSWORD)
    [outcome] = send_digest(database, settings, channels=["email"], now=NOW)
    assert outcome.result == "failed"
    assert outcome.error is not None and outcome.error.startswith(
        f"the mail server 127.0.0.1:{mail.port} answered 535 ")
    assert PASSWORD not in outcome.describe()
