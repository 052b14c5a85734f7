"""The register as other parts of the monitor read it (clock, open incidents, figures), ids under
concurrency, links, updates and the terminal prompts; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from compliance.incidents import Register, deadline_for, figures, open_incidents
from compliance.incidents.model import parse_time
from tests.conftest import Project
from tests.incidents.conftest import draft, new_letter, ok

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)



def test_the_deadline_is_72_elapsed_hours_also_across_a_clock_change() -> None:
    # Friday 24 October 2025 16:40 CEST (+02:00); the clocks go back on Sunday: 72 h later is Monday 15:40 CET
    aware = parse_time("2025-10-24 16:40", AMSTERDAM, "--aware-at")
    assert aware == datetime(2025, 10, 24, 14, 40, tzinfo=UTC)
    assert deadline_for(aware).astimezone(AMSTERDAM).isoformat() == "2025-10-27T15:40:00+01:00"


def test_the_clock(database: Any) -> None:
    register = Register(database, zone=AMSTERDAM)
    running = register.register(draft(NOW - timedelta(hours=30)), by="anna", now=NOW)
    overdue = register.register(draft(NOW - timedelta(hours=80)), by="anna", now=NOW)
    assert (running.clock(NOW).state, running.clock(NOW).hours_left, running.clock(NOW).describe()) == (
        "running", 42.0, "42.0 h left")
    assert (overdue.clock(NOW).state, overdue.clock(NOW).hours_left, overdue.clock(NOW).overdue) == (
        "overdue", -8.0, True)
    assert overdue.clock(NOW).describe() == "8.0 h overdue"

    register.assess(running.id, ei="maximum", confidentiality="exposed", integrity="none", availability="none",
                    by="anna", now=NOW)
    register.decide(running.id, notify_authority=True, notify_subjects=False, reason="r", by="anna", now=NOW)
    notified = register.notify(running.id, recipient="authority", reference="M1", at=NOW - timedelta(hours=1),
                               by="anna", now=NOW)
    clock = notified.clock(NOW + timedelta(days=5))
    assert (clock.state, clock.within_deadline, clock.hours_left, clock.describe()) == (
        "notified", True, None, "notified in time")


def test_open_incidents_and_figures_for_the_digest(database: Any) -> None:
    register = Register(database, zone=AMSTERDAM)
    ids = [register.register(draft(NOW - timedelta(hours=h)), by="anna", now=NOW).id for h in (10, 90, 50)]
    # the 90-hour one: assessed low, decided not to notify, closed
    register.assess(ids[1], dpc=1, dpc_reason="only the fact of an application", ei="limited",
                    confidentiality="exposed", integrity="none", availability="none", by="anna", now=NOW)
    register.decide(ids[1], notify_authority=False, notify_subjects=False, reason="low", by="anna", now=NOW)
    register.update(ids[1], {"consequences": "none likely", "measures_taken": "letter retrieved"}, by="anna",
                    now=NOW)
    register.close(ids[1], ongoing=True, by="anna", now=NOW)
    # the 50-hour one: notified in time
    register.assess(ids[2], ei="maximum", confidentiality="exposed", integrity="none", availability="none",
                    by="anna", now=NOW)
    register.decide(ids[2], notify_authority=True, notify_subjects=False, reason="r", by="anna", now=NOW)
    register.notify(ids[2], recipient="authority", reference="M7", at=NOW - timedelta(hours=2), by="anna", now=NOW)

    still_open = open_incidents(database, NOW)
    assert [i.id for i in still_open] == [ids[0], ids[2]]  # running first, then the notified one
    assert [i.clock(NOW).describe() for i in still_open] == ["62.0 h left", "notified in time"]

    counted = figures(database, since=NOW - timedelta(days=7), until=NOW, now=NOW)
    assert (counted.total, counted.open, counted.authority_notified, counted.notified_within_72h,
            counted.notified_late, counted.overdue, counted.people_affected) == (3, 2, 1, 1, 0, 0, 36)
    assert counted.by_status == {"open": 1, "assessed": 0, "notified": 1, "closed": 1}
    assert counted.by_band == {"low": 1, "medium": 0, "high": 0, "very high": 1, "unassessed": 1}
    assert counted.by_nature == {"confidentiality": 3, "integrity": 0, "availability": 0}
    assert figures(database, since=NOW, now=NOW).total == 0


def test_ids_are_a_sequence_per_year_and_unique_under_concurrency(db_url: str) -> None:
    from compliance.db import Database

    errors: list[BaseException] = []
    made: list[str] = []

    def worker() -> None:
        database = Database(db_url)
        try:
            register = Register(database, zone=AMSTERDAM)
            for _ in range(4):
                made.append(register.register(draft(NOW - timedelta(hours=1)), by="anna", now=NOW).id)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            database.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(made) == [f"DL-2026-{n:04d}" for n in range(1, 25)]
    database = Database(db_url)
    try:
        verdict = Register(database).verify()
        assert (verdict.intact, verdict.events, verdict.incidents) == (True, 24, 24)
        nxt = Register(database, zone=AMSTERDAM, id_prefix="DL").register(
            draft(NOW - timedelta(hours=1)), by="anna", now=datetime(2027, 1, 2, 9, 0, tzinfo=UTC))
        assert nxt.id == "DL-2027-0001"
    finally:
        database.close()


def test_list_puts_the_most_urgent_first(project: Project) -> None:
    first = new_letter(project)
    ok(project.run("incident", "assess", first, "--ei", "negligible", "--confidentiality", "known-recipients",
                   "--integrity", "none", "--availability", "none", "--format", "json"))
    ok(project.run("incident", "decide", first, "--notify-authority", "no", "--notify-subjects", "no",
                   "--reason", "low", "--format", "json"))
    second = new_letter(project)
    listed = ok(project.run("incident", "list", "--format", "json"))
    assert [(i["id"], i["clock"]["state"]) for i in listed] == [(second, "overdue"), (first, "not-required")]
    table = project.run("incident", "list")
    assert table.exit_code == 0 and "overdue" in table.stdout and "AP no, people no" in table.stdout
    assert ok(project.run("incident", "list", "--status", "closed", "--format", "json")) == []
    shown = ok(project.run("incident", "show", second, "--format", "json"))
    assert shown == listed[0]


def test_update_changes_facts_and_moves_the_deadline(project: Project) -> None:
    incident = new_letter(project)
    updated = ok(project.run("incident", "update", incident, "--aware-at", "2025-03-07 17:00", "--subjects", "2",
                             "--nature", "confidentiality,integrity", "--format", "json"))
    assert (updated["deadline"], updated["subjects"], updated["nature"]) == (
        "2025-03-10T17:00:00+01:00", 2, ["confidentiality", "integrity"])
    same = project.run("incident", "update", incident, "--subjects", "2")
    assert same.exit_code == 2 and "nothing to change" in same.stderr
    assert project.run("incident", "verify").exit_code == 0


def test_links_to_controls_and_findings(project: Project) -> None:
    from compliance.db import Database
    from compliance.db.models import ControlRow

    db = Database(project.db_url)
    try:
        with db.transaction() as session:
            session.add(ControlRow(id="MAIL-01", title="Mailing street", theme="organizational", severity="high",
                                   content_hash="x", synced_at=NOW))
    finally:
        db.close()
    incident = new_letter(project)
    linked = ok(project.run("incident", "link", incident, "--control", "MAIL-01", "--format", "json"))
    assert [(x["kind"], x["ref"]) for x in linked["links"]] == [("control", "MAIL-01")]
    wrong = project.run("incident", "link", incident, "--control", "MAIL-1")
    assert wrong.exit_code == 2 and "no control 'MAIL-1' in the database; did you mean 'MAIL-01'?" in wrong.stderr
    missing = project.run("incident", "link", incident, "--finding", "99")
    assert missing.exit_code == 2 and "no finding with id '99'" in missing.stderr
    assert project.run("incident", "verify").exit_code == 0


def test_new_asks_for_what_is_missing_on_a_terminal(project: Project) -> None:
    """Run the real command in a pseudo-terminal and answer its questions."""
    main, child = pty.openpty()
    env = {**os.environ, "COMPLIANCE_CONFIG": str(project.config), "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-c", "from compliance.cli import main; main()", "incident", "new",
                             "--title", "Lost folder", "--format", "json"], stdin=child, stdout=child, stderr=child,
                            cwd=project.root, env=env, close_fds=True)
    os.close(child)
    answers = [("Became aware at", "friday 16:40"), ("is not a date and time", "2025-03-07 16:40"),
               ("Breach started at", "2025-03-07 08:00"),
               ("Nature", "confidentiality"), ("Data categories", "health, contact"),
               ("number of people", "40"), ("Description", "A folder with care plans was left on the train.")]
    seen = ""
    try:
        for prompt, answer in answers:
            seen += _read_until(main, prompt, seen)
            os.write(main, answer.encode() + b"\r")
        seen += _read_until(main, "\n}", seen)  # the end of the JSON object
        proc.wait(timeout=20)
    finally:
        proc.kill()
        os.close(main)
    assert proc.returncode == 0, seen
    data = json.loads(seen[seen.index("{"):].replace("\r\n", "\n"))
    assert (data["aware_at"], data["data_categories"], data["subjects"]) == (
        "2025-03-07T16:40:00+01:00", ["health", "contact"], 40)


def _read_until(fd: int, wanted: str, before: str, timeout: float = 20) -> str:
    out = ""
    deadline = time.monotonic() + timeout
    while wanted not in before + out:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            pytest.fail(f"no {wanted!r} within {timeout} s; got: {before + out!r}")
        try:
            out += os.read(fd, 4096).decode(errors="replace")
        except OSError:
            break
    return out


def test_the_register_imports_nothing_from_the_cli() -> None:
    """Only the package's command module, the CLI layer, uses the root of the command line."""
    root = Path(__file__).resolve().parents[2] / "incidents"
    for path in root.glob("*.py"):
        if path.name == "commands.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert "compliance.cli" not in text and "from cli" not in text and "import cli" not in text, path
