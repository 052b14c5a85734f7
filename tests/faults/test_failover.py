"""A leader that loses its lock while its process lives starts nothing more and finishes nothing (issue 15).

On PostgreSQL the lock connection is ended with `pg_terminate_backend` (as a restart of the server or a
network blip would); on SQLite the leader is paused (SIGSTOP) past its lease, so a standby takes over,
and then resumed. Either way the new leader marks the run in flight `interrupted` and runs it again; the
former leader must not start runs nor overwrite `interrupted` with `completed`: every run is fenced by
the leader epoch it started in.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from compliance import scheduler as sched
from compliance.catalog import Catalog, Control
from compliance.db import Database
from compliance.db.models import JobRun, Scan, SchedulerLock
from compliance.settings import Settings
from tests.compliance.test_daemon import Daemon, control, rows, wait_until
from tests.conftest import POSTGRESQL_ONLY, SQLITE_ONLY

pytestmark = pytest.mark.faults


@pytest.fixture
def daemons(project: Any) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(name: str, options: Sequence[str] = ()) -> Daemon:
        started.append(Daemon(project, name, options=options))
        return started[-1]

    yield start
    for daemon in started:
        daemon.stop()


def terminate_lock_connection(db_url: str) -> int:
    """End the server process of the connection that holds the scheduler's advisory lock; its pid."""
    database = Database(db_url)
    try:
        with database.engine.begin() as connection:
            pid = connection.execute(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            ).scalar_one()
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        return int(pid)
    finally:
        database.close()


def assert_fenced(db_url: str, former: str, lost_at: datetime) -> None:
    """The former leader started no run after lost_at, and no run of its that the new leader interrupted
    ended as completed; every scan of an interrupted run is interrupted too."""
    runs = rows(db_url, JobRun)
    scans = {s.id: s for s in rows(db_url, Scan)}
    assert not [r for r in runs if former in r.holder and r.started_at > lost_at and r.status != "interrupted"]
    taken_over = [r for r in runs if former in r.holder and r.status == "interrupted"]
    assert taken_over, "the run in flight was not taken over"
    for run in taken_over:
        assert run.error.startswith(
            ("the daemon running it stopped", "abandoned when the daemon lost", "not started: the daemon had lost")
        )
        if run.scan_id is not None:
            assert scans[run.scan_id].status == "interrupted"
    new = [r for r in runs if former not in r.holder]
    assert {r.epoch for r in new} == {max(r.epoch for r in runs)}  # the new leader's epoch is the newest
    assert any(r.status == "completed" for r in new)  # and it ran the job again


@pytest.mark.slow
@POSTGRESQL_ONLY  # the advisory lock is PostgreSQL's; test_a_leader_paused_past_its_lease covers SQLite
def test_a_leader_whose_lock_connection_drops_starts_and_finishes_nothing_more(project: Any, daemons: Any) -> None:
    project.control("slow.yaml", control("SLOW-1", '[sleep, "3"]'))
    # a lease of 15 s: the former leader would notice the broken connection only at its renewal (5 s)
    project.write_config("schedule:\n  default: every 1s\n  lease: 15s\n  stop_grace: 30s\n")
    first = daemons("first")
    wait_until(lambda: "leader" in first.log, what="the first daemon to lead")
    second = daemons("second")
    wait_until(lambda: "standby" in second.log, what="the second daemon to wait")
    wait_until(lambda: [s for s in rows(project.db_url, Scan) if s.status == "running"], what="a scan in flight")
    former = rows(project.db_url, JobRun)[-1].holder
    lost_at = datetime.now(UTC)
    terminate_lock_connection(project.db_url)

    assert first.wait(30) == 1
    assert "lost the leader lock" in first.log
    assert "scan 1 ended after this daemon lost the leader lock" in first.log  # not recorded as completed
    wait_until(lambda: "leader" in second.log, what="the second daemon to lead")
    wait_until(
        lambda: any(r.status == "completed" and r.holder != former for r in rows(project.db_url, JobRun)),
        timeout=30,
        what="the new leader to complete a run",
    )
    assert_fenced(project.db_url, former, lost_at)


@pytest.mark.slow
@SQLITE_ONLY  # the lease is SQLite's: a paused PostgreSQL leader keeps its advisory lock
def test_a_leader_paused_past_its_lease_starts_and_finishes_nothing_more(project: Any, daemons: Any) -> None:
    project.control("slow.yaml", control("SLOW-1", '[sleep, "2"]'))
    project.write_config("schedule:\n  default: every 1s\n  lease: 2s\n  stop_grace: 30s\n")
    first = daemons("first")
    wait_until(lambda: [s for s in rows(project.db_url, Scan) if s.status == "running"], what="a scan in flight")
    former = rows(project.db_url, JobRun)[-1].holder
    first.signal(signal.SIGSTOP)  # a hung process, a suspended VM: alive, but its lease runs out
    lost_at = datetime.now(UTC)
    try:
        second = daemons("second")
        wait_until(lambda: "leader" in second.log, what="the second daemon to lead")
        wait_until(
            lambda: any(r.holder != former and r.status == "running" for r in rows(project.db_url, JobRun)),
            what="the new leader to run the job again",
        )
    finally:
        first.signal(signal.SIGCONT)
    assert first.wait(30) == 1
    assert "lost the leader lock" in first.log
    wait_until(
        lambda: any(r.status == "completed" and r.holder != former for r in rows(project.db_url, JobRun)),
        what="the new leader to complete a run",
    )
    assert_fenced(project.db_url, former, lost_at)


# -- the fence itself, in this process, on both databases ------------------------------------------------


def test_a_former_leader_neither_starts_nor_finishes_a_run(database: Any) -> None:
    settings = Settings.model_validate({"database": {"url": database.url}, "schedule": {"lease": "30s"}})
    catalog = Catalog(
        (
            Control.model_validate(
                {
                    "id": "A",
                    "title": "Control A",
                    "theme": "technological",
                    "severity": "high",
                    "checks": [{"plugin": "probe", "params": {}, "targets": [{"name": "t", "outcome": "pass"}]}],
                }
            ),
        )
    )
    first = sched.leader_lock(database, "first", lease=30)
    assert first.acquire() and first.epoch == 1
    old = sched._Runtime(settings, catalog, database, "first", threading.Event(), first)
    due = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    run_id = sched._start_run(old, sched.DEFAULT_JOB, due)
    assert run_id is not None

    if database.dialect == "postgresql":
        terminate_lock_connection(database.url)
    else:  # the lease ran out while the leader hung
        with database.transaction() as session:
            session.get_one(SchedulerLock, sched.LOCK_NAME).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    time.sleep(0.2)
    second = sched.leader_lock(database, "second", lease=30)
    assert second.acquire() and second.epoch == 2
    assert sched.recover(database, "second", grace=10**9) == [sched.DEFAULT_JOB]

    assert sched._finish_run(old, run_id, "completed") is False  # does not overwrite `interrupted`
    assert sched._start_run(old, sched.DEFAULT_JOB, due + timedelta(hours=1)) is None  # starts nothing
    assert old.lost.is_set()
    with database.sessions() as session:
        runs = session.scalars(select(JobRun).order_by(JobRun.id)).all()
        assert [(r.status, r.epoch) for r in runs] == [("interrupted", 1), ("interrupted", 1)]
        assert runs[1].error == "not started: the daemon had lost the leader lock"
        assert session.get_one(SchedulerLock, sched.LOCK_NAME).holder == "second"
    assert not first.renew()
    second.release()
    first.release()
