"""The audit trail: append-only, hash-chained; `incident verify` finds changes made outside the tool."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from compliance.incidents import chain
from tests.conftest import Project
from tests.incidents.conftest import new_letter, ok


def walk(project: Project) -> str:
    incident = new_letter(project)
    ok(project.run("incident", "assess", incident, "--ei", "maximum", "--confidentiality", "known-recipients",
                   "--integrity", "none", "--availability", "none", "--format", "json"))
    ok(project.run("incident", "decide", incident, "--notify-authority", "yes", "--notify-subjects", "yes",
                   "--reason", "high risk", "--format", "json"))
    return incident


def sql(db_url: str, statement: str, **params: Any) -> None:
    from compliance.db import Database

    db = Database(db_url)
    try:
        with db.transaction() as session:
            session.execute(text(statement), params)
    finally:
        db.close()


def test_an_event_altered_in_the_database_breaks_the_chain_at_that_event(project: Project) -> None:
    incident = walk(project)
    assert project.run("incident", "verify").exit_code == 0
    # someone softens the recorded decision directly in the database
    sql(project.db_url, "UPDATE incident_events SET new = replace(new, 'high risk', 'low risk') WHERE seq = 4")

    result = project.run("incident", "verify")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "audit trail BROKEN at event 4"
    assert lines[1].startswith(f"  event 4 ({incident}): its content was altered after it was written "
                               "(decide decision by ")
    verdict = json.loads(project.run("incident", "verify", "--format", "json").stdout)
    assert (verdict["intact"], verdict["first_broken_event"]) == (False, 4)


def test_an_event_removed_from_the_middle_is_named(project: Project) -> None:
    incident = walk(project)
    sql(project.db_url, "DELETE FROM incident_events WHERE seq = 2")
    result = project.run("incident", "verify")
    assert result.exit_code == 1
    assert "audit trail BROKEN at event 3" in result.stdout
    assert f"event 3 ({incident}): expected event 2 here: events 2-2 are missing" in result.stdout


def test_an_event_rewritten_with_a_fresh_hash_breaks_the_next_link(project: Project) -> None:
    walk(project)
    from compliance.db import Database
    from compliance.db.models import IncidentEvent

    db = Database(project.db_url)
    try:
        with db.transaction() as session:
            event = session.get_one(IncidentEvent, 2)
            event.by = "mallory"
            event.hash = chain.event_hash(seq=2, incident_id=event.incident_id, at=event.at, by="mallory",
                                          action=event.action, field=event.field, old=event.old, new=event.new,
                                          prev_hash=event.prev_hash)
    finally:
        db.close()
    result = project.run("incident", "verify")
    assert result.exit_code == 1
    assert "audit trail BROKEN at event 3" in result.stdout
    assert "its link to the previous event does not match" in result.stdout


@pytest.mark.parametrize(("statement", "problem"), [
    ("UPDATE incidents SET band = 'low', score = '1.00'", "score/band (1.00, low) differ from its assessment"),
    ("UPDATE incidents SET subjects = 0", "subjects differs from its audit trail (last recorded by its 'create' "
                                          "event)"),
    ("UPDATE incidents SET status = 'closed'", "status differs from its audit trail (last recorded by event 3)"),
    ("UPDATE incidents SET deadline = aware_at", "deadline 2025-03-07T15:40:00.000000Z is not 72 hours after "
                                                 "aware_at 2025-03-07T15:40:00.000000Z"),
])
def test_a_register_row_changed_outside_the_tool_is_found(project: Project, statement: str, problem: str) -> None:
    incident = walk(project)
    sql(project.db_url, statement)
    result = project.run("incident", "verify")
    assert result.exit_code == 1
    assert result.stdout.startswith("register differs from its audit trail")
    assert f"incident {incident}: {problem}" in result.stdout


def test_commands_only_append_events(project: Project) -> None:
    incident = new_letter(project)
    before = ok(project.run("incident", "show", incident, "--history", "--format", "json"))["events"]
    walk(project)
    ok(project.run("incident", "update", incident, "--measures-planned", "Two-person check on mailings",
                   "--format", "json"))
    after = ok(project.run("incident", "show", incident, "--history", "--format", "json"))["events"]
    assert after[: len(before)] == before
    assert after[-1]["action"] == "update" and after[-1]["field"] == "measures_planned"
    assert (after[-1]["old"], after[-1]["new"]) == ("", "Two-person check on mailings")


def test_the_hash_covers_the_canonical_event_and_the_previous_hash() -> None:
    at = datetime(2026, 11, 27, 15, 40, tzinfo=UTC)
    one = chain.event_hash(seq=1, incident_id="DL-2026-0001", at=at, by="anna", action="create", field=None,
                           old=None, new='{"a":1}', prev_hash=chain.GENESIS)
    body = ('{"action":"create","at":"2026-11-27T15:40:00.000000Z","by":"anna","field":null,'
            '"incident":"DL-2026-0001","new":"{\\"a\\":1}","old":null,"prev":"' + "0" * 64 + '","seq":1}')
    assert one == hashlib.sha256(body.encode()).hexdigest()
