"""A scan killed (SIGKILL) while it stores its controls in group commits (`compliance.store.ingest`):
every control the store said was stored (`flush`) is there, so is every control recorded longer than
`COMMIT_INTERVAL` before the kill, each whole and once, and the stored controls are the first ones
recorded, in order. SQLite and PostgreSQL, a real process and a real kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
CONTROLS = 600
TARGETS = 20
FLUSH_EVERY = 250  # the child calls Store.flush() after every this many controls

#: The child: records CONTROLS controls of TARGETS results each (every 7th target failing), 10 ms
#: apart, so that a group holds several; prints each control when recorded and each flush when it
#: returned, with the monotonic clock (one clock for both processes on Linux).
CHILD = textwrap.dedent(f"""
    import json, sys, time
    from datetime import UTC, datetime
    from compliance.api import Result
    from compliance.catalog import Control
    from compliance.db import Database
    from compliance.engine import CheckTask, TaskOutcome
    from compliance.store import Store

    store = Store(Database(sys.argv[1]))
    controls = [Control.model_validate({{
        "id": f"K-{{c:04d}}", "title": "k", "theme": "technological", "severity": "low",
        "checks": [{{"plugin": "tcp_port", "params": {{"host": "h", "port": 1}}}}]}}) for c in range({CONTROLS})]
    store.sync_controls(controls)
    scan_id, _ = store.start_scan("manual")
    state = store.scan_state()
    print(json.dumps({{"scan": scan_id}}), flush=True)
    for n, control in enumerate(controls, start=1):
        now = datetime.now(UTC)
        batch = [TaskOutcome(CheckTask(control.id, 0, "tcp_port", {{"host": f"h{{t}}", "port": 23}}, 30),
                             (Result.failed(f"h{{t}}", f"h{{t}} is open", open=True) if t % 7 == 0
                              else Result.passed(f"h{{t}}", f"h{{t}} is closed", open=False),), now, 0.01)
                 for t in range({TARGETS})]
        store.record_control(scan_id, control, batch, state)
        print(json.dumps({{"recorded": control.id, "at": time.monotonic()}}), flush=True)
        if n % {FLUSH_EVERY} == 0:
            store.flush()
            print(json.dumps({{"flushed": n}}), flush=True)
        time.sleep(0.01)
    print(json.dumps({{"done": True}}), flush=True)
""")


def _stored(url: str, scan_id: int) -> tuple[list[tuple[str, int]], dict[str, int], list[tuple[Any, ...]]]:
    """The scan's controls with their result counts (in the order of their first result), the status
    rows of the controls, and the opening changes of the scan per finding."""
    from compliance.db import Database

    database = Database(url)
    try:
        with database.engine.connect() as connection:
            results = connection.execute(text(
                "SELECT control_id, count(*), min(id) FROM check_results WHERE scan_id = :s "
                "GROUP BY control_id ORDER BY min(id)"), {"s": scan_id}).all()
            evaluated = dict(connection.execute(text(
                "SELECT id, count(*) FROM controls WHERE last_evaluated_at IS NOT NULL GROUP BY id")).all())
            openings = connection.execute(text(
                "SELECT f.control_id, f.target, count(*) FROM finding_changes c JOIN findings f ON f.id = c.finding_id "
                "WHERE c.scan_id = :s GROUP BY f.control_id, f.target"), {"s": scan_id}).all()
        return [(r[0], r[1]) for r in results], evaluated, [tuple(r) for r in openings]
    finally:
        database.close()


@pytest.mark.slow
def test_a_scan_killed_while_storing_loses_no_stored_control_and_stores_none_twice(db_url: str) -> None:
    from compliance.store.ingest import COMMIT_INTERVAL

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env, cwd=ROOT)
    recorded: list[tuple[str, float]] = []
    flushed = 0
    scan_id = None
    assert child.stdout is not None
    try:
        for line in child.stdout:
            event = json.loads(line)
            if "scan" in event:
                scan_id = event["scan"]
            elif "recorded" in event:
                recorded.append((event["recorded"], event["at"]))
            elif "flushed" in event:
                flushed = event["flushed"]
            if len(recorded) >= CONTROLS * 2 // 3 + 7:  # mid-scan, between two flushes
                break
        killed_at = time.monotonic()
        os.kill(child.pid, signal.SIGKILL)
        rest, errors = child.communicate(timeout=30)
        # what the child printed before it died: recorded means record_control had returned
        for line in rest.splitlines():
            event = json.loads(line)
            if "recorded" in event:
                recorded.append((event["recorded"], event["at"]))
            elif "flushed" in event:
                flushed = event["flushed"]
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == -signal.SIGKILL, errors
    assert scan_id is not None and flushed >= FLUSH_EVERY and len(recorded) < CONTROLS, (flushed, len(recorded))

    results, evaluated, openings = _stored(db_url, scan_id)
    stored = [control_id for control_id, _ in results]
    order = [control_id for control_id, _ in recorded]
    # whole controls, each once
    assert {count for _, count in results} == {TARGETS}
    assert len(set(stored)) == len(stored)
    # the first controls recorded, in order: a group is committed whole, and groups in order
    assert stored == order[:len(stored)]
    # every control the store said was stored, and every one recorded well before the kill
    assert len(stored) >= flushed
    slack = 1.0  # a loaded machine may run the timer thread late; the bound itself is COMMIT_INTERVAL
    old = [control_id for control_id, at in recorded if at < killed_at - COMMIT_INTERVAL - slack]
    assert len(old) > flushed, "the kill came too early to show the time bound"
    assert set(old) <= set(stored)
    # nothing of a control outside its group's transaction: its status and its findings with its results
    assert set(evaluated) == set(stored)
    assert sorted(openings) == sorted((c, f"h{t}", 1) for c in stored for t in range(0, TARGETS, 7))
