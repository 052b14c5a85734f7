"""One organisation's report among 20 vs alone: `compliance report --format json --org CODE`, end to end.

Target (issue 20): the report of one organisation in an install of 20 organisations, each with a year
of history, takes at most 1.2x the same report in an install holding that organisation alone.

Two installs per database kind, made with the installed command (`compliance org rename default
alpha`, `compliance org add` for the others): A holds `alpha` alone; B holds `alpha` in its first
database (with the register of organisations) and 19 more, each in a database of its own (an SQLite
file beside the first, a schema of the same PostgreSQL database), each with the same year of history.
`alpha` is seeded by bench_report's seed with the same random seed in both; B's other organisations
get a copy of its data (made by the database, INSERT ... SELECT, far faster than seeding each; with
--seed-each each is seeded instead, the last one with alpha's seed, the others with seeds of their
own). Three reports of the same data are timed: alpha alone (A), alpha among 20 (B, the first
database) and the last organisation among 20 (B, a database of its own, reached through the
register). bench_report's year (2 M results) twenty times over would not fit this benchmark's time, so
each organisation has the 111 controls on fewer targets (--targets, default 3: 120,516 results a year
and 50 breaches each, 2.4 M results in B); the size used is printed. PostgreSQL is vacuumed and
analysed once seeded, as autovacuum keeps a database in daily use.

Judged: the installed command run as a process, the three cases interleaved run by run (in a rotating
order, so that the machine's noise hits all alike), with a cold file cache on SQLite (every database
file of the install dropped from the page cache before each run); medians and min-max. Each report's
JSON is compared with alpha-alone's: they must be identical (the same data, the same figures), else
the times would not be of the same work. The databases and files are removed afterwards.

Run: python bench/bench_orgs.py [--orgs 20] [--days 365] [--targets 3] [--incidents 50] [--runs 9] [--seed-each]
     [--no-postgres]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_report import CONTROLS, database_for, drop_file_cache, report_command, run_measured, seed
from bench.common import compliance_exe, postgres_available, spread, verdict

TARGET = 1.2
FIRST = "alpha"
SEED = 4  # alpha's (and the last organisation's) random seed; the others get SEED + their number


@dataclass(frozen=True)
class Case:
    label: str
    home: str  # the install's first database (COMPLIANCE_DATABASE_URL)
    code: str
    files: tuple[str, ...]  # every database URL of the install, for dropping SQLite's file cache


def cli(home: str, folder: str, *args: str) -> None:
    """Run the installed command in FOLDER on the install whose first database is HOME."""
    env = report_command(home)[1]
    done = subprocess.run([compliance_exe(), *args], cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"set-up failed: compliance {' '.join(args)}: exit {done.returncode}\n{done.stderr}")


def vacuum(url: str) -> None:
    """VACUUM ANALYZE the whole PostgreSQL database (every schema), as autovacuum keeps one in daily use."""
    from compliance.db import Database

    database = Database(url)
    try:
        if database.dialect == "postgresql":
            with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE")
    finally:
        database.close()


def seed_org(url: str, args: argparse.Namespace, rng_seed: int) -> int:
    return seed(url, args.days, targets=args.targets, incidents=args.incidents, rng_seed=rng_seed, vacuum=False)


def copy_org(source: str, url: str) -> None:
    """Copy the data of the organisation at SOURCE into the (empty) database of another at URL, by the
    database itself: every table but the register of organisations, in the order of foreign keys."""
    from compliance.db import Database, sqlite_file
    from compliance.db.models import Base

    tables = [table for table in Base.metadata.sorted_tables if table.name != "organisations"]
    database = Database(url)
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        file = sqlite_file(source)
        if file is not None:
            raw.commit()  # ATTACH cannot run inside a transaction
            cursor.execute("ATTACH DATABASE ? AS source", (str(file),))
            schema = "source"
        else:
            schema = "public"  # the first database's schema; URL's search_path names the organisation's own
        for table in tables:
            columns = ", ".join(f'"{column.name}"' for column in table.columns)
            cursor.execute(f'INSERT INTO "{table.name}" ({columns}) SELECT {columns} FROM {schema}."{table.name}"')
        if file is None:  # the sequences behind the ids, as the seed's own inserts leave them
            for table in tables:
                for column in table.primary_key.columns:
                    cursor.execute("SELECT pg_get_serial_sequence(current_schema() || '.' || %s, %s)",
                                   (f'"{table.name}"', column.name))
                    row = cursor.fetchone()
                    sequence = row[0] if row else None
                    if sequence is not None:  # an empty table's max is NULL: setval leaves the sequence as is
                        cursor.execute(f'SELECT setval(%s, (SELECT max("{column.name}") FROM "{table.name}"))',
                                       (sequence,))
        raw.commit()
        if file is not None:
            cursor.execute("DETACH DATABASE source")
    finally:
        raw.close()
        database.close()


@contextmanager
def install_alone(kind: str, args: argparse.Namespace, folder: str) -> Iterator[tuple[list[Case], int]]:
    """Install A: alpha alone; its cases and the results seeded."""
    with database_for(kind) as home:
        cli(home, folder, "org", "rename", "default", FIRST, "--name", "Gemeente Alpha")
        results = seed_org(home, args, SEED)
        vacuum(home)
        yield [Case(f"{FIRST} alone", home, FIRST, (home,))], results


@contextmanager
def install_shared(kind: str, args: argparse.Namespace, folder: str) -> Iterator[tuple[list[Case], int]]:
    """Install B: alpha in the first database and args.orgs - 1 more; its cases and the results seeded."""
    from compliance import orgs
    from compliance.db import Database

    with database_for(kind) as home:
        cli(home, folder, "org", "rename", "default", FIRST, "--name", "Gemeente Alpha")
        results = per_org = seed_org(home, args, SEED)
        codes = [f"org-{n:02d}" for n in range(2, args.orgs + 1)]
        for n, code in enumerate(codes, start=2):
            cli(home, folder, "org", "add", code, "--name", f"Gemeente {n:02d}")
        database = Database(home)
        try:
            registered = {org.code: org for org in orgs.registry(database)}
        finally:
            database.close()
        urls = [home]
        for n, code in enumerate(codes, start=2):
            url = orgs.org_url(home, registered[code].location)
            urls.append(url)
            if args.seed_each:
                results += seed_org(url, args, SEED if code == codes[-1] else SEED + n)
            else:
                copy_org(home, url)
                results += per_org
        vacuum(home)
        files = tuple(urls)
        cases = [Case(f"{FIRST} among {args.orgs} (first database)", home, FIRST, files)]
        if codes:
            cases.append(Case(f"{codes[-1]} among {args.orgs} (own database)", home, codes[-1], files))
        yield cases, results


def report_json(case: Case, folder: str) -> Any:
    """The report's JSON (a run that also warms bytecode and the interpreter's files, as in daily use)."""
    argv, env = report_command(case.home, "--org", case.code)
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr[-600:]}")
    return json.loads(done.stdout)


def normalised(report: Any, case: Case) -> str:
    """The report as text without the time it was made, the organisation's code and name put back to alpha's."""
    # the same data: the same JSON but for when it was made and whose it is
    same = {key: value for key, value in report.items() if key not in ("generated_at", "organisation")}
    text = json.dumps(same, sort_keys=True)
    if case.code != FIRST:
        text = text.replace(f"Gemeente {case.code[-2:]}", "Gemeente Alpha").replace(case.code, FIRST)
    return text


def bench(kind: str, args: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        started = time.perf_counter()
        alone, results_a = stack.enter_context(install_alone(kind, args, folder))
        shared, results_b = stack.enter_context(install_shared(kind, args, folder))
        seeded = time.perf_counter() - started
        cases = alone + shared
        how = "each seeded" if args.seed_each else "alpha seeded, the others copies"
        print(f"{kind:10s} A: {FIRST} alone, {results_a:,} results; B: {args.orgs} organisations of "
              f"{results_a:,} results each ({results_b:,} in all; {how}); per organisation {args.days} days x "
              f"{CONTROLS} controls x {args.targets} targets, {args.incidents} breaches (seeded in {seeded:.0f} s)",
              flush=True)
        expected = normalised(report_json(cases[0], folder), cases[0])
        same = True
        for case in cases[1:]:
            if normalised(report_json(case, folder), case) != expected:
                same = False
                print(f"  the report of {case.label} differs from {FIRST} alone's", flush=True)
        times: dict[str, list[float]] = {case.label: [] for case in cases}
        for run in range(args.runs):  # interleaved, in a rotating order, so that noise hits all alike
            for case in cases[run % len(cases):] + cases[:run % len(cases)]:
                argv, env = report_command(case.home, "--org", case.code)
                for url in case.files:
                    drop_file_cache(url)
                seconds, _peak = run_measured(argv, cwd=folder, env=env)
                times[case.label].append(seconds)
    cache = ", cold file cache" if kind == "sqlite" else ""
    print(f"  `compliance report --format json --org CODE`{cache}:", flush=True)
    base = statistics.median(times[cases[0].label])
    met = same
    for case in cases:
        ratio = statistics.median(times[case.label]) / base
        judged = "" if case is cases[0] else f"  {ratio:.2f}x (target <= {TARGET}x): {verdict(ratio <= TARGET)}"
        print(f"  {case.label:34s} {spread(times[case.label])}{judged}", flush=True)
        met &= ratio <= TARGET
    print(f"  reports identical to {FIRST} alone's (the same work timed): {verdict(same)}", flush=True)
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=20, help="organisations in install B (default 20)")
    parser.add_argument("--days", type=int, default=365, help="days of history per organisation (default 365)")
    parser.add_argument("--targets", type=int, default=3, help="targets per control per organisation (default 3)")
    parser.add_argument("--incidents", type=int, default=50, help="breaches per organisation (default 50)")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--seed-each", action="store_true",
                        help="seed every organisation of B with a random seed of its own (slow) instead of copying "
                             "alpha's data into it")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    if args.orgs < 2:
        parser.error("--orgs needs at least 2")
    started = time.perf_counter()
    kinds = ["sqlite"] + ([] if args.no_postgres or not postgres_available() else ["postgresql"])
    met = True
    for kind in kinds:
        met &= bench(kind, args)
    print(f"one organisation among {args.orgs} vs alone (<= {TARGET}x, on {' and '.join(kinds)}): {verdict(met)} "
          f"({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
