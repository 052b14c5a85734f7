"""History with a retention policy: database size after a simulated year of hourly scans, with and without
`compliance db prune`, and the report's and the ENSIA export's figures before and after pruning.

The workload is scaled down and says so: by default 10 controls over 20 targets (200 results a scan),
scanned every hour for 365 days: 1,752,000 results. The bundled catalog over 200 targets stores 21-70
million a year; the sizes per result measured here are extrapolated to that linearly (the raw results
grow with the number of scans, the rollups with the number of days: a rollup row per day replaces 24
results). About 7 % of the control/target pairs fail for a stretch (an hour to a month, some still open
at the end), a few results are errors; messages and evidence are of realistic size (~400 bytes a result).
The rows are written directly (findings and their changes consistent with the results), not through the
store: the store's speed is bench_ingest.py's subject.

Targets: the report's and the ENSIA export's JSON identical before and after pruning (generated_at aside);
with `history.raw_days: 90` the database at most 35 % of the unpruned size. Sizes on SQLite are of the
file after VACUUM (before VACUUM the freed pages stay in the file and are reused by new results); on
PostgreSQL of the database after VACUUM FULL. The report command is timed end to end before and after
pruning (median and min-max; on SQLite in interleaved runs on a copy of the unpruned file).

Run: python bench/bench_history.py [--days 365] [--controls 10] [--targets 20] [--runs 5] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    compliance_exe,
    postgres_available,
    postgres_database,
    run_measured,
    spread,
    sqlite_database,
    verdict,
)

ZONE = ZoneInfo("Europe/Amsterdam")
YEAR = 2025
FAILING = 0.07
RAW_DAYS = 90
SIZE_TARGET = 0.35
#: The bundled catalog over 200 targets, hourly for a year (issue 18).
REAL_RESULTS = (21_000_000, 70_000_000)
#: The BIO2 measures the simulated controls cover, so the ENSIA export has answers to compare.
MEASURES = ("8.15.01", "8.15.02", "8.15.03", "8.15.04", "5.01.01", "5.01.02", "5.02.01", "5.02.02")


def control_ids(n_controls: int) -> list[str]:
    return [f"HIS-{c:02d}" for c in range(n_controls)]


def seed(url: str, days: int, n_controls: int, n_targets: int) -> int:
    """Write the simulated history; return the number of results."""
    from sqlalchemy import insert

    from compliance.db import Database
    from compliance.db.models import ControlRow, Finding, FindingChange

    rng = random.Random(18)
    start = datetime(YEAR, 1, 1, tzinfo=ZONE).astimezone(UTC)
    hours = days * 24
    controls = control_ids(n_controls)
    targets = [f"www{t}.gemeente.example" for t in range(n_targets)]
    # per control and target: at most one failing stretch (start hour, end hour or None: open at the end)
    stretches: dict[tuple[str, str], tuple[int, int | None]] = {}
    for c in controls:
        for t in targets:
            if rng.random() < FAILING:
                begin = rng.randrange(hours)
                length = rng.choice([1, 5, 30, 24 * 3, 24 * 14, 24 * 30])
                stretches[(c, t)] = (begin, begin + length if begin + length < hours else None)
    database = Database(url)
    now = start + timedelta(hours=hours)
    with database.transaction() as session:
        session.execute(insert(ControlRow), [{
            "id": c, "title": f"Control {c}", "description": "", "theme": "technological", "severity": "high",
            "owner": "CISO", "references": {"bio2": [MEASURES[i % len(MEASURES)]]}, "tags": [], "schedule": "0 * * * *",
            "translations": {}, "content_hash": "0" * 64, "source": "bench", "active": True, "synced_at": start,
            "last_status": None, "last_evaluated_at": None} for i, c in enumerate(controls)])
    total = 0
    last_status: dict[str, str] = {}
    for day in range(days):
        with database.transaction() as session:  # one commit a day: the seeding, not the subject, is fast
            for hour in range(day * 24, day * 24 + 24):
                total += _seed_hour(session, start + timedelta(hours=hour), hour, controls, targets, stretches,
                                    last_status, rng)
    with database.transaction() as session:
        for c in controls:
            session.query(ControlRow).filter(ControlRow.id == c).update(
                {"last_status": last_status[c], "last_evaluated_at": now - timedelta(hours=1) + timedelta(seconds=1)})
        for (c, t), (begin, end) in sorted(stretches.items()):
            opened = start + timedelta(hours=begin, seconds=1)
            resolved = None if end is None else start + timedelta(hours=end, seconds=1)
            finding = Finding(control_id=c, target=t, state="open" if end is None else "resolved",
                              last_status="fail", message=f"Certificate of {t}:443 expires in 9 days (minimum 21).",
                              first_seen=opened, last_seen=resolved or now - timedelta(hours=1), resolved_at=resolved,
                              times_reopened=0)
            session.add(finding)
            session.flush()
            session.add(FindingChange(finding_id=finding.id, from_state=None, to_state="open", at=opened))
            if resolved is not None:
                session.add(FindingChange(finding_id=finding.id, from_state="open", to_state="resolved", at=resolved))
    database.close()
    return total


def _seed_hour(session: Any, at: datetime, hour: int, controls: list[str], targets: list[str],
               stretches: dict[tuple[str, str], tuple[int, int | None]], last_status: dict[str, str],
               rng: random.Random) -> int:
    """One hourly scan of every control on every target."""
    from sqlalchemy import insert

    from compliance.db.models import Scan

    scan_id = session.execute(insert(Scan).returning(Scan.id), [{
        "started_at": at, "finished_at": at + timedelta(seconds=20), "trigger": "schedule",
        "status": "completed", "controls_total": len(controls), "results_total": len(controls) * len(targets),
        "host": "bench", "pid": 1}]).scalar_one()
    rows = []
    moment = at + timedelta(seconds=1)
    sqlite = session.bind.dialect.name == "sqlite"
    # as UTCDateTime stores it: naive UTC text on SQLite, timestamptz on PostgreSQL
    stamp: Any = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else moment
    for c in controls:
        statuses = []
        for t in targets:
            stretch = stretches.get((c, t))
            failing = stretch is not None and stretch[0] <= hour and (stretch[1] is None or hour < stretch[1])
            status = "fail" if failing else "error" if rng.random() < 0.0005 else "pass"
            statuses.append(status)
            message = (f"Certificate of {t}:443 expires in {rng.randrange(5, 20)} days (minimum 21)." if failing
                       else f"Certificate of {t}:443 is valid for {rng.randrange(30, 300)} more days."
                       if status == "pass" else f"{t}:443 did not answer within 10 s.")
            evidence = json.dumps({"subject": f"CN={t}", "issuer": "CN=Sectigo RSA Domain Validation Secure Server CA",
                                   "not_after": (at + timedelta(days=90)).isoformat(), "port": 443,
                                   "chain": ["leaf", "intermediate"]})
            rows.append((scan_id, c, 0, "tls_certificate", t, status, message, evidence, stamp,
                         rng.randrange(20, 400)))
        last_status[c] = next(s for s in ("fail", "error", "pass") if s in statuses or s == "pass")
    # the driver's executemany with the values as the column types store them: seeding is not the subject
    mark = "?" if sqlite else "%s"
    session.connection().exec_driver_sql(
        "INSERT INTO check_results (scan_id, control_id, check_index, plugin, target, status, message, evidence, "
        f"started_at, duration_ms) VALUES ({', '.join([mark] * 10)})", rows)
    return len(rows)


def size(url: str) -> int:
    """The bytes the history takes: the SQLite file after VACUUM; PostgreSQL tables and indexes after VACUUM FULL."""
    from sqlalchemy import create_engine, text

    from compliance.db import sqlite_file

    file = sqlite_file(url)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            if file is not None:
                connection.execute(text("VACUUM"))
                return file.stat().st_size
            connection.execute(text("VACUUM FULL"))
            return int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    finally:
        engine.dispose()


def figures(url: str, as_of: date, n_controls: int) -> list[Any]:
    """The report (weekly, monthly, quarterly) and the ENSIA export of the year, as JSON without generated_at."""
    env = {**os.environ, "COMPLIANCE_DATABASE_URL": url}
    outputs = []
    with tempfile.TemporaryDirectory() as folder:
        # the catalog `ensia export` reads: the same controls, with the measures they cover (JSON is YAML)
        (Path(folder) / "controls").mkdir()
        (Path(folder) / "controls" / "bench.yaml").write_text(json.dumps([{
            "id": c, "title": f"Control {c}", "theme": "technological", "severity": "high",
            "references": {"bio2": [MEASURES[i % len(MEASURES)]]},
            "checks": [{"plugin": "command", "params": {"run": ["true"]}}]}
            for i, c in enumerate(control_ids(n_controls))]))
        for argv in [["report", "--as-of", as_of.isoformat(), "--period", p, "--format", "json", "--lang", "en"]
                     for p in ("week", "month", "quarter")] + [["ensia", "export", "--year", str(YEAR), "--format",
                                                                "json", "--lang", "en"]]:
            done = subprocess.run([compliance_exe(), *argv], cwd=folder, env=env, capture_output=True, check=False)
            if done.returncode not in (0, 1):
                raise RuntimeError(f"compliance {' '.join(argv)} exited {done.returncode}: {done.stderr.decode()}")
            data = json.loads(done.stdout)
            data.pop("generated_at", None)
            outputs.append(data)
    return outputs


def report_times(url: str, as_of: date, runs: int) -> list[float]:
    """`compliance report --format json` end to end, after one warm-up run."""
    env = {**os.environ, "COMPLIANCE_DATABASE_URL": url}
    argv = [compliance_exe(), "report", "--as-of", as_of.isoformat(), "--format", "json"]
    with tempfile.TemporaryDirectory() as folder:
        run_measured(argv, cwd=folder, env=env)
        return [run_measured(argv, cwd=folder, env=env)[0] for _ in range(runs)]


def bench(kind: str, url: str, args: argparse.Namespace) -> bool:
    from compliance.db import Database, sqlite_file
    from compliance.history import prune

    started = time.perf_counter()
    results = seed(url, args.days, args.controls, args.targets)
    print(f"[{kind}] seeded {results:,} results ({args.days} days x 24 scans x {args.controls} controls x "
          f"{args.targets} targets) in {time.perf_counter() - started:.0f} s")
    last_day = date(YEAR, 1, 1) + timedelta(days=args.days - 1)
    as_of = min(last_day, date(YEAR, 12, 31))
    before = figures(url, as_of, args.controls)
    full = size(url)
    # SQLite: a copy of the unpruned file, so the report is timed on both in interleaved runs
    file = sqlite_file(url)
    unpruned = None
    if file is not None:
        copy = file.with_name("unpruned.db")
        shutil.copyfile(file, copy)
        unpruned = f"sqlite:///{copy}"
    else:
        times_before = report_times(url, as_of, args.runs)
    database = Database(url)
    started = time.perf_counter()
    # the day after the simulated year: everything older than raw_days days is rolled up and pruned
    done = prune(database, raw_days=RAW_DAYS, keep=None, zone=ZONE,
                 now=datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=ZONE)
                 + timedelta(hours=3, minutes=30))
    prune_seconds = time.perf_counter() - started
    again = prune(database, raw_days=RAW_DAYS, keep=None, zone=ZONE,
                  now=datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=ZONE)
                  + timedelta(hours=3, minutes=30))
    database.close()
    pruned = size(url)
    after = figures(url, as_of, args.controls)
    if unpruned is not None:
        times_before, times_after = [], []
        for _ in range(args.runs):
            times_before += report_times(unpruned, as_of, 1)
            times_after += report_times(url, as_of, 1)
        how = "interleaved runs on a copy of the unpruned file and the pruned one"
    else:
        times_after = report_times(url, as_of, args.runs)
        how = "runs before, then after pruning (not interleaved)"
    same = after == before
    ratio = pruned / full
    per_result = full / results
    kept_share = pruned / full
    per_day = prune_seconds / max(1, len(done.days_rolled_up))
    print(f"[{kind}] prune (raw_days {RAW_DAYS}): {len(done.days_rolled_up)} days rolled up "
          f"({done.rollups_written:,} rollup rows), {done.results_removed:,} results removed, "
          f"{done.results_kept:,} kept for findings and last results, in {prune_seconds:.1f} s "
          f"({per_day * 1000:.0f} ms a day); "
          f"a second prune removed {again.results_removed} and wrote {again.rollups_written}")
    print(f"[{kind}] size without pruning: {full / 2**20:8.1f} MiB ({per_result:.0f} bytes a result)")
    print(f"[{kind}] size with pruning:    {pruned / 2**20:8.1f} MiB = {ratio:.1%} of it "
          f"(target <= {SIZE_TARGET:.0%}): {verdict(ratio <= SIZE_TARGET)}")
    low, high = REAL_RESULTS
    print(f"[{kind}] extrapolated to the bundled catalog over 200 targets ({low / 1e6:.0f}-{high / 1e6:.0f} M results "
          f"a year): {low * per_result / 2**30:.1f}-{high * per_result / 2**30:.1f} GiB without pruning, "
          f"about {low * per_result * kept_share / 2**30:.1f}-{high * per_result * kept_share / 2**30:.1f} GiB "
          f"with (linear in results; an estimate, not a measurement)")
    print(f"[{kind}] report and ENSIA export identical before and after pruning (target: identical): "
          f"{verdict(same)}")
    print(f"[{kind}] `compliance report --format json` end to end, {how}:")
    print(f"[{kind}] `compliance report --format json` before pruning: {spread(times_before)}")
    print(f"[{kind}] `compliance report --format json` after pruning:  {spread(times_after)}")
    return same and ratio <= SIZE_TARGET


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--controls", type=int, default=10)
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL (COMPLIANCE_TEST_PG_URL)")
    args = parser.parse_args()
    ok = True
    with sqlite_database() as url:
        ok &= bench("sqlite", url, args)
    if args.postgres:
        if not postgres_available():
            print("[postgresql] no server: skipped")
        else:
            with postgres_database() as url:
                ok &= bench("postgresql", url, args)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
