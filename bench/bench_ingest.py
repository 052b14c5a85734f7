"""Ingest: 100,000 results through the store vs raw executemany of the same rows. Target: at most 2x.

Ours: `Store.record_control` for 1,000 controls of 100 results each, one transaction per control (as a
scan does), results inserted and findings and control status maintained. Raw: the same rows
(JSON-encoded evidence included) in a single `executemany` on the DB-API connection, one
transaction. Each variant gets a fresh copy of the same migrated database; SQLite and PostgreSQL.

Run: python bench/bench_ingest.py [--results 100000] [--runs 3] [--no-postgres]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import postgres_available, postgres_database, sqlite_database

PER_CONTROL = 100
COLUMNS = ("scan_id", "control_id", "check_index", "plugin", "target", "status", "message", "evidence",
           "started_at", "duration_ms")


def workload(n_results: int) -> tuple[list[Any], list[list[Any]]]:
    from compliance.api import Result
    from compliance.catalog import Control
    from compliance.engine import CheckTask, TaskOutcome

    now = datetime.now(UTC)
    controls, outcomes = [], []
    for c in range(n_results // PER_CONTROL):
        cid = f"ING-{c:05d}"
        controls.append(Control.model_validate({
            "id": cid, "title": f"ingest {c}", "theme": "technological", "severity": "low",
            "checks": [{"plugin": "tcp_port", "params": {"host": "h", "port": 1}}]}))
        outcomes.append([
            TaskOutcome(CheckTask(cid, 0, "tcp_port", {"host": f"host{t}", "port": 22}, 30),
                        (Result.passed(f"host{t}:22", f"Port host{t}:22 is open, as required.", open=True),),
                        now, 0.012)
            for t in range(PER_CONTROL)])
    return controls, outcomes


def through_store(url: str, controls: list[Any], outcomes: list[list[Any]]) -> float:
    from compliance.db import Database
    from compliance.store import Store

    db = Database(url)
    try:
        store = Store(db)
        store.sync_controls(controls)
        scan_id, _ = store.start_scan("manual")
        state = store.scan_state()
        started = time.perf_counter()
        for control, batch in zip(controls, outcomes, strict=True):
            store.record_control(scan_id, control, batch, state)
        return time.perf_counter() - started
    finally:
        db.close()


def raw_rows(scan_id: int, outcomes: list[list[Any]], dialect: str) -> list[tuple[Any, ...]]:
    rows = []
    for batch in outcomes:
        for o in batch:
            r = o.results[0]
            started = o.started_at.replace(tzinfo=None).isoformat(sep=" ") if dialect == "sqlite" else o.started_at
            rows.append((scan_id, o.task.control_id, o.task.check_index, o.task.plugin, r.target, r.status.value,
                         r.message, json.dumps(r.evidence), started, int(o.duration * 1000)))
    return rows


def raw_executemany(url: str, controls: list[Any], outcomes: list[list[Any]]) -> float:
    from compliance.db import Database
    from compliance.store import Store

    db = Database(url)
    try:
        store = Store(db)
        store.sync_controls(controls)
        scan_id, _ = store.start_scan("manual")
        dialect = db.dialect
        placeholder = "?" if dialect == "sqlite" else "%s"
        sql = f"INSERT INTO check_results ({', '.join(COLUMNS)}) VALUES ({', '.join([placeholder] * len(COLUMNS))})"
        conn = db.engine.raw_connection()
        try:
            started = time.perf_counter()
            rows = raw_rows(scan_id, outcomes, dialect)  # encoding the rows is part of the work
            cursor = conn.cursor()
            cursor.executemany(sql, rows)
            conn.commit()
            return time.perf_counter() - started
        finally:
            conn.close()
    finally:
        db.close()


def measure(name: str, database: Any, controls: list[Any], outcomes: list[list[Any]], runs: int) -> None:
    ours, raw = [], []
    for _ in range(runs):
        with database() as url:
            ours.append(through_store(url, controls, outcomes))
        with database() as url:
            raw.append(raw_executemany(url, controls, outcomes))
    m_ours, m_raw = statistics.median(ours), statistics.median(raw)
    n = sum(len(b) for b in outcomes)
    print(f"{name}: store median {m_ours:6.2f} s ({n / m_ours:,.0f} results/s), raw executemany median "
          f"{m_raw:6.2f} s; ratio {m_ours / m_raw:.2f}x (target <= 2x): {'met' if m_ours / m_raw <= 2 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    controls, outcomes = workload(args.results)
    print(f"{args.results:,} results in {len(controls):,} controls, {args.runs} runs each")
    measure("SQLite    ", sqlite_database, controls, outcomes, args.runs)
    if args.no_postgres:
        return
    if not postgres_available():
        print("PostgreSQL: not reachable (set COMPLIANCE_TEST_PG_URL); skipped")
        return
    measure("PostgreSQL", postgres_database, controls, outcomes, args.runs)


if __name__ == "__main__":
    main()
