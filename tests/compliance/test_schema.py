"""The schema as Core tables (issue 18): read-only commands start without importing the ORM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from typing import Any

from tests.conftest import Project


def _orm_modules_after(code: str, cwd: str | None = None) -> list[str]:
    """The sqlalchemy.orm modules a fresh interpreter holds after running code (which prints nothing)."""
    script = code + "\nimport sys\nprint(sorted(m for m in sys.modules if m.startswith('sqlalchemy.orm')))\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    modules: list[str] = json.loads(result.stdout.strip().replace("'", '"'))
    return modules


def test_the_schema_imports_without_the_orm() -> None:
    assert _orm_modules_after("import compliance.db.schema") == []


def test_the_models_are_mapped_onto_the_schemas_tables() -> None:
    from sqlalchemy import Table

    from compliance.db import models, schema

    assert models.Base.metadata is schema.metadata
    mappers = models.Base.registry.mappers
    assert {mapper.local_table for mapper in mappers} == set(schema.metadata.tables.values())
    for mapper in mappers:
        table = mapper.local_table
        assert isinstance(table, Table) and table is getattr(schema, table.name), mapper.class_.__name__
        # the annotations type the mapped attributes: each names a column, and every column has one
        annotated = set(mapper.class_.__annotations__)
        assert annotated == set(table.columns.keys()), mapper.class_.__name__


def test_opening_an_organisations_database_does_not_import_the_orm(project: Project) -> None:
    """What every command does first: read the register, choose the organisation, check its database."""
    from tests.compliance.test_orgs import two_orgs

    two_orgs(project)
    code = textwrap.dedent(f"""\
        from compliance.cli import App
        app = App({str(project.config)!r}, False, "zeist")
        database = app.database()
        assert app.org.code == "zeist" and database is not app.home_database(), app.org
        assert [org.code for org in app.visible_orgs()] == ["utrecht", "zeist"]
        app.close()
        """)
    assert _orm_modules_after(code, cwd=str(project.root)) == []


def test_a_session_is_made_on_first_use_and_commits(database: Any) -> None:
    from sqlalchemy import func, select

    from compliance.db import schema
    from compliance.db.models import Organisation

    assert "sessions" not in vars(database)
    with database.transaction() as session:
        session.add(Organisation(code="zeist", name="Gemeente Zeist", location="compliance-zeist.db",
                                 created_at=datetime.now(UTC), created_by="test"))
    assert database.sessions is database.sessions
    with database.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(schema.organisations)
                                   .where(schema.organisations.c.code == "zeist")).scalar()
    assert count == 1


def test_utc_times_read_back_aware_in_utc_from_any_stored_form(database: Any) -> None:
    """SQLite keeps times as ISO text and `UTCDateTime` parses it in one step (issue 18): what the store
    wrote, text without microseconds or without a time, and text with an offset all come back as aware
    UTC datetimes, as the driver's parser followed by the decorator gave them; PostgreSQL's likewise."""
    from sqlalchemy import String, bindparam, column, literal_column, select

    from compliance.db.schema import UTCDateTime

    written = datetime(2026, 3, 8, 22, 59, 58, 123456, tzinfo=UTC)
    with database.engine.connect() as connection:
        stored = connection.execute(select(bindparam("at", type_=UTCDateTime()).label("at")), {"at": written})
        assert stored.scalar_one() == written
        if database.engine.dialect.name != "sqlite":
            return _postgresql_times_in_utc(connection, written)
        cases = {"2026-03-08 22:59:58.123456": written, "2026-03-08 22:59:58": written.replace(microsecond=0),
                 "2026-03-08": datetime(2026, 3, 8, tzinfo=UTC),
                 "2026-03-08 23:59:58.123456+01:00": written}
        for text, expected in cases.items():
            row = connection.execute(select(column("at", UTCDateTime())).select_from(
                select(bindparam("text", type_=String()).label("at")).subquery()), {"text": text}).one()
            assert row.at == expected and row.at.tzinfo is UTC, text
        none = connection.execute(select(column("at", UTCDateTime())).select_from(
            select(literal_column("NULL").label("at")).subquery())).scalar_one()
        assert none is None


def _postgresql_times_in_utc(connection: Any, written: datetime) -> None:
    """The session's time zone is UTC from the connect on, whatever the server's (issue 18: the driver then
    builds each timestamp with `UTC` and `UTCDateTime` passes it on as it is), also after a rolled-back
    transaction; a value in another zone (a session set otherwise) still comes back converted to UTC."""
    from sqlalchemy import bindparam, column, select, text

    from compliance.db.schema import UTCDateTime

    def read() -> datetime:
        value = connection.execute(select(column("at", UTCDateTime())).select_from(
            select(bindparam("at", type_=UTCDateTime()).label("at")).subquery()), {"at": written}).scalar_one()
        assert isinstance(value, datetime)
        return value

    assert connection.execute(text("SHOW TimeZone")).scalar_one() == "UTC"
    connection.rollback()
    assert connection.execute(text("SHOW TimeZone")).scalar_one() == "UTC"
    assert read().tzinfo is UTC and read() == written
    connection.execute(text("SET TIME ZONE 'Europe/Amsterdam'"))
    raw = connection.execute(select(bindparam("at", type_=UTCDateTime()).label("at")), {"at": written}).scalar_one()
    assert read() == written and read().tzinfo is UTC, raw
    none = connection.execute(select(column("at", UTCDateTime())).select_from(
        select(text("NULL::timestamptz AS at")).subquery())).scalar_one()
    assert none is None
