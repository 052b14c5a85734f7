"""Group commits of the store (`compliance.store.ingest`), on SQLite and PostgreSQL: a group that no
control follows is committed by the timer; a control the database refuses does not take the others of
its group with it; the scan counts only what was stored."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import text

from compliance.api import Result
from compliance.catalog import Control
from compliance.db import Database
from compliance.engine import CheckTask, TaskOutcome
from compliance.store import Store


def _control(cid: str) -> Control:
    return Control.model_validate({"id": cid, "title": cid, "theme": "technological", "severity": "low",
                                   "checks": [{"plugin": "tcp_port", "params": {"host": "h", "port": 1}}]})


def _outcomes(cid: str, failing: int = 1) -> list[TaskOutcome]:
    now = datetime.now(UTC)
    return [TaskOutcome(CheckTask(cid, 0, "tcp_port", {"host": f"h{t}", "port": 23}, 30),
                        (Result.failed(f"h{t}", "open") if t < failing else Result.passed(f"h{t}", "shut"),),
                        now, 0.01) for t in range(5)]


def _stored(database: Database, scan_id: int) -> dict[str, int]:
    with database.engine.connect() as connection:
        rows = connection.execute(text("SELECT control_id, count(*) FROM check_results WHERE scan_id = :s "
                                       "GROUP BY control_id"), {"s": scan_id}).all()
    return {r[0]: r[1] for r in rows}


def test_a_group_no_control_follows_is_committed_by_the_timer(database: Database) -> None:
    store = Store(database, commit_interval=0.2)
    store.sync_controls([_control("T-1")])
    scan_id, _ = store.start_scan("manual")
    store.record_control(scan_id, _control("T-1"), _outcomes("T-1"))
    assert _stored(database, scan_id) == {}  # still in its group
    deadline = time.monotonic() + 10
    while not _stored(database, scan_id):
        assert time.monotonic() < deadline, "the timer did not commit the group"
        time.sleep(0.05)
    assert _stored(database, scan_id) == {"T-1": 5}
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM findings WHERE control_id = 'T-1'")).scalar() == 1


def test_a_refused_control_does_not_take_its_group_with_it(database: Database) -> None:
    """Three controls in one group, the middle one never synced (its results break a foreign key): the
    other two are stored, the refusal is raised as SQLAlchemy's error, and the scan counts two."""
    store = Store(database, commit_interval=30)
    store.sync_controls([_control("G-1"), _control("G-3")])
    scan_id, _ = store.start_scan("manual")
    outcomes = [store.record_control(scan_id, _control(cid), _outcomes(cid), None) for cid in ("G-1", "G-2", "G-3")]
    assert _stored(database, scan_id) == {}
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        store.flush()
    assert _stored(database, scan_id) == {"G-1": 5, "G-3": 5}
    store.flush()  # the error was raised once; nothing is left to write
    store.finish_scan(scan_id, "failed", outcomes)
    with database.engine.connect() as connection:
        scan: Any = connection.execute(text("SELECT status, controls_total, results_total FROM scans WHERE id = :s"),
                                       {"s": scan_id}).one()
        findings = connection.execute(text("SELECT control_id FROM findings ORDER BY control_id")).scalars().all()
    assert tuple(scan) == ("failed", 2, 10)
    assert findings == ["G-1", "G-3"]


def test_finish_scan_commits_the_open_group(database: Database) -> None:
    store = Store(database, commit_interval=30)
    controls = [_control(f"F-{i}") for i in range(3)]
    store.sync_controls(controls)
    scan_id, _ = store.start_scan("manual")
    outcomes = [store.record_control(scan_id, c, _outcomes(c.id, failing=0), None) for c in controls]
    assert _stored(database, scan_id) == {}
    store.finish_scan(scan_id, "completed", outcomes)
    assert _stored(database, scan_id) == {"F-0": 5, "F-1": 5, "F-2": 5}


def test_a_control_outcomes_targets_and_results_read_as_tuples() -> None:
    """The lazy sequences of a ControlOutcome equal, hash and index as the tuples they stand for."""
    from compliance.api import Status
    from compliance.store import ScanResults, ScanTargets, TargetOutcome

    targets = ScanTargets([("h1", "fail", "open", False), ("h2", "pass", "shut", True)])
    expected = (TargetOutcome("h1", Status.FAIL, "open", False), TargetOutcome("h2", Status.PASS, "shut", True))
    assert targets == expected and hash(targets) == hash(expected)
    assert targets[1] == expected[1] and targets[-1:] == expected[-1:] and len(targets) == 2
    outcomes = _outcomes("L-1", failing=2)
    results = ScanResults(outcomes)
    assert len(results) == 5
    assert list(results) == [("tcp_port", 0, o.results[0]) for o in outcomes]
    assert results[0][2].status == Status.FAIL and results[4][2].status == Status.PASS
