"""The scheduler in this process: schedules, the jobs synced from the configuration, catching up missed
runs, leader locks, recovery after a crash, and `compliance schedule list`. The daemon as a separate
process (SIGKILL, two daemons) is in test_daemon.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from compliance import scheduler as sched
from compliance.catalog import Catalog, Control
from compliance.db.models import JobRun, Scan
from compliance.settings import Settings

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def control(cid: str, schedule: str | None = None, outcome: str = "pass") -> Control:
    return Control.model_validate({
        "id": cid, "title": f"Control {cid}", "theme": "technological", "severity": "high", "schedule": schedule,
        "checks": [{"plugin": "probe", "params": {}, "targets": [{"name": "t", "outcome": outcome}]}]})


def settings_for(database: Any, **schedule: Any) -> Settings:
    return Settings.model_validate({"database": {"url": database.url}, "schedule": schedule})


def count(database: Any, model: Any, *where: Any) -> int:
    with database.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_the_jobs_follow_the_catalog_and_the_channels(tmp_path: Any) -> None:
    catalog = Catalog((control("A", "0 3 * * *"), control("B"), control("C"),
                       control("D").model_copy(update={"enabled": False})))
    settings = Settings.model_validate({"schedule": {"default": "0 2 * * *", "alert_interval": "2m"}})
    assert [(j.id, j.schedule, j.controls, j.enabled) for j in sched.planned_jobs(settings, catalog)] == [
        ("control:A", "0 3 * * *", ("A",), True), ("controls:default", "0 2 * * *", ("B", "C"), True),
        ("digest", "0 8 * * mon", (), False), ("notifications", "every 120s", (), False),
        ("history:prune", "30 3 * * *", (), True)]
    mail = Settings.model_validate({
        "schedule": {"default": None, "alert_interval": "2m"},
        "smtp": {"host": "mail.example"}, "digest": {"from": "cm@example.org", "to": ["ciso@example.org"]}})
    assert [(j.id, j.schedule, j.enabled) for j in sched.planned_jobs(mail, catalog)] == [
        ("control:A", "0 3 * * *", True), ("digest", "0 8 * * mon", True), ("notifications", "every 120s", True),
        ("history:prune", "30 3 * * *", True)]


NO_DIGEST = ("no channel is configured for the digest (email: smtp.host is not set (or COMPLIANCE_SMTP_HOST); "
             "slack: no Slack credentials: set COMPLIANCE_SLACK_TOKEN or COMPLIANCE_SLACK_WEBHOOK_URL)")
NO_ALERTS = ("no channel is configured for breach deadline alerts (email: alerts.email is not set; "
             "slack: alerts.slack_channel is not set)")
NO_RECIPIENTS = ("no channel is configured for the digest (email: digest.to, the recipients, is not set (or "
                 "COMPLIANCE_DIGEST_TO); slack: no Slack credentials: set COMPLIANCE_SLACK_TOKEN or "
                 "COMPLIANCE_SLACK_WEBHOOK_URL)")
MAIL = {"smtp": {"host": "mail.example"}, "digest": {"from": "cm@example.org", "to": ["ciso@example.org"]}}


@pytest.mark.parametrize(("config", "off", "warnings"), [
    ({}, {"digest": NO_DIGEST, "notifications": NO_ALERTS},
     [f"job digest (weekly digest) is off: {NO_DIGEST}",
      f"job notifications (breach deadline alerts and delivery retries) is off: {NO_ALERTS}"]),
    (MAIL, {}, [f"breach deadline alerts are off: {NO_ALERTS}"]),  # the job runs for the digest's retries
    ({**MAIL, "alerts": {"email": ["fg@example.org"]}}, {}, []),
    ({"smtp": {"host": "mail.example"}, "digest": {"from": "cm@example.org"}, "alerts": {"email": ["fg@example.org"]}},
     {"digest": NO_RECIPIENTS}, [f"job digest (weekly digest) is off: {NO_RECIPIENTS}"]),
])
def test_jobs_without_a_channel_are_off_with_why_and_warned_about(config: dict[str, Any], off: dict[str, str],
                                                                  warnings: list[str],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.model_validate({"schedule": {"default": None}, **config})
    planned = sched.planned_jobs(settings, Catalog(()))
    assert {j.id: j.why_off for j in planned if not j.enabled} == off
    with caplog.at_level("WARNING", logger="compliance.scheduler"):
        sched.warn_about_off_jobs(planned, settings)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("WARNING", w) for w in warnings]


def test_jobs_that_are_off_are_not_stored(database: Any, job_scheduler: Any) -> None:
    settings = settings_for(database, default="every 1h")
    scheduler = job_scheduler()
    sched.sync_jobs(scheduler, sched.planned_jobs(settings, Catalog((control("A"),))), settings)
    assert sorted(job.id for job in scheduler.get_jobs()) == ["controls:default", "history:prune"]


@pytest.fixture
def job_scheduler(database: Any) -> Iterator[Any]:
    """Opens a paused scheduler on the database's job store, as the daemon does; closes it after."""
    opened: list[Any] = []

    def open_() -> Any:
        s = sched.make_scheduler(database, settings_for(database))
        s.start(paused=True)
        opened.append(s)
        return s

    yield open_
    for s in opened:
        if s.running:
            s.shutdown(wait=False)


