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
