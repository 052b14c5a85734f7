"""Checks in network zones: real `compliance worker` processes on the local Redis and RabbitMQ.

A scan mixes local checks with checks of two zones; each remote check runs only on a worker of its own
zone (the result's evidence names the worker) and is stored centrally like a local one. A zone without a
worker, a worker without the plugin or on another version, a broker that cannot be reached: each is a
clear `error` result or exit 2, never a hang. Killed workers and a lost broker: tests/faults/test_zones.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import SQLITE_ONLY, Project
from tests.zone_workers import BROKERS, Worker, new_zone, wait_for_workers


@pytest.fixture(scope="module", params=sorted(BROKERS))
def zones(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two zones with a worker each (and a third worker on another version), on Redis and on RabbitMQ."""
    url = BROKERS[request.param]
    folder = tmp_path_factory.mktemp("workers")
    a, b, old = new_zone("a"), new_zone("b"), new_zone("old")
    workers = [Worker(url, a, folder), Worker(url, b, folder), Worker(url, old, folder, version="0.0.1")]
    try:
        for w in workers:
            wait_for_workers(url, w.zone, 1)
        yield {"url": url, "broker": request.param, "a": a, "b": b, "old": old, "workers": workers}
    finally:
        for w in workers:
            w.stop()


def controls(a: str, b: str) -> str:
    return f"""\
- id: HERE-01
  title: A check in the scan's own process
  theme: technological
  severity: low
  checks:
    - plugin: probe
      params: {{name: here, outcome: pass}}
- id: ZONE-A
  title: A control whose checks run in zone a
  theme: technological
  severity: high
  zone: {a}
  checks:
    - plugin: probe
      targets: [{{name: web-a1}}, {{name: web-a2, outcome: fail}}]
- id: ZONE-B
  title: Targets of a group that lives in zone b
  theme: technological
  severity: medium
  checks:
    - plugin: probe
      targets: dmz_hosts
- id: MIXED
  title: One check here, one in zone a
  theme: technological
  severity: low
  checks:
    - plugin: probe
      params: {{name: mixed-here}}
    - plugin: probe
      zone: {a}
      params: {{name: mixed-a, sleep: 0.2}}
"""


