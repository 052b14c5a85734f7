"""Several organisations when something went wrong: an interrupted `org add` or `org rename`, an
organisation's database lost (a deleted SQLite file, a dropped PostgreSQL schema)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from compliance import db
from compliance.db import SCHEMA_HEAD
from tests.conftest import Project

pytestmark = pytest.mark.faults


@pytest.fixture(autouse=True)
def _no_org_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPLIANCE_ORG", raising=False)


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr or result.stdout
    return result


def location(project: Project, code: str) -> str:
    return f"compliance-{code}.db" if project.db_url.startswith("sqlite") else f"org_{code}"


def zeist_url(project: Project) -> str:
    from compliance.orgs import org_url

    return org_url(project.db_url, location(project, "zeist"))


def codes(project: Project) -> list[str]:
    return [o["code"] for o in json.loads(ok(project.run("org", "list", "--format", "json")).stdout)]


def with_zeist(project: Project) -> None:
    ok(project.run("org", "rename", "default", "utrecht", "--name", "Gemeente Utrecht"))
    ok(project.run("org", "add", "zeist", "--name", "Gemeente Zeist"))


def lose_zeist(project: Project) -> None:
    """Zeist's database gone: its SQLite file deleted, or its schema dropped."""
    if project.db_url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            (project.root / f"compliance-zeist.db{suffix}").unlink(missing_ok=True)
    else:
        engine = db.create_engine(project.db_url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA org_zeist CASCADE"))
        engine.dispose()


MISSING = ("error: the database of organisation 'zeist' ({where}) is missing or empty: restore it from the backup; "
           "`compliance db upgrade` does not create it again, so that an empty database does not take the place "
           "of the organisation's data\n")


def test_an_interrupted_add_is_finished_by_running_it_again(project: Project) -> None:
    ok(project.run("org", "rename", "default", "utrecht"))
    if not project.db_url.startswith("sqlite"):
        engine = db.create_engine(project.db_url)
        with engine.begin() as connection:
            connection.execute(text("CREATE SCHEMA org_zeist"))
        engine.dispose()
    # stopped after its database was made and migrated, before it was registered
    assert db.upgrade(zeist_url(project)) == SCHEMA_HEAD
    assert codes(project) == ["utrecht"]

    result = ok(project.run("org", "add", "zeist", "--name", "Gemeente Zeist"))
    assert result.stdout == f"organisation zeist (Gemeente Zeist) added; its data: {location(project, 'zeist')}\n"
    assert ok(project.run("findings", "--org", "zeist", "--format", "json")).stdout == "[]\n"


def test_an_interrupted_rename_is_named_and_finished_by_the_command_it_names(project: Project) -> None:
    with_zeist(project)
    # stopped after zeist's own database took the new code, before the register did
    engine = db.create_engine(zeist_url(project))
    with engine.begin() as connection:
        connection.execute(text("UPDATE organisations SET code = 'zeist-oost' WHERE location = ''"))
    engine.dispose()
    refused = project.run("findings", "--org", "zeist")
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr == (
        f"error: the database of organisation 'zeist' ({location(project, 'zeist')}) holds organisation "
        "'zeist-oost': if a rename was interrupted, run `compliance org rename zeist zeist-oost` or the other way "
        "round again; otherwise restore that database from the backup\n")

    ok(project.run("org", "rename", "zeist", "zeist-oost"))
    assert codes(project) == ["utrecht", "zeist-oost"]
    assert ok(project.run("findings", "--org", "zeist-oost", "--format", "json")).stdout == "[]\n"


def test_a_lost_database_is_reported_with_the_organisation(project: Project) -> None:
    with_zeist(project)
    lose_zeist(project)
    result = project.run("findings", "--org", "zeist")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == MISSING.format(where=location(project, "zeist"))
    assert ok(project.run("findings", "--org", "utrecht", "--format", "json")).stdout == "[]\n"


def test_db_upgrade_does_not_put_an_empty_database_in_place_of_a_lost_one(project: Project) -> None:
    with_zeist(project)
    ok(project.run("org", "add", "bilt", "--name", "Gemeente De Bilt"))
    lose_zeist(project)
    result = project.run("db", "upgrade")
    assert result.exit_code == 2
    assert result.stdout == (f"database {db.safe_url(project.db_url)} is already at schema {SCHEMA_HEAD}\n"
                             f"database of organisation bilt is already at schema {SCHEMA_HEAD}\n")
    assert result.stderr == MISSING.format(where=location(project, "zeist"))
    assert db.current_revision(zeist_url(project)) is None
    if project.db_url.startswith("sqlite"):
        assert not (project.root / "compliance-zeist.db").exists()
