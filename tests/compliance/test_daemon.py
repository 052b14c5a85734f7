"""The daemon as a real process (`compliance schedule run`): killed and restarted, two at once, stopped by
signals, sending the digest and alerts once, and never showing a secret.

Jobs are due every second or two (`schedule.default: every 2s`); the controls use the built-in `command`
plugin, since the daemon is another process than the test.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from compliance.db import Database
from compliance.db.models import CheckResultRow, JobRun, Scan
from tests.compliance.notify_servers import PASSWORD, SLACK_TOKEN, WEBHOOK_PATH, MailServer, SlackServer

SECRETS = {"COMPLIANCE_SMTP_PASSWORD": PASSWORD, "COMPLIANCE_SLACK_TOKEN": SLACK_TOKEN}


class Daemon:
    """`compliance schedule run` in a process of its own, its log in a file."""

    def __init__(self, project: Any, name: str, env: dict[str, str] | None = None, options: Sequence[str] = ()) -> None:
        self.log_path = project.root / f"{name}.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}
        with self.log_path.open("w") as log:  # the process has its own copy of the file
            self.process = subprocess.Popen(
                [sys.executable, "-m", "compliance", "--config", str(project.config), *options, "schedule", "run"],
                cwd=project.root, env={**base, **(env or {})}, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=log)

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 20) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def daemons(project: Any) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(name: str, env: dict[str, str] | None = None, options: Sequence[str] = ()) -> Daemon:
        started.append(Daemon(project, name, env, options))
        return started[-1]

    yield start
    for daemon in started:
        daemon.stop()


def wait_until(condition: Callable[[], Any], timeout: float = 20, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")


def rows(db_url: str, model: Any) -> list[Any]:
    database = Database(db_url)
    try:
        with database.sessions() as session:
            return list(session.scalars(select(model).order_by(model.id)))
    finally:
        database.close()


def control(cid: str, run: str) -> str:
    return (f"- id: {cid}\n  title: Control {cid}\n  theme: technological\n  severity: high\n"
            f"  checks: [{{plugin: command, params: {{run: {run}}}}}]\n")


def test_a_killed_daemon_leaves_no_half_scan_and_loses_no_run(project: Any, daemons: Any) -> None:
    project.control("slow.yaml", control("SLOW-1", '[sleep, "1"]'))
    project.write_config("schedule:\n  default: every 2s\n  lease: 2s\n  stop_grace: 0s\n")
    first = daemons("first")
    in_flight = wait_until(lambda: [s for s in rows(project.db_url, Scan) if s.status == "running"],
                           what="a scan in flight")[0]
    first.signal(signal.SIGKILL)
    first.wait()
    time.sleep(2.5)  # at least one run is missed while no daemon runs

    second = daemons("second")
    wait_until(lambda: "leader" in second.log, what="the second daemon to lead")
    restarted = datetime.now(UTC)
    wait_until(lambda: sum(s.status == "completed" for s in rows(project.db_url, Scan)) >= 2,
               what="the missed run and the next one")
    wait_until(lambda: rows(project.db_url, Scan)[-1].status == "running", what="a scan in flight")
    second.signal(signal.SIGTERM)
    assert second.wait() == 0
    assert "SIGTERM received: stopping" in second.log and second.log.rstrip().endswith("stopped")

    scans = rows(project.db_url, Scan)
    assert [s.id for s in scans if s.status == "interrupted"] == [in_flight.id, scans[-1].id]
    assert all(s.status in ("completed", "interrupted") for s in scans)  # no half scan left running
    runs = rows(project.db_url, JobRun)
    assert [r.scan_id for r in runs] == [s.id for s in scans]  # every run has its scan, none has two
    killed = next(r for r in runs if r.scan_id == in_flight.id)
    assert killed.status == "interrupted" and killed.error.startswith("the daemon running it stopped")
    after = [r for r in runs if r.started_at > restarted - timedelta(seconds=1)]
    # the interrupted and missed runs: once, at once (coalesced), not at the next regular time
    assert (after[0].started_at - restarted).total_seconds() < 1.5
    assert f"job {killed.job_id} was interrupted: running it again now" in second.log
    for before, following in itertools.pairwise(after):
        assert following.started_at >= before.finished_at  # never two at once
        assert (following.scheduled_at - before.scheduled_at).total_seconds() >= 1.9
    assert after[-1].status == "interrupted" and after[-1].error == "abandoned when the daemon stopped"
    results = rows(project.db_url, CheckResultRow)
    completed = [s.id for s in scans if s.status == "completed"]
    assert sorted(r.scan_id for r in results) == completed  # one result per completed scan, none twice


def test_two_daemons_run_each_job_once_and_the_standby_takes_over(project: Any, daemons: Any) -> None:
    project.control("fast.yaml", control("FAST-1", '["true"]'))
    project.write_config("schedule:\n  default: every 1s\n  lease: 2s\n")
    pair = [daemons("one"), daemons("two")]
    wait_until(lambda: len([r for r in rows(project.db_url, JobRun) if r.status == "completed"]) >= 3,
               what="three runs")
    leader, standby = sorted(pair, key=lambda d: "standby:" in d.log)
    assert "leader (" in leader.log and "standby:" in standby.log and "leader (" not in standby.log
    first_holder = rows(project.db_url, JobRun)[0].holder
    assert f"leader ({first_holder})" in leader.log

    leader.signal(signal.SIGKILL)
    leader.wait()
    wait_until(lambda: "leader (" in standby.log, timeout=10, what="the standby to take over")
    wait_until(lambda: len([r for r in rows(project.db_url, JobRun) if r.holder != first_holder
                            and r.status == "completed"]) >= 2, what="two runs by the new leader")
    standby.signal(signal.SIGINT)
    assert standby.wait() == 0
    assert "SIGINT received: stopping" in standby.log

    runs = rows(project.db_url, JobRun)
    assert {r.holder for r in runs} == {first_holder, runs[-1].holder}
    ordered = sorted(runs, key=lambda r: r.scheduled_at)
    for before, following in itertools.pairwise(ordered):
        assert (following.scheduled_at - before.scheduled_at).total_seconds() >= 0.9  # each run once
    scans = rows(project.db_url, Scan)
    assert len(scans) == len(runs) and all(s.status in ("completed", "interrupted") for s in scans)


def test_the_daemon_sends_digest_and_alerts_once_and_shows_no_secret(project: Any, daemons: Any,
                                                                     tmp_path: Path) -> None:
    from compliance.incidents import Draft, Register

    with MailServer(tmp_path) as mail, SlackServer() as slack:
        # Slack fails once with an answer that repeats the token: the error must not keep it
        slack.script.append((500, {"Content-Type": "application/json"},
                             f'{{"ok": false, "error": "invalid_auth for {SLACK_TOKEN}"}}'))
        project.write_config(
            mail.config() + "  cron: every 2s\n"
            f"slack:\n  mode: token\n  channel: '#management'\n  api_url: {slack.api_url}\n"
            "alerts:\n  email: privacy@gemeente.example\n  slack_channel: '#privacy'\n"
            "schedule:\n  default: null\n  alert_interval: 1s\n  retry_backoff: 1s\n  lease: 2s\n")
        database = Database(project.db_url)
        aware = datetime.now(UTC) - timedelta(hours=50)
        breach = Register(database).register(Draft(
            title="Laptop stolen", description="From a car.", occurred_at=aware - timedelta(hours=1), aware_at=aware,
            nature=["confidentiality"], data_categories=["contact"], subjects=3), by="anna").id
        database.close()
        env = {**SECRETS, "COMPLIANCE_SLACK_WEBHOOK_URL": slack.webhook_url}

        first = daemons("first", env)
        wait_until(lambda: len(mail.messages) >= 2 and len(slack.posts()) >= 3, what="digest and alert")
        first.signal(signal.SIGTERM)
        assert first.wait() == 0
        second = daemons("second", env)
        wait_until(lambda: "job digest: next run" in second.log, what="the second daemon")
        time.sleep(3)  # the digest job fires again, the alert check three times
        second.signal(signal.SIGTERM)
        assert second.wait() == 0

        alert, digest = sorted((m["Subject"].strip() for m in mail.messages), key=lambda s: not s.startswith("Data"))
        assert alert.startswith(f"Datalek {breach}: nog 2") and alert.endswith(" uur om te melden bij de AP")
        assert digest.startswith("Compliance-overzicht, week ") and len(mail.messages) == 2
        channels = sorted(p.body["channel"] for p in slack.posts())
    assert "digest 20" in second.log and "already sent earlier, not sent again" in second.log

    from compliance.notify.deliveries import Deliveries

    database = Database(project.db_url)
    attempts = Deliveries(database).attempts()
    [failed] = [a for a in attempts if a.result == "failed"]  # the first Slack message, digest or alert
    channel = "#management" if failed.kind == "digest" else "#privacy"
    assert failed.channel == "slack" and channels == sorted(["#management", "#privacy", channel])
    assert failed.error == f"Slack refused the message for {channel}: HTTP 500, invalid_auth for ***"
    assert sorted((a.kind, a.channel) for a in attempts if a.result == "sent") == [
        ("alert", "email"), ("alert", "slack"), ("digest", "email"), ("digest", "slack")]
    everything = [first.log, second.log, *dump_every_table(database)]
    database.close()
    for secret in (PASSWORD, SLACK_TOKEN, WEBHOOK_PATH):
        assert not [text for text in everything if secret in text], f"{secret} leaked"
    assert "***" in first.log  # the scrubbed error was logged


NO_CHANNEL_WARNINGS = [
    "job digest (weekly digest) is off: no channel is configured for the digest (email: smtp.host is not set "
    "(or COMPLIANCE_SMTP_HOST); slack: no Slack credentials: set COMPLIANCE_SLACK_TOKEN or "
    "COMPLIANCE_SLACK_WEBHOOK_URL)",
    "job notifications (breach deadline alerts and delivery retries) is off: no channel is configured for breach "
    "deadline alerts (email: alerts.email is not set; slack: alerts.slack_channel is not set)"]


@pytest.mark.parametrize(("options", "env", "line"), [
    ([], {}, r"(?P<level>[A-Z]+) (?P<logger>[\w.]+): (?P<message>.*)"),  # auto, stderr a file: no timestamp
    (["--log-format", "text"], {}, r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>[\w.]+): "
                                   r"(?P<message>.*)"),
    ([], {"COMPLIANCE_LOG_FORMAT": "json", "COMPLIANCE_LOG_LEVEL": "warning"}, None),
])
def test_the_daemon_warns_at_start_about_jobs_without_a_channel_in_each_log_format(
        project: Any, daemons: Any, options: list[str], env: dict[str, str], line: str | None) -> None:
    import json
    import re

    project.write_config("schedule:\n  default: null\n  lease: 2s\n")
    daemon = daemons("daemon", env, options)
    wait_until(lambda: "job notifications" in daemon.log or daemon.process.poll() is not None, what="the warnings")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.log
    if line is None:
        records = [json.loads(text) for text in daemon.log.splitlines()]
        assert all(set(r) >= {"time", "level", "logger", "message"} for r in records)
    else:
        records = [re.fullmatch(line, text, re.DOTALL).groupdict() for text in daemon.log.splitlines()]  # type: ignore[union-attr]
        records = [{**r, "level": r["level"].lower()} for r in records]
    assert [r["message"] for r in records if r["level"] == "warning"] == NO_CHANNEL_WARNINGS
    assert {r["logger"] for r in records if r["level"] == "warning"} == {"compliance.scheduler"}
    assert not env or {r["level"] for r in records} == {"warning"}


def dump_every_table(database: Database) -> list[str]:
    """Every value of every row of every table, as text (binary columns such as APScheduler's pickles too)."""
    import sqlalchemy

    texts = []
    with database.engine.connect() as connection:
        for table in sqlalchemy.inspect(connection).get_table_names():
            for row in connection.execute(sqlalchemy.text(f'SELECT * FROM "{table}"')):
                for value in row:
                    texts.append(value.decode("latin-1") if isinstance(value, bytes | memoryview)
                                 and not isinstance(value, memoryview) else
                                 bytes(value).decode("latin-1") if isinstance(value, memoryview) else str(value))
    assert any("apscheduler" in t or "run_digest_job" in t for t in texts)
    return texts


def test_each_organisation_has_its_own_leading_daemon(project: Any, daemons: Any) -> None:
    """Two organisations on one database server (PostgreSQL: a schema each; the advisory lock is per
    database, so its key includes the schema): both daemons lead, each scanning into its own data."""
    from compliance.orgs import org_url, registry

    project.control("fast.yaml", control("FAST-1", '["true"]'))
    project.write_config("schedule:\n  default: every 1s\n  lease: 2s\n")
    assert project.run("org", "add", "zeist", "--name", "Gemeente Zeist").exit_code == 0
    home = Database(project.db_url)
    zeist_url = org_url(project.db_url, next(o.location for o in registry(home) if o.code == "zeist"))
    home.close()
    first, zeist = daemons("default", options=["--org", "default"]), daemons("zeist", options=["--org", "zeist"])
    for url in (project.db_url, zeist_url):
        wait_until(lambda url=url: len([r for r in rows(url, JobRun) if r.status == "completed"]) >= 2,
                   what=f"two runs in {url}")
    assert "leader (" in first.log and "leader (" in zeist.log
    assert "standby:" not in first.log and "standby:" not in zeist.log
