"""Breach deadline alerts: 24 h and 6 h before the 72-hour deadline and when it passed, each sent once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from compliance.notify.alerts import check_deadlines, stage_for
from compliance.notify.deliveries import Deliveries
from compliance.settings import Settings, load_settings
from tests.compliance.notify_servers import PASSWORD, SLACK_TOKEN, MailServer, SlackServer

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
AWARE = datetime(2026, 3, 2, 9, 0, tzinfo=AMSTERDAM)  # deadline: Thursday 5 March 09:00


@pytest.fixture
def servers(tmp_path: Path) -> Any:
    with MailServer(tmp_path) as mail, SlackServer() as slack:
        yield mail, slack


def settings_for(tmp_path: Path, db_url: str, mail: MailServer, slack: SlackServer, lang: str = "en") -> Settings:
    config = tmp_path / "compliance.yaml"
    config.write_text(
        f"database:\n  url: {db_url}\n{mail.config()}"
        f"slack:\n  api_url: {slack.api_url}\n"
        f"alerts:\n  email: privacy@gemeente.example\n  slack_channel: '#privacy'\n  lang: {lang}\n"
        "schedule:\n  retry_backoff: 10m\n", encoding="utf-8")
    return load_settings(str(config), environ={"COMPLIANCE_SMTP_PASSWORD": PASSWORD,
                                               "COMPLIANCE_SLACK_TOKEN": SLACK_TOKEN})


def register_breach(database: Any, aware: datetime = AWARE) -> str:
    from compliance.incidents import Draft, Register

    draft = Draft(title="Laptop of J. Jansen stolen", description="Lost on the train with client files.",
                  occurred_at=aware - timedelta(hours=2), aware_at=aware, nature=["confidentiality"],
                  data_categories=["health"], subjects=40)
    return Register(database, zone=AMSTERDAM).register(draft, by="anna", now=aware + timedelta(minutes=30)).id


def at(hours_after_aware: float) -> datetime:
    return (AWARE + timedelta(hours=hours_after_aware)).astimezone(UTC)


@pytest.mark.parametrize(("hours_left", "stage"), [(30, None), (24.0, "24h"), (7, "24h"), (6.0, "6h"), (0.1, "6h"),
                                                   (0.0, "passed"), (-5, "passed")])
def test_the_stage_of_a_running_clock(hours_left: float, stage: str | None) -> None:
    assert stage_for(hours_left) == stage


def test_each_alert_goes_out_once_per_channel_at_24h_6h_and_when_passed(
        tmp_path: Path, database: Any, servers: Any) -> None:
    mail, slack = servers
    settings = settings_for(tmp_path, database.url, mail, slack)
    breach = register_breach(database)

    assert check_deadlines(database, settings, at(47)) == []  # 25 hours left
    sent = check_deadlines(database, settings, at(48.5))
    assert [(o.key, o.channel, o.result) for o in sent] == [(f"{breach}/24h", "email", "sent"),
                                                            (f"{breach}/24h", "slack", "sent")]
    assert check_deadlines(database, settings, at(50)) == []
    assert [o.key for o in check_deadlines(database, settings, at(66.2))] == [f"{breach}/6h"] * 2
    assert [o.key for o in check_deadlines(database, settings, at(72.5))] == [f"{breach}/passed"] * 2
    assert check_deadlines(database, settings, at(80)) == []

    subjects = [m["Subject"].strip() for m in mail.messages]  # a long subject is folded onto its own line
    assert subjects == [f"Breach {breach}: 23.5 hours left to notify the authority",
                        f"Breach {breach}: 5.8 hours left to notify the authority",
                        f"Breach {breach}: the 72-hour deadline to notify the authority has passed"]
    body = mail.messages[2].get_content().replace("\r\n", "\n")
    assert body.startswith(f"The 72-hour deadline of breach {breach} passed 0.5 hours ago (5 March 2026 09:00).\n"
                           "Status: open. ")
    assert [m["To"] for m in mail.messages] == ["privacy@gemeente.example"] * 3
    posts = slack.posts("api")
    assert [p.body["channel"] for p in posts] == ["#privacy"] * 3
    everything = "".join(m.as_string() for m in mail.messages) + str([p.body for p in posts])
    assert "Jansen" not in everything and "train" not in everything and "health" not in everything


def test_alerts_are_not_sent_again_after_a_restart(tmp_path: Path, db_url: str, servers: Any) -> None:
    from compliance.db import Database

    mail, slack = servers
    settings = settings_for(tmp_path, db_url, mail, slack)
    first = Database(db_url)
    register_breach(first)
    assert len(check_deadlines(first, settings, at(49))) == 2
    first.close()
    again = Database(db_url)
    assert check_deadlines(again, settings, at(49.1)) == []
    again.close()
    assert len(mail.messages) == 1 and len(slack.posts("api")) == 1


def test_a_daemon_back_after_two_stages_sends_only_the_current_one(tmp_path: Path, database: Any,
                                                                  servers: Any) -> None:
    mail, slack = servers
    settings = settings_for(tmp_path, database.url, mail, slack, lang="nl")
    breach = register_breach(database)
    assert [o.key for o in check_deadlines(database, settings, at(70))] == [f"{breach}/6h"] * 2
    assert check_deadlines(database, settings, at(71)) == []
    assert mail.messages[0]["Subject"].strip() == f"Datalek {breach}: nog 2,0 uur om te melden bij de AP"


def test_no_alert_once_the_decision_not_to_notify_is_recorded(tmp_path: Path, database: Any, servers: Any) -> None:
    from compliance.incidents import Register

    mail, slack = servers
    settings = settings_for(tmp_path, database.url, mail, slack)
    breach = register_breach(database)
    register = Register(database, zone=AMSTERDAM)
    register.assess(breach, ei="limited", confidentiality="exposed", integrity="none", availability="none",
                    by="anna", now=at(2))
    register.decide(breach, notify_authority=False, notify_subjects=False, reason="low risk", by="anna", now=at(3))
    assert check_deadlines(database, settings, at(60)) == []
    assert check_deadlines(database, settings, at(80)) == []
    assert mail.messages == [] and slack.posts("api") == []


def test_a_failed_alert_is_retried_with_back_off(tmp_path: Path, database: Any, servers: Any) -> None:
    mail, slack = servers
    settings = settings_for(tmp_path, database.url, mail, slack)
    breach = register_breach(database)
    mail.refuse(1)
    outcomes = check_deadlines(database, settings, at(49))
    assert [(o.channel, o.result) for o in outcomes] == [("email", "failed"), ("slack", "sent")]
    assert check_deadlines(database, settings, at(49.1)) == []  # back-off: 10 minutes
    [retried] = check_deadlines(database, settings, at(49.2))
    assert (retried.channel, retried.result, retried.attempt) == ("email", "sent", 2)
    attempts = Deliveries(database).attempts("alert", f"{breach}/24h", "email")
    assert [a.result for a in attempts] == ["failed", "sent"]


def test_without_alert_settings_nothing_is_checked(tmp_path: Path, database: Any) -> None:
    register_breach(database)
    settings = Settings.model_validate({"database": {"url": database.url}})
    assert check_deadlines(database, settings, at(71)) == []
    from sqlalchemy import func, select

    from compliance.db.models import Alert

    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 0


def test_a_significant_incident_gets_csirt_alerts_once_per_stage(tmp_path: Path, database: Any, servers: Any) -> None:
    from compliance.incidents import Register
    from compliance.notify.alerts import raise_alerts

    incident = register_breach(database)
    Register(database).update(incident, {"significant": True}, by="anna", now=at(1))
    raised = [a.stage for a in raise_alerts(database, at(19))]
    # 5 h left for the early warning, 53 h for the notification, about a month for the final report
    assert raised == ["ew-6h"]
    assert [a.stage for a in raise_alerts(database, at(20))] == []
    Register(database).notify_csirt(incident, stage="early-warning", reference="C-1", by="anna", now=at(21))
    # the 72-hour alerts of the breach go on beside them
    assert [a.stage for a in raise_alerts(database, at(49))] == ["24h", "cn-24h"]
    assert [a.stage for a in raise_alerts(database, at(73))] == ["passed", "cn-passed"]


def test_each_organisation_alerts_its_own_privacy_officer(tmp_path: Path, database: Any, servers: Any) -> None:
    """Several municipalities (issue 20): a breach of Zeist alerts Zeist's privacy officer on Zeist's
    channel, and nothing of it reaches the first organisation's."""
    from compliance import orgs

    mail, slack = servers
    zeist = orgs.open_org(database, orgs.add(database, "zeist", "Gemeente Zeist", "test"))
    settings_file = tmp_path / "compliance.yaml"
    settings_for(tmp_path, database.url, mail, slack)  # writes the shared settings
    settings_file.write_text(settings_file.read_text(encoding="utf-8") + (
        "organisations:\n  zeist:\n    alerts:\n      email: [fg@zeist.example]\n"
        "      slack_channel: '#privacy-zeist'\n"), encoding="utf-8")
    shared = load_settings(str(settings_file), environ={"COMPLIANCE_SMTP_PASSWORD": PASSWORD,
                                                         "COMPLIANCE_SLACK_TOKEN": SLACK_TOKEN})
    try:
        breach = register_breach(zeist)
        assert check_deadlines(database, shared.for_org("default"), at(48.5)) == []
        sent = check_deadlines(zeist, shared.for_org("zeist", name="Gemeente Zeist", first=False), at(48.5))
    finally:
        zeist.close()

    assert [(o.key, o.channel, o.result) for o in sent] == [(f"{breach}/24h", "email", "sent"),
                                                            (f"{breach}/24h", "slack", "sent")]
    assert [m["To"] for m in mail.messages] == ["fg@zeist.example"]
    assert [p.body["channel"] for p in slack.posts("api")] == ["#privacy-zeist"]