def test_a_restart_adds_reschedules_and_removes_jobs_and_keeps_unchanged_ones(database: Any,
                                                                               job_scheduler: Any) -> None:
    settings = settings_for(database, default="every 1h")
    before = Catalog((control("A", "0 3 * * *"), control("B", "0 5 * * *"), control("C")))
    first = job_scheduler()
    sched.sync_jobs(first, sched.planned_jobs(settings, before), settings)
    missed = datetime(2026, 1, 1, 5, 0, tzinfo=AMSTERDAM)  # as if the daemon was down since then
    first.modify_job("control:B", next_run_time=missed)
    first.shutdown(wait=False)

    after = Catalog((control("A", "30 4 * * *"), control("B", "0 5 * * *"), control("E", "0 6 * * *")))
    second = job_scheduler()
    sched.sync_jobs(second, sched.planned_jobs(settings, after), settings)
    jobs = {job.id: job for job in second.get_jobs()}
    assert sorted(jobs) == ["control:A", "control:B", "control:E", "history:prune"]
    assert (jobs["control:A"].next_run_time.hour, jobs["control:A"].next_run_time.minute) == (4, 30)
    assert jobs["control:B"].next_run_time == missed  # unchanged: the missed run is still due
    assert jobs["control:E"].args == ("control:E",) and jobs["control:E"].misfire_grace_time == 12 * 3600
    assert jobs["control:E"].coalesce and jobs["control:E"].max_instances == 1


def run_daemon(daemon: sched.Daemon, until: Any, timeout: float = 10) -> None:
    """Run the daemon in a thread until `until()` holds (or timeout), then stop it."""
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        daemon.stop.set()
        thread.join(15)
    assert not thread.is_alive()


def started(daemon: sched.Daemon) -> Any:
    return lambda: daemon.scheduler is not None and daemon.scheduler.state == 1  # STATE_RUNNING


def set_next_run(database: Any, job_scheduler: Any, job_id: str, when: datetime) -> None:
    store = job_scheduler()
    store.modify_job(job_id, next_run_time=when)
    store.shutdown(wait=False)


@pytest.mark.parametrize(("interval", "missed_since", "runs"), [
    ("every 2m", timedelta(minutes=7), 1),  # four runs missed, all within the grace: one run on start
    ("every 1h", timedelta(minutes=30), 0),  # missed by more than the grace: not run
])
def test_runs_missed_while_down_run_once_on_start_within_the_grace(
        database: Any, probe_plugin: type, job_scheduler: Any, interval: str, missed_since: timedelta,
        runs: int) -> None:
    settings = settings_for(database, default=interval, misfire_grace="10m", lease="3s")
    catalog = Catalog((control("A"),))
    first = sched.Daemon(settings, catalog, database)
    run_daemon(first, started(first))
    set_next_run(database, job_scheduler, sched.DEFAULT_JOB, datetime.now(UTC) - missed_since)

    again = sched.Daemon(settings, catalog, database)
    run_daemon(again, lambda: count(database, Scan, Scan.status == "completed") >= 1, timeout=2 if runs == 0 else 10)
    assert count(database, JobRun) == runs
    assert count(database, Scan) == runs


