"""Helpers shared by the benchmarks: fresh databases and settings."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PG_ADMIN_URL = os.environ.get("COMPLIANCE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def sqlite_database() -> Iterator[str]:
    """A migrated SQLite file in a temporary folder."""
    from compliance import db

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        db.upgrade(url)
        yield url


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh migrated PostgreSQL database, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    from compliance import db

    admin = make_url(PG_ADMIN_URL)
    name = f"cm_bench_{uuid.uuid4().hex[:8]}"
    params = {"host": admin.host, "port": admin.port or 5432, "user": admin.username, "password": admin.password,
              "dbname": admin.database or "postgres", "autocommit": True}
    with psycopg.connect(**params) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    try:
        db.upgrade(url)
        yield url
    finally:
        with psycopg.connect(**params) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_available() -> bool:
    try:
        import psycopg
        from sqlalchemy.engine import make_url

        admin = make_url(PG_ADMIN_URL)
        psycopg.connect(host=admin.host, port=admin.port or 5432, user=admin.username, password=admin.password,
                        dbname=admin.database or "postgres", connect_timeout=3).close()
        return True
    except Exception:
        return False


def timed_scan(controls: list[Any], concurrency: int, settings: dict[str, Any] | None = None) -> tuple[float, Any]:
    """Scan controls through the real engine into a fresh SQLite store; the seconds and the ScanReport."""
    import time

    from compliance.db import Database
    from compliance.engine import ThreadExecutor, run_scan
    from compliance.settings import Settings
    from compliance.store import Store

    with sqlite_database() as url:
        config = {**(settings or {}), "database": {"url": url}}
        config["scan"] = {**config.get("scan", {}), "concurrency": concurrency}
        db = Database(url)
        try:
            started = time.perf_counter()
            report = run_scan(controls, Settings.model_validate(config), Store(db),
                              executor=ThreadExecutor(concurrency))
            return time.perf_counter() - started, report
        finally:
            db.close()


# -- running installed commands and judging figures ------------------------------------------------------


def compliance_exe() -> str:
    """The installed `compliance` command beside this Python (the venv's), else the one on PATH."""
    import shutil

    return shutil.which("compliance", path=str(Path(__import__("sys").executable).parent)) or "compliance"


def run_measured(argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
                 check: bool = True) -> tuple[float, float]:
    """Run a command to its end; its wall-clock seconds and its peak resident memory in MiB (from wait4)."""
    import subprocess
    import time

    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    stderr = process.stderr.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stderr.close()
    if check and process.returncode not in (0, 1):  # 1: a control failed, which is a result, not a fault
        raise RuntimeError(f"{' '.join(argv)} exited {process.returncode}: {stderr.decode(errors='replace')[-500:]}")
    return seconds, usage.ru_maxrss / 1024  # Linux reports KiB


def instructions(argv: list[str], cwd: str, env: dict[str, str]) -> float:
    """The instructions one run of argv executes, counted by callgrind (valgrind)."""
    import re
    import shutil
    import subprocess
    import sys

    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    if Path(argv[0]).name == "compliance":  # the console script is a Python file: count its interpreter's work
        shebang = Path(argv[0]).read_text("utf-8").splitlines()[0].removeprefix("#!").strip()
        argv = [shebang or sys.executable, argv[0], *argv[1:]]
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv], cwd=cwd,
                          env=env, capture_output=True, text=True)
    match = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if match is None:
        raise SystemExit(f"callgrind gave no count for {' '.join(argv)}:\n{done.stderr[-2000:]}")
    return float(match.group(1))


def spread(values: list[float], scale: float = 1000.0, unit: str = "ms") -> str:
    """'median 123.4 ms (min-max 120.1-130.9, 15 runs)'."""
    import statistics

    return (f"median {statistics.median(values) * scale:7.1f} {unit} (min-max {min(values) * scale:.1f}-"
            f"{max(values) * scale:.1f}, {len(values)} runs)")


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"