def scan(project: Project, url: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = project.run("scan", "--format", "json", *args, env={"COMPLIANCE_BROKER_URL": url})
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def test_a_scan_runs_each_check_in_its_zone_and_stores_it_once(project: Project, probe_plugin: type,
                                                               zones: dict[str, Any]) -> None:
    from compliance.db import Database
    from compliance.db.models import CheckResultRow as CheckResult

    a, b = zones["a"], zones["b"]
    project.write_config(f"targets:\n  dmz_hosts: [{{name: db-b1}}, {{name: db-b2}}]\n"
                         f"zones:\n  groups: {{dmz_hosts: {b}}}\n")
    project.control("c.yaml", controls(a, b))
    code, data = scan(project, zones["url"])
    assert code == 1 and data["status"] == "completed"
    rows = {r["target"]: r for r in data["results"]}
    assert set(rows) == {"here", "web-a1", "web-a2", "db-b1", "db-b2", "mixed-here", "mixed-a"}
    where = {t: (r["evidence"].get("ran_on") or {}).get("zone", "local") for t, r in rows.items()}
    assert where == {"here": "local", "mixed-here": "local", "web-a1": a, "web-a2": a, "mixed-a": a,
                     "db-b1": b, "db-b2": b}
    workers = {w.zone: w for w in zones["workers"]}
    for target, zone in where.items():
        if zone != "local":  # the worker that ran it is named, and it is a worker of that zone
            assert rows[target]["evidence"]["ran_on"]["worker"].startswith(workers[zone].name)
    assert rows["web-a2"]["status"] == "fail" and rows["web-a2"]["message"] == "probe web-a2: fail"
    assert all(rows[t]["status"] == "pass" for t in rows if t != "web-a2")
    # a remote failure opens a finding like a local one
    findings = json.loads(project.run("findings", "--format", "json").stdout)
    assert [(f["control"], f["target"]) for f in findings if f["state"] == "open"] == [("ZONE-A", "web-a2")]
    db = Database(project.db_url)
    try:
        with db.sessions() as session:
            stored = session.execute(select(CheckResult.target, func.count()).where(
                CheckResult.scan_id == data["scan_id"]).group_by(CheckResult.target)).all()
    finally:
        db.close()
    assert dict(stored) == {t: 1 for t in rows}  # every check stored exactly once


@SQLITE_ONLY
def test_a_zone_without_a_worker_is_reported_at_once_not_waited_for(project: Project, probe_plugin: type,
                                                                    zones: dict[str, Any]) -> None:
    nobody = new_zone("nobody")
    project.write_config("targets:\n  dmz_hosts: [db-b1]\n")
    project.control("c.yaml", controls(zones["a"], zones["b"]).replace(f"zone: {zones['a']}\n  checks",
                                                                       f"zone: {nobody}\n  checks"))
    started = time.monotonic()
    _, data = scan(project, zones["url"], "--control", "ZONE-A")
    assert time.monotonic() - started < 10
    [first, second] = data["results"]
    assert first["status"] == second["status"] == "error"
    assert first["message"] == f"no worker for zone {nobody}: start one with `compliance worker --zone {nobody}`"


@SQLITE_ONLY
def test_a_worker_without_the_plugin_on_another_version_or_asked_to_run_a_program_gives_an_error(
        project: Project, probe_plugin: type, zones: dict[str, Any]) -> None:
    from compliance import plugins
    from tests.plugins_for_tests import Probe

    class OnlyHere(Probe):
        name = "only_here"

    plugins.register(OnlyHere)
    try:
        project.control("c.yaml", f"""\
- id: MISSING
  title: A plugin the worker does not have
  theme: technological
  severity: low
  zone: {zones['a']}
  checks:
    - plugin: only_here
      params: {{name: x}}
- id: PROGRAM
  title: A program run on a worker started without --allow-command
  theme: technological
  severity: low
  zone: {zones['a']}
  checks:
    - plugin: command
      params: {{run: [touch, /tmp/compliance-test-must-not-exist]}}
- id: OLD
  title: A worker on another version
  theme: technological
  severity: low
  zone: {zones['old']}
  checks:
    - plugin: probe
      params: {{name: y}}
""")
        _, data = scan(project, zones["url"])
    finally:
        plugins.unregister("only_here")
    rows = {r["control"]: r for r in data["results"]}
    missing, old = rows["MISSING"], rows["OLD"]
    assert missing["status"] == "error" and missing["target"] == "x"
    assert missing["message"].startswith("check 'only_here' is not installed on worker a-")
    assert missing["message"].endswith(f"in zone {zones['a']}")
    assert old["status"] == "error" and old["target"] == "y"
    program = rows["PROGRAM"]
    assert program["status"] == "error"
    assert program["message"].startswith("check 'command' runs programs and is refused by worker a-")
    assert program["message"].endswith("start the worker with --allow-command to allow it")
    assert not Path("/tmp/compliance-test-must-not-exist").exists()
    assert "runs compliance 0.0.1, the scan 0.1.0: install the same version on both" in old["message"]


@SQLITE_ONLY
def test_the_broker_cannot_be_reached_or_is_not_configured_exit_2_with_nothing_stored(
        project: Project, probe_plugin: type) -> None:
    from compliance.db.models import Scan
    from tests.test_cli import count_rows

    project.write_config("targets:\n  dmz_hosts: [db-b1]\n")
    project.control("c.yaml", controls("dmz", "dmz"))
    down = project.run("scan", env={"COMPLIANCE_BROKER_URL": "redis://127.0.0.1:9/0"})
    assert down.exit_code == 2, down.output
    assert "cannot reach the message broker at redis://127.0.0.1:9/0" in down.stderr
    unset = project.run("scan", env={"COMPLIANCE_BROKER_URL": ""})
    assert unset.exit_code == 2
    assert "checks in zone dmz run on workers: set COMPLIANCE_BROKER_URL" in unset.stderr
    assert count_rows(project.db_url, Scan) == 0
    # a scan of local controls only needs no broker
    assert project.run("scan", "--control", "HERE-01", env={"COMPLIANCE_BROKER_URL": ""}).exit_code == 0


@SQLITE_ONLY
def test_workers_lists_the_zones_their_workers_and_waiting_checks(project: Project, probe_plugin: type,
                                                                  zones: dict[str, Any]) -> None:
    unmanned = new_zone("unmanned")
    project.write_config(f"targets:\n  dmz_hosts: [db-b1]\nzones:\n  groups: {{dmz_hosts: {unmanned}}}\n")
    project.control("c.yaml", controls(zones["a"], zones["b"]))
    result = project.run("workers", "--format", "json", env={"COMPLIANCE_BROKER_URL": zones["url"]})
    assert result.exit_code == 1, result.output  # a zone the controls use has no worker
    data = json.loads(result.stdout)
    assert "guest:guest" not in data["broker"]  # the password is never shown
    by_zone = {z["zone"]: z for z in data["zones"]}
    assert by_zone[zones["a"]]["configured"] is True and by_zone[zones["a"]]["queued"] == 0
    [worker] = by_zone[zones["a"]]["workers"]
    assert worker["name"].startswith(zones["a"] + ".") and worker["concurrency"] == 8
    assert by_zone[zones["b"]]["configured"] is False  # live, but no control of this project uses it
    assert by_zone[unmanned] == {"zone": unmanned, "configured": True, "queued": 0, "workers": []}
    assert data["zones_without_workers"] == [unmanned]
    table = project.run("workers", env={"COMPLIANCE_BROKER_URL": zones["url"]})
    assert f"no live worker for zone {unmanned}" in table.stderr and zones["a"] in table.stdout


def test_worker_refuses_a_bad_zone_and_a_missing_broker(run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPLIANCE_BROKER_URL", raising=False)
    bad = run_cli("worker", "--zone", "DMZ!")
    assert bad.exit_code == 2 and "'DMZ!' is not a zone name" in bad.stderr
    local = run_cli("worker", "--zone", "local")
    assert local.exit_code == 2 and "zone 'local' is the scan's own process" in local.stderr
    missing = run_cli("worker", "--zone", "dmz")
    assert missing.exit_code == 2 and "set COMPLIANCE_BROKER_URL" in missing.stderr


def test_a_message_to_a_worker_carries_the_checks_not_the_database_or_facts() -> None:
    from compliance.engine import CheckTask
    from compliance.zones import task_message

    task = CheckTask("C", 0, "tcp_port", {"host": "10.0.0.1", "port": 22}, 5.0, facts={"breaches": [1]}, zone="dmz")
    message = task_message([(7, task)], "compliance.reply.x")
    [check] = message["checks"]
    assert check["task"]["params"] == {"host": "10.0.0.1", "port": 22} and "facts" not in check["task"]
    assert check["token"] == 7 and message["reply_to"] == "compliance.reply.x"
    assert "database" not in json.dumps(message) and "postgresql" not in json.dumps(message)


def test_checks_travel_in_messages_of_one_zone_each_of_at_most_eight() -> None:
    from compliance.engine import CheckTask
    from compliance.zones import batches

    tasks = [(i, CheckTask("C", 0, "probe", {}, 5.0, zone="dmz" if i % 3 else "lan")) for i in range(30)]
    sent = batches(tasks)
    assert all(len({t.zone for _, t in batch}) == 1 and 1 <= len(batch) <= 8 for batch in sent)
    assert sorted(token for batch in sent for token, _ in batch) == list(range(30))  # each once
    assert [len(b) for b in sent] == [8, 8, 8, 2, 4]  # 20 of dmz, 10 of lan, in the order sent


def test_a_check_that_needs_the_register_cannot_be_sent_to_a_zone(tmp_path: Path) -> None:
    from compliance.engine import CheckTask
    from compliance.settings import Settings
    from compliance.zones import ZoneExecutor

    executor = ZoneExecutor(Settings(base_dir=tmp_path))
    executor._zones_with_workers = {"dmz": ["dmz.1@host"]}
    executor._url = "redis://127.0.0.1:6379/5"
    [outcome] = list(executor.execute([CheckTask("AVG-01", 0, "breach_register", {}, 5.0, zone="dmz")]))
    assert outcome.results[0].message == ("check 'breach_register' reads the central database and runs only in "
                                          "zone local, not in zone dmz")


def test_the_scheduler_logs_an_unreachable_broker_and_runs_the_job_again_next_time(
        database: Any, probe_plugin: type, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import threading
    from datetime import UTC, datetime, timedelta

    from compliance import scheduler as sched
    from compliance.catalog import Catalog, Control
    from compliance.db.models import JobRun, Scan
    from compliance.settings import Settings

    control = Control.model_validate({"id": "DMZ-01", "title": "In the DMZ", "theme": "technological",
                                      "severity": "high", "zone": "dmz",
                                      "checks": [{"plugin": "probe", "params": {"name": "www"}}]})
    settings = Settings.model_validate({"database": {"url": database.url}, "schedule": {"default": "every 1h"}})
    monkeypatch.setattr(sched, "_runtime", sched._Runtime(settings, Catalog((control,)), database, "test",
                                                          threading.Event()))
    monkeypatch.setenv("COMPLIANCE_BROKER_URL", "redis://127.0.0.1:9/0")
    due = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    sched.run_scan_job(sched.DEFAULT_JOB, scheduled_at=due)
    with database.sessions() as session:
        [run] = session.scalars(select(JobRun)).all()
        assert session.scalars(select(Scan)).all() == []  # nothing started: the broker was checked first
    assert run.status == "failed" and "cannot reach the message broker at redis://127.0.0.1:9/0" in (run.error or "")
    assert f"{sched.DEFAULT_JOB}: the scan did not start: cannot reach the message broker" in caplog.text
    # the next run, with the broker back, runs the job
    monkeypatch.setenv("COMPLIANCE_BROKER_URL", BROKERS["redis"])
    quick = settings.model_copy(update={"zones": settings.zones.model_copy(update={"discovery_timeout": 0.2})})
    monkeypatch.setattr(sched, "_runtime", sched._Runtime(quick, Catalog((control,)), database, "test",
                                                          threading.Event()))
    sched.run_scan_job(sched.DEFAULT_JOB, scheduled_at=due + timedelta(hours=1))
    with database.sessions() as session:
        runs = session.scalars(select(JobRun).order_by(JobRun.scheduled_at)).all()
    assert [r.status for r in runs] == ["failed", "completed"]  # no worker for dmz: an error result, not a crash
