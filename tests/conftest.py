"""Shared fixtures: databases on SQLite and on the real PostgreSQL server, projects, the CLI.

Every test that takes `db_url` (or `project`, `store`) runs twice: on an SQLite file and on a fresh
PostgreSQL database. The PostgreSQL server comes from COMPLIANCE_TEST_PG_URL (an admin URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres). When it cannot be reached the PostgreSQL tests
are skipped, unless COMPLIANCE_REQUIRE_PG=1 (as in CI), where they fail.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

PG_ADMIN_URL = os.environ.get("COMPLIANCE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

# The commands keep the validated configuration in a cache (compliance.cache); the tests use one of their
# own, removed at the end, instead of the user's ~/.cache (the commands they run exercise it as users do).
_TEST_CACHE = tempfile.mkdtemp(prefix="compliance-test-cache-")
os.environ["COMPLIANCE_CACHE_DIR"] = _TEST_CACHE


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_TEST_CACHE, ignore_errors=True)
REQUIRE_PG = os.environ.get("COMPLIANCE_REQUIRE_PG") == "1"
_counter = itertools.count()


def _pg_connect(dbname: str | None = None) -> Any:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(PG_ADMIN_URL)
    return psycopg.connect(host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username or "postgres",
                           password=url.password, dbname=dbname or url.database or "postgres",
                           autocommit=True, connect_timeout=5)


def pg_url(dbname: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=dbname).render_as_string(
        hide_password=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from compliance import db

    path = tmp_path_factory.mktemp("template") / "template.db"
    db.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database that each test copies (CREATE DATABASE ... TEMPLATE)."""
    try:
        conn = _pg_connect()
    except Exception as exc:
        message = f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}"
        if REQUIRE_PG:
            pytest.fail(message + " (COMPLIANCE_REQUIRE_PG=1)")
        pytest.skip(message)
    name = f"cm_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    from compliance import db

    db.upgrade(pg_url(name))
    yield name
    with _pg_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def local_today() -> Any:
    """Today in Europe/Amsterdam, the zone the monitor's days are counted in: not the machine's date,
    which differs between 23:00 and 01:00 UTC."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Europe/Amsterdam")).date()


#: For a test that is about one database only (an SQLite file, PostgreSQL's advisory lock): parametrizes the
#: `db_url` fixture, which `database`, `store` and `project` use, with that database alone, so the test is
#: neither run nor skipped on the other.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
POSTGRESQL_ONLY = pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                                          indirect=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh database at the current schema, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "compliance.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"cm_test_{os.getpid()}_{next(_counter)}"
    with _pg_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield pg_url(name)
    with _pg_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database(db_url: str) -> Iterator[Any]:
    from compliance.db import Database

    database = Database(db_url)
    yield database
    database.close()


@pytest.fixture
def store(database: Any) -> Any:
    from zoneinfo import ZoneInfo

    from compliance.store import Store

    return Store(database, ZoneInfo("Europe/Amsterdam"))


class Project:
    """A monitor folder for a test: compliance.yaml, controls/ and the database, plus a CLI runner."""

    def __init__(self, root: Path, db_url: str) -> None:
        self.root = root
        self.db_url = db_url
        self.controls = root / "controls"
        self.controls.mkdir(exist_ok=True)
        self.config = root / "compliance.yaml"
        self.write_config()

    def write_config(self, extra: str = "") -> None:
        self.config.write_text(f"database:\n  url: {self.db_url}\ncontrols:\n  paths: [controls]\n{extra}",
                               encoding="utf-8")

    def control(self, name: str, text: str) -> Path:
        path = self.controls / name
        path.write_text(text, encoding="utf-8")
        return path

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        from compliance.cli import cli

        runner = CliRunner()
        return runner.invoke(cli, ["--config", str(self.config), *args], env=env, catch_exceptions=False)

    def settings(self) -> Any:
        from compliance.settings import load_settings

        return load_settings(str(self.config), environ={})


@pytest.fixture
def project(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A monitor folder (the working directory during the test) on SQLite and on PostgreSQL."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COMPLIANCE_DATABASE_URL", raising=False)
    monkeypatch.delenv("COMPLIANCE_CONFIG", raising=False)
    return Project(tmp_path, db_url)


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run the CLI without a project (e.g. for --help or config errors)."""
    monkeypatch.delenv("COMPLIANCE_DATABASE_URL", raising=False)
    monkeypatch.delenv("COMPLIANCE_CONFIG", raising=False)

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        from compliance.cli import cli

        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return run


@pytest.fixture
def probe_plugin() -> Iterator[type]:
    """The `probe` test plugin, registered in this process for the duration of a test."""
    from compliance import plugins
    from tests.plugins_for_tests import RELEASE, Probe

    RELEASE.clear()
    plugins.register(Probe)
    yield Probe
    RELEASE.set()
    plugins.unregister("probe")
    from compliance.engine import abandoned_checks

    deadline = time.monotonic() + 5
    while abandoned_checks() and time.monotonic() < deadline:  # a hang released ends before the next test
        time.sleep(0.01)