def test_the_same_scheduled_run_never_runs_twice(database: Any, probe_plugin: type,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(database, default="every 1h")
    runtime = sched._Runtime(settings, Catalog((control("A"),)), database, "test", threading.Event())
    monkeypatch.setattr(sched, "_runtime", runtime)
    due = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    sched.run_scan_job(sched.DEFAULT_JOB, scheduled_at=due)
    sched.run_scan_job(sched.DEFAULT_JOB, scheduled_at=due)  # e.g. a second leader with the same job store
    with database.sessions() as session:
        [run] = session.scalars(select(JobRun)).all()
        [scan] = session.scalars(select(Scan)).all()
    assert (run.job_id, run.scheduled_at, run.status, run.scan_id) == (sched.DEFAULT_JOB, due, "completed", scan.id)
    assert (scan.status, scan.trigger) == ("completed", "schedule")


def test_a_new_leader_marks_what_a_dead_one_left_running_and_runs_it_again(database: Any, store: Any) -> None:
    from compliance.db.models import JobRun

    scan_id, _ = store.start_scan("schedule")
    manual_id, _ = store.start_scan("manual")  # `compliance scan` may still be running: left alone
    now = datetime.now(UTC)
    with database.transaction() as session:
        session.add(JobRun(job_id="control:A", scheduled_at=now - timedelta(minutes=1), started_at=now,
                           status="running", holder="old pid 1", scan_id=scan_id))
        session.add(JobRun(job_id="control:B", scheduled_at=now - timedelta(minutes=1), started_at=now,
                           status="completed", holder="old pid 1"))
    assert sched.recover(database, "new", grace=3600) == ["control:A"]
    with database.sessions() as session:
        assert session.get_one(Scan, scan_id).status == "interrupted"
        assert session.get_one(Scan, manual_id).status == "running"
        run = session.scalar(select(JobRun).where(JobRun.job_id == "control:A"))
        assert run is not None and (run.status, run.error) == ("interrupted", "the daemon running it stopped "
                                                                              "(old pid 1)")


def test_one_leader_at_a_time(database: Any) -> None:
    first = sched.leader_lock(database, "first", lease=30)
    second = sched.leader_lock(database, "second", lease=30)
    assert first.acquire() and not second.acquire()
    assert first.renew()
    leader = sched.current_leader(database)
    assert leader is not None and leader.holder == "first" and leader.alive()
    first.release()
    assert second.acquire() and not first.acquire()
    second.release()


def test_on_sqlite_a_lease_that_ran_out_passes_to_the_standby(tmp_path: Any, sqlite_template: Any) -> None:
    import shutil

    from compliance.db import Database

    shutil.copy(sqlite_template, tmp_path / "c.db")
    database = Database(f"sqlite:///{tmp_path / 'c.db'}")
    first = sched.leader_lock(database, "first", lease=0.3)
    second = sched.leader_lock(database, "second", lease=0.3)
    assert first.acquire() and not second.acquire()
    time.sleep(0.4)  # the first stopped renewing (it hangs, or was killed)
    assert second.acquire()
    assert not first.renew()  # the first learns it lost, and stops its jobs
    database.close()


# -- compliance schedule list ------------------------------------------------------------------------------

CONTROLS = """\
- id: OWN-1
  title: Own schedule
  theme: technological
  severity: low
  schedule: "15 4 * * *"
  checks: [{plugin: command, params: {run: ["true"]}}]
- id: DEF-1
  title: On the default
  theme: technological
  severity: low
  checks: [{plugin: command, params: {run: ["true"]}}]
"""


def test_schedule_list_shows_every_job_and_its_next_run(project: Any) -> None:
    import json

    project.control("c.yaml", CONTROLS)
    project.write_config("schedule:\n  default: '0 2 * * *'\n")
    result = project.run("schedule", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert listed["leader"] is None
    jobs = {j["id"]: j for j in listed["jobs"]}
    assert sorted(jobs) == ["control:OWN-1", "controls:default", "digest", "history:prune", "notifications"]
    assert [i for i, j in jobs.items() if j["enabled"]] == ["control:OWN-1", "controls:default", "history:prune"]
    assert jobs["controls:default"]["controls"] == ["DEF-1"] and jobs["controls:default"]["schedule"] == "0 2 * * *"
    nxt = datetime.fromisoformat(jobs["control:OWN-1"]["next_run"]).astimezone(AMSTERDAM)
    assert (nxt.hour, nxt.minute, jobs["control:OWN-1"]["stored"]) == (4, 15, False)

    table = project.run("schedule", "list")
    assert "control:OWN-1" in table.output and "(not started)" in table.output
    assert "no daemon has run on this database yet" in table.output


def test_schedule_list_shows_the_digest_and_alerts_as_off_without_a_channel(project: Any) -> None:
    import json

    project.write_config("schedule:\n  default: null\n  alert_interval: 1m\n")
    result = project.run("schedule", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    jobs = {j["id"]: j for j in json.loads(result.stdout)["jobs"]}
    assert {i: (j["enabled"], j["reason"], j["schedule"], j["next_run"]) for i, j in jobs.items()
            if i != "history:prune"} == {
        "digest": (False, NO_DIGEST, "0 8 * * mon", None), "notifications": (False, NO_ALERTS, "every 60s", None)}
    table = project.run("schedule", "list").stdout
    assert "off: no channel is configured for the digest" in " ".join(table.split())
    assert "off: no channel is configured for breach deadline alerts" in " ".join(table.split())
