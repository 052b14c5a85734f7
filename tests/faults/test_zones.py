"""Faults in the zones: a worker killed mid-check, a zone that stops answering, the broker lost mid-scan.

Nothing is lost, nothing is stored twice, and nothing hangs: a check a killed worker held is run again by
another worker of its zone and stored once; what no worker answers becomes an `error` with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import SQLITE_ONLY, Project
from tests.servers import free_port
from tests.zone_workers import BROKERS, Worker, new_zone, wait_for_workers

pytestmark = pytest.mark.faults


def stored_per_target(url: str, scan_id: int) -> dict[str, int]:
    from compliance.db import Database
    from compliance.db.models import CheckResultRow

    db = Database(url)
    try:
        with db.sessions() as session:
            return dict(session.execute(select(CheckResultRow.target, func.count()).where(  # type: ignore[arg-type]
                CheckResultRow.scan_id == scan_id).group_by(CheckResultRow.target)).all())
    finally:
        db.close()


def slow_controls(zone: str, count: int, sleep: float) -> str:
    targets = ", ".join(f"{{name: t{i}, sleep: {sleep}}}" for i in range(count))
    return f"""\
- id: SLOW
  title: Slow checks in one zone
  theme: technological
  severity: low
  zone: {zone}
  timeout: 20s
  checks:
    - plugin: probe
      targets: [{targets}]
"""


@pytest.mark.parametrize("broker", sorted(BROKERS))
def test_a_worker_killed_mid_check_its_checks_run_on_another_and_are_stored_once(
        project: Project, probe_plugin: type, broker: str, tmp_path: Path) -> None:
    url, zone = BROKERS[broker], new_zone("kill")
    first = Worker(url, zone, tmp_path, concurrency=2, redelivery_after=5)
    second = Worker(url, zone, tmp_path, concurrency=2, redelivery_after=5)
    try:
        wait_for_workers(url, zone, 2)
        project.control("c.yaml", slow_controls(zone, 8, 1.5))
        killer = threading.Timer(0.8, lambda: first.process.send_signal(signal.SIGKILL))
        killer.start()
        result = project.run("scan", "--format", "json", env={"COMPLIANCE_BROKER_URL": url})
        killer.join()
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert first.process.wait(5) == -signal.SIGKILL
        assert sorted(r["target"] for r in data["results"]) == [f"t{i}" for i in range(8)]
        assert all(r["status"] == "pass" for r in data["results"]), data["results"]
        # the checks the killed worker held ran again on the other one
        ran_on = {r["evidence"]["ran_on"]["worker"].split("@")[0] for r in data["results"]}
        assert ran_on == {f"{zone}.{second.process.pid}"}
        assert stored_per_target(project.db_url, data["scan_id"]) == {f"t{i}": 1 for i in range(8)}
    finally:
        first.stop()
        second.stop()


@SQLITE_ONLY
def test_a_zone_that_stops_answering_becomes_errors_after_its_patience(project: Project, probe_plugin: type,
                                                                       tmp_path: Path) -> None:
    url, zone = BROKERS["redis"], new_zone("silent")
    worker = Worker(url, zone, tmp_path, concurrency=2)
    try:
        wait_for_workers(url, zone, 1)
        project.write_config("zones:\n  patience: 1s\n  discovery_timeout: 0.3s\n")
        project.control("c.yaml", slow_controls(zone, 4, 3.0).replace("timeout: 20s", "timeout: 5s"))
        # after the scan found the worker and sent the checks: alive for the broker, but it answers nothing
        stopper = threading.Timer(1.2, lambda: worker.process.send_signal(signal.SIGSTOP))
        stopper.start()
        started = time.monotonic()
        result = project.run("scan", "--format", "json", env={"COMPLIANCE_BROKER_URL": url})
        stopper.join()
        assert result.exit_code == 0, result.output
        assert 6 < time.monotonic() - started < 15
        data = json.loads(result.stdout)
        assert data["status"] == "completed"
        assert {r["message"] for r in data["results"]} == {f"no answer from zone {zone} within 6 s"}
        assert {r["status"] for r in data["results"]} == {"error"}
    finally:
        worker.process.send_signal(signal.SIGCONT)
        worker.stop()



@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own, so that it can be stopped mid-scan."""
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (.ci/run installs it)"
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "the test's Redis did not start"
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@SQLITE_ONLY
def test_the_broker_lost_mid_scan_unanswered_checks_become_errors_and_nothing_hangs(
        project: Project, probe_plugin: type, own_redis: tuple[str, Any], tmp_path: Path) -> None:
    url, redis = own_redis
    zone = new_zone("lost")
    worker = Worker(url, zone, tmp_path, concurrency=2)
    try:
        wait_for_workers(url, zone, 1)
        project.write_config("zones:\n  batch: 1\n")  # an answer per check, so that some come before the loss
        project.control("c.yaml", "".join(slow_controls(zone, 1, 1.0).replace("SLOW", f"SLOW-{i}").replace(
            "name: t0", f"name: t{i}") for i in range(6)) + """\
- id: HERE
  title: A local check goes on
  theme: technological
  severity: low
  checks:
    - plugin: probe
      params: {name: here, sleep: 2.5}
""")

        def kill_after_two_answers() -> None:  # each control is stored when answered: kill after the second
            from compliance.db.models import CheckResultRow
            from tests.test_cli import count_rows

            deadline = time.monotonic() + 15
            while count_rows(project.db_url, CheckResultRow) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            redis.kill()

        killer = threading.Thread(target=kill_after_two_answers, daemon=True)
        killer.start()
        started = time.monotonic()
        result = project.run("scan", "--format", "json", env={"COMPLIANCE_BROKER_URL": url})
        assert time.monotonic() - started < 20
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["status"] == "completed"
        rows = {r["target"]: r for r in data["results"]}
        assert rows["here"]["status"] == "pass"
        answered = [t for t in rows if t != "here" and rows[t]["status"] == "pass"]
        lost = [t for t in rows if rows[t]["status"] == "error"]
        assert 2 <= len(answered) <= 4 and len(lost) >= 2 and len(answered) + len(lost) == 6
        assert all(rows[t]["message"].startswith(f"lost the connection to the message broker before zone {zone} "
                                                 "answered: ") for t in lost)
        assert stored_per_target(project.db_url, data["scan_id"]) == {t: 1 for t in rows}
    finally:
        worker.stop()
        if worker.process.poll() is None:
            os.kill(worker.process.pid, signal.SIGKILL)
