"""Ingest on the real path: 100,000 results through the store vs raw executemany. Target: at most 1.5x.

The workload is realistic: 1,000 controls of 100 targets each, about 7 % of the targets failing, so the
findings path (opened on the first scan; kept, resolved and newly opened on the next) runs as in a real
scan. Two scans are timed one after the other on the same database, the first and the next.

Ours: `Store.record_control` per control, as a scan stores them (results inserted, findings and their
changes maintained, control status updated), then `Store.finish_scan`, which commits the last group.
The store commits the controls recorded within 0.1 s together (`compliance.store.ingest`), which keeps
the durability promise: a crash loses at most the controls in flight. Two raw baselines of the same
result rows (JSON-encoded evidence included) with the driver's executemany: one transaction in all, and
one commit per control, so the cost of committing per control is visible beside the cost of the
store's own work. Each variant
gets a fresh copy of the same migrated database; SQLite and PostgreSQL; the target is judged against
the one-transaction baseline.

Run: python bench/bench_ingest.py [--results 100000] [--runs 3] [--no-postgres]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import postgres_available, postgres_database, spread, sqlite_database, verdict

PER_CONTROL = 100
FAILING = 0.07
COLUMNS = ("scan_id", "control_id", "check_index", "plugin", "target", "status", "message", "evidence",
           "started_at", "duration_ms")


def workload(n_results: int, scan: int) -> tuple[list[Any], list[list[Any]]]:
    """The controls and, per control, the outcomes of scan 0 (the first) or 1 (the next)."""
    from compliance.api import Result
    from compliance.catalog import Control
    from compliance.engine import CheckTask, TaskOutcome

    rng = random.Random(7 + scan)
    first = random.Random(7)
    now = datetime.now(UTC)
    controls, outcomes = [], []
    for c in range(n_results // PER_CONTROL):
        cid = f"ING-{c:05d}"
        controls.append(Control.model_validate({
            "id": cid, "title": f"ingest {c}", "theme": "technological", "severity": "low",
            "checks": [{"plugin": "tcp_port", "params": {"host": "h", "port": 1}}]}))
        batch = []
        for t in range(PER_CONTROL):
            was_failing = first.random() < FAILING
            # the next scan: most failing targets still fail, a few are fixed, a few newly fail
            failing = was_failing if scan == 0 else (rng.random() < 0.85 if was_failing else rng.random() < 0.01)
            target = f"host{t}.gemeente.example"
            result = (Result.failed(f"{target}:23", f"Port {target}:23 (telnet) is open; it must be closed.",
                                    open=True, banner="Debian GNU/Linux 12")
                      if failing else
                      Result.passed(f"{target}:23", f"Port {target}:23 (telnet) is closed, as required.", open=False))
            batch.append(TaskOutcome(CheckTask(cid, 0, "tcp_port", {"host": target, "port": 23}, 30), (result,),
                                     now + timedelta(milliseconds=t * 15), 0.012))
        outcomes.append(batch)
    return controls, outcomes


def through_store(url: str, controls: list[Any], scans: list[list[list[Any]]]) -> list[float]:
    from compliance.db import Database
    from compliance.store import Store

    db = Database(url)
    try:
        store = Store(db)
        store.sync_controls(controls)
        times = []
        for outcomes in scans:
            scan_id, _ = store.start_scan("manual")
            state = store.scan_state()
            started = time.perf_counter()
            recorded = [store.record_control(scan_id, control, batch, state)
                        for control, batch in zip(controls, outcomes, strict=True)]
            store.finish_scan(scan_id, "completed", recorded)  # commits the last group, as a scan does
            times.append(time.perf_counter() - started)
        return times
    finally:
        db.close()


def raw_rows(scan_id: int, outcomes: list[Any], dialect: str) -> list[tuple[Any, ...]]:
    rows = []
    for o in outcomes:
        r = o.results[0]
        started = o.started_at.replace(tzinfo=None).isoformat(sep=" ") if dialect == "sqlite" else o.started_at
        rows.append((scan_id, o.task.control_id, o.task.check_index, o.task.plugin, r.target, r.status.value,
                     r.message, json.dumps(r.evidence), started, int(o.duration * 1000)))
    return rows


def raw_executemany(url: str, controls: list[Any], scans: list[list[list[Any]]], per_control: bool) -> list[float]:
    from compliance.db import Database
    from compliance.store import Store

    db = Database(url)
    try:
        store = Store(db)
        store.sync_controls(controls)
        dialect = db.dialect
        placeholder = "?" if dialect == "sqlite" else "%s"
        sql = f"INSERT INTO check_results ({', '.join(COLUMNS)}) VALUES ({', '.join([placeholder] * len(COLUMNS))})"
        times = []
        for outcomes in scans:
            scan_id, _ = store.start_scan("manual")
            conn = db.engine.raw_connection()
            try:
                cursor = conn.cursor()
                started = time.perf_counter()
                if per_control:
                    for batch in outcomes:
                        cursor.executemany(sql, raw_rows(scan_id, batch, dialect))  # encoding is part of the work
                        conn.commit()
                else:
                    cursor.executemany(sql, raw_rows(scan_id, [o for batch in outcomes for o in batch], dialect))
                    conn.commit()
                times.append(time.perf_counter() - started)
            finally:
                conn.close()
        return times
    finally:
        db.close()


def measure(name: str, database: Any, controls: list[Any], scans: list[list[list[Any]]], runs: int) -> bool:
    figures: dict[str, list[list[float]]] = {"store": [], "raw, one transaction": [], "raw, commit per control": []}
    for _ in range(runs):  # alternate, so that noise hits all alike
        with database() as url:
            figures["store"].append(through_store(url, controls, scans))
        with database() as url:
            figures["raw, one transaction"].append(raw_executemany(url, controls, scans, per_control=False))
        with database() as url:
            figures["raw, commit per control"].append(raw_executemany(url, controls, scans, per_control=True))
    n = sum(len(b) for b in scans[0])
    met = True
    for index, label in enumerate(("first scan", "next scan")):
        print(f"{name} {label}:")
        medians = {}
        for variant, runs_times in figures.items():
            values = [t[index] for t in runs_times]
            medians[variant] = statistics.median(values)
            print(f"  {variant:24s} {spread(values, 1.0, 's')} ({n / medians[variant]:,.0f} results/s)")
        ratio = medians["store"] / medians["raw, one transaction"]
        per = medians["store"] / medians["raw, commit per control"]
        print(f"  store / raw one transaction: {ratio:.2f}x (target <= 1.5x): {verdict(ratio <= 1.5)}; "
              f"store / raw commit per control: {per:.2f}x (for information)")
        met &= ratio <= 1.5
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    controls, first = workload(args.results, 0)
    _, following = workload(args.results, 1)
    scans = [first, following]
    failing = sum(o.results[0].status.value == "fail" for batch in first for o in batch)
    print(f"{args.results:,} results in {len(controls):,} controls, {failing / args.results:.1%} failing; "
          f"{args.runs} runs of each variant")
    met = measure("SQLite    ", sqlite_database, controls, scans, args.runs)
    if not args.no_postgres:
        if postgres_available():
            met &= measure("PostgreSQL", postgres_database, controls, scans, args.runs)
        else:
            print("PostgreSQL: not reachable (set COMPLIANCE_TEST_PG_URL); skipped")
            met = False
    print(f"ingest target (<= 1.5x raw, first and next scan): {verdict(met)}")


if __name__ == "__main__":
    main()
