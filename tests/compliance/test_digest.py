"""The weekly digest: which week, its content from the risk overview, `compliance digest send`, settings."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from compliance.digest import build_digest, digest_week, week_of
from compliance.errors import ComplianceError
from compliance.settings import Settings, load_settings
from tests.compliance.notify_servers import PASSWORD, MailServer
from tests.compliance.report.conftest import NOW, seed

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.mark.parametrize(("moment", "week"), [
    (datetime(2026, 3, 9, 8, 0, tzinfo=AMSTERDAM), "2026-W10"),  # Monday morning: the week just ended
    (datetime(2026, 3, 8, 23, 59, tzinfo=AMSTERDAM), "2026-W09"),  # Sunday night: that week is not over yet
    (datetime(2026, 3, 12, 15, 0, tzinfo=AMSTERDAM), "2026-W10"),  # later in the week: the same digest
    (datetime(2026, 1, 5, 8, 0, tzinfo=AMSTERDAM), "2026-W01"),
    (datetime(2026, 1, 2, 8, 0, tzinfo=AMSTERDAM), "2025-W52"),
])
def test_the_digest_is_about_the_last_complete_week(moment: datetime, week: str) -> None:
    period = digest_week(moment, AMSTERDAM)
    assert period.label == week and period.complete and period.start.weekday() == 0
    assert week_of(week) == period


def test_a_week_key_must_look_like_one() -> None:
    with pytest.raises(ComplianceError, match="'2026-10' is not a week; write it as 2026-W09"):
        week_of("2026-10")


def test_every_figure_comes_from_the_risk_overview(database: Any, store: Any, probe_plugin: type) -> None:
    from compliance.report import build_overview

    seed(database, store)
    settings = Settings.model_validate({"database": {"url": database.url}, "schedule": {"default": None}})
    digest = build_digest(database, settings, now=NOW)
    overview = build_overview(database, "week", date(2026, 3, 8), AMSTERDAM, now=NOW)
    assert digest.key == "2026-W10"
    assert digest.overview.compliance == overview.compliance and digest.overview.change == overview.change
    assert [r.control for r in digest.top_risks] == [r.control for r in overview.risks[:5]]
    assert digest.overview.incidents == overview.incidents
    assert digest.overview.could_not_run == overview.could_not_run
    # ids for the counts the overview gives
    assert len(digest.new_breaches) == overview.incidents.new
    assert len(digest.overdue_breaches) == overview.incidents.overdue
    assert digest.overdue_breaches == ("DL-2026-0004",)


# -- compliance digest send -------------------------------------------------------------------------


def test_dry_run_prints_the_digest_and_records_nothing(project: Any) -> None:
    result = project.run("digest", "send", "--dry-run", "--lang", "en")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Compliance digest, week ")
    assert "Top risks" in result.output and "Personal-data breaches" in result.output
    result = project.run("digest", "send", "--dry-run", "--channel", "slack")
    payload = json.loads(result.output)
    assert payload["blocks"][0]["type"] == "header" and payload["text"].startswith("Compliance-overzicht, week ")
    from compliance.db import Database
    from compliance.notify.deliveries import Deliveries

    database = Database(project.db_url)
    assert Deliveries(database).attempts() == []
    database.close()


def test_sending_without_a_channel_says_what_to_configure(project: Any) -> None:
    result = project.run("digest", "send")
    assert result.exit_code == 2
    assert result.output == (
        "error: no channel is configured for the digest (email: smtp.host is not set (or COMPLIANCE_SMTP_HOST); "
        "slack: no Slack credentials: set COMPLIANCE_SLACK_TOKEN or COMPLIANCE_SLACK_WEBHOOK_URL)\n")
    result = project.run("digest", "send", "--channel", "slack", env={"COMPLIANCE_SLACK_TOKEN": "xoxb-1"})
    assert (result.exit_code, result.output) == (
        2, "error: cannot send the digest by slack: slack.channel is not set (or COMPLIANCE_SLACK_CHANNEL)\n")


def test_send_by_email_configured_from_the_environment_once(project: Any, tmp_path: Path) -> None:
    with MailServer(tmp_path) as mail:
        env = {"COMPLIANCE_SMTP_HOST": "127.0.0.1", "COMPLIANCE_SMTP_PORT": str(mail.port),
               "COMPLIANCE_SMTP_STARTTLS": "true", "COMPLIANCE_SMTP_USER": "monitor@gemeente.example",
               "COMPLIANCE_SMTP_PASSWORD": PASSWORD, "COMPLIANCE_DIGEST_FROM": "compliance@gemeente.example",
               "COMPLIANCE_DIGEST_TO": "ciso@gemeente.example, directie@gemeente.example"}
        project.write_config(f"smtp:\n  ca_file: {mail.ca_file}\n")
        first = project.run("digest", "send", "--channel", "email", env=env)
        second = project.run("digest", "send", env=env)
        assert len(mail.messages) == 1
    assert first.exit_code == 0, first.output
    assert first.output.startswith("digest 20") and first.output.endswith(" by email: sent to 2 recipients\n")
    assert second.exit_code == 0 and second.output.endswith(" by email: already sent earlier, not sent again\n")
    assert PASSWORD not in first.output + second.output


def test_a_failed_send_exits_1_and_tells_when_it_is_retried(project: Any, tmp_path: Path) -> None:
    with MailServer(tmp_path) as mail:
        mail.refuse(1)
        project.write_config(mail.config())
        result = project.run("digest", "send", env={"COMPLIANCE_SMTP_PASSWORD": PASSWORD})
    assert result.exit_code == 1
    assert " by email: attempt 1 failed: the mail server 127.0.0.1:" in result.output
    assert "answered 451 4.3.0 Try again later; retry at " in result.output


def digest_json(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    week = digest_week(datetime.now(UTC), AMSTERDAM)
    assert data.pop("period") == {"key": week.label, "start": week.start.isoformat(), "end": week.end.isoformat()}
    return data


def channel(name: str, result: str, *, attempt: int | None = None, recipients: int = 0, error: str | None = None,
            retry_at: Any = None, refused: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"channel": name, "result": result, "attempt": attempt, "recipients": recipients, "error": error,
            "retry_at": retry_at, "refused": refused or []}


def test_dry_run_as_json_says_what_would_be_sent_per_channel(project: Any) -> None:
    project.write_config("smtp:\n  host: mail.example\n  user: monitor\ndigest:\n  from: cm@gemeente.example\n"
                         "  to: [ciso@gemeente.example, directie@gemeente.example]\n")
    result = project.run("digest", "send", "--dry-run", "--format", "json",
                         env={"COMPLIANCE_SMTP_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output
    assert digest_json(result) == {"dry_run": True, "lang": "nl", "channels": [
        channel("email", "would-send", recipients=2),
        channel("slack", "not-configured",
                error="no Slack credentials: set COMPLIANCE_SLACK_TOKEN or COMPLIANCE_SLACK_WEBHOOK_URL")]}
    assert PASSWORD not in result.output


def test_send_as_json_reports_each_channel_and_exits_1_on_failure(project: Any, tmp_path: Path) -> None:
    env = {"COMPLIANCE_SMTP_PASSWORD": PASSWORD}
    with MailServer(tmp_path) as mail:
        mail.refuse(1)
        project.write_config(mail.config())
        failed = project.run("digest", "send", "--format", "json", "--lang", "en", env=env)
        sent = project.run("digest", "send", "--format", "json", env=env)
        again = project.run("digest", "send", "--format", "json", "--dry-run", "--channel", "email", env=env)
    assert failed.exit_code == 1
    [attempt] = digest_json(failed)["channels"]
    assert (attempt["result"], attempt["attempt"], attempt["error"].split(" answered ")[1]) == (
        "failed", 1, "451 4.3.0 Try again later")
    assert datetime.fromisoformat(attempt["retry_at"]) > datetime.now(UTC)
    assert (sent.exit_code, digest_json(sent)) == (0, {"dry_run": False, "lang": "nl", "channels": [
        channel("email", "sent", attempt=2, recipients=2)]})
    assert (again.exit_code, digest_json(again)) == (0, {"dry_run": True, "lang": "nl", "channels": [
        channel("email", "already-sent")]})
    assert PASSWORD not in failed.output + sent.output + again.output


# -- settings -----------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "compliance.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_secrets_in_the_config_file_are_refused(tmp_path: Path) -> None:
    from compliance.errors import ValidationFailed

    path = write(tmp_path, "smtp:\n  host: mail.example\n  password: hunter2\nslack:\n  token: xoxb-1\n")
    with pytest.raises(ValidationFailed) as failed:
        load_settings(path, environ={})
    assert [str(p).split(": ", 1)[1] for p in failed.value.problems] == [
        "smtp.password is a secret and does not belong in the config file (remove it and set the environment "
        "variable COMPLIANCE_SMTP_PASSWORD instead)",
        "slack.token is a secret and does not belong in the config file (remove it and set the environment "
        "variable COMPLIANCE_SLACK_TOKEN instead)"]
    assert "hunter2" not in str(failed.value)


def test_the_environment_sets_mail_and_slack(tmp_path: Path) -> None:
    path = write(tmp_path, "smtp:\n  host: file.example\n  port: 25\ndigest:\n  to: [file@example.org]\n")
    settings = load_settings(path, environ={
        "COMPLIANCE_SMTP_HOST": "smtp.gemeente.example", "COMPLIANCE_SMTP_PORT": "465",
        "COMPLIANCE_SMTP_STARTTLS": "false", "COMPLIANCE_SMTP_USER": "u", "COMPLIANCE_SMTP_PASSWORD": "pw-1",
        "COMPLIANCE_DIGEST_FROM": "cm@gemeente.example",
        "COMPLIANCE_DIGEST_TO": "a@gemeente.example,b@gemeente.example",
        "COMPLIANCE_SLACK_TOKEN": "xoxb-2", "COMPLIANCE_SLACK_CHANNEL": "#mt",
        "COMPLIANCE_SLACK_WEBHOOK_URL": "https://h/x",
    })
    smtp, slack = settings.smtp, settings.slack
    assert (smtp.host, smtp.port, smtp.starttls, smtp.user) == ("smtp.gemeente.example", 465, False, "u")
    assert smtp.password is not None and smtp.password.get_secret_value() == "pw-1"
    assert (settings.digest.sender, settings.digest.to) == ("cm@gemeente.example",
                                                            ["a@gemeente.example", "b@gemeente.example"])
    assert slack.token is not None and slack.token.get_secret_value() == "xoxb-2"
    assert (slack.channel, slack.effective_mode) == ("#mt", "token")
    assert "pw-1" not in repr(settings) and "xoxb-2" not in repr(settings)
    assert "pw-1" not in json.dumps(settings.model_dump(mode="json"))


def test_a_bad_value_from_the_environment_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ComplianceError, match=r"invalid setting from the environment: smtp\.port: Input should be"):
        load_settings(write(tmp_path, ""), environ={"COMPLIANCE_SMTP_PORT": "submission"})


@pytest.mark.parametrize(("text", "message"), [
    ("schedule:\n  default: every now and then\n", "schedule.default: 'now and then' is not a duration"),
    ("digest:\n  cron: '0 8 * *'\n", "digest.cron: '0 8 * *' is not a cron expression (it has 4 fields"),
    ("schedule:\n  default: every 0.5s\n", "schedule.default: an interval must be at least 1 second"),
    ("digest:\n  to: [ciso]\n", "digest.to: 'ciso' is not an e-mail address"),
])
def test_schedules_and_addresses_are_checked(tmp_path: Path, text: str, message: str) -> None:
    from compliance.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as failed:
        load_settings(write(tmp_path, text), environ={})
    assert message in str(failed.value)


# -- translations ---------------------------------------------------------------------------------------

LOCALE = Path(str(files("compliance.notify") / "locale"))
ROOT = Path(__file__).resolve().parents[2]


def entries(catalog: Any) -> dict[Any, Any]:
    def key(value: Any) -> Any:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {key(m.id): key(m.string) for m in catalog if m.id and not m.fuzzy}


def test_the_dutch_catalog_is_complete_and_compiled() -> None:
    """Fails when a text was added without translation, or notify.po was edited without `pybabel compile`
    (the commands are in compliance/notify/babel.cfg)."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    po, mo = (LOCALE / "nl" / "LC_MESSAGES" / f"notify.{ext}" for ext in ("po", "mo"))
    with po.open("rb") as p, mo.open("rb") as m:
        translated = entries(read_po(p))
        assert entries(read_mo(m)) == translated
    with (ROOT / "compliance/notify/babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = {msg[2] if isinstance(msg[2], str) else tuple(msg[2]) for msg in
             extract_from_dir(str(ROOT), method_map, options_map, keywords={"_": None, "n_": (1, 2)})}
    assert found == {k for k, v in translated.items() if v and all(v if isinstance(v, tuple) else [v])}


def test_a_digest_of_a_week_not_over_yet_covers_it_up_to_now(database: Any) -> None:
    """`digest send --week` of this week on a Wednesday: reported up to today, not refused as the future."""
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from compliance.digest import build_digest
    from compliance.report.periods import period_containing
    from compliance.settings import Settings

    settings = Settings.model_validate({"database": {"url": database.url}, "schedule": {"default": None}})
    wednesday = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)
    week = period_containing("week", date(2026, 12, 2))
    digest = build_digest(database, settings, week=week, now=wednesday, lang="en")
    assert digest.week == week
    assert digest.overview.as_of == date(2026, 12, 2) == wednesday.astimezone(ZoneInfo("Europe/Amsterdam")).date()
