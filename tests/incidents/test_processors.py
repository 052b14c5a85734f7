"""Who found the breach and, for a processor, when it discovered it and told the municipality (art. 33(2)),
through the CLI: recorded on `new` and `update`, shown in `show` (text and JSON) and in the AP export,
validated against the timeline, and kept in the audit trail."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Project
from tests.incidents.conftest import LETTER, new_letter, ok, stored

#: LETTER became known 2025-03-07 16:40 (aware) after it occurred 2025-03-06 09:00; the processor's times fit.
BY_PROCESSOR = ("--found-by", "processor", "--processor", "Printshop B.V.",
                "--processor-discovered-at", "2025-03-07 10:00", "--processor-told-at", "2025-03-07 16:00")


def test_a_breach_found_by_a_processor_is_recorded_and_shown(register_project: Project) -> None:
    project = register_project
    found = ok(project.run("incident", "new", *LETTER, *BY_PROCESSOR, "--format", "json"))
    assert (found["found_by"], found["processor"]) == ("processor", "Printshop B.V.")
    assert found["processor_discovered_at"] == "2025-03-07T10:00:00+01:00"
    assert found["processor_told_at"] == "2025-03-07T16:00:00+01:00"
    # the 72 hours still run from when the municipality became aware (told by its processor, art. 33(2))
    assert found["deadline"] == "2025-03-10T16:40:00+01:00"
    shown = project.run("incident", "show", found["id"])
    assert shown.exit_code == 0
    assert "Found by:         processor\n" in shown.stdout
    assert "Processor found:  Fri 2025-03-07 10:00\n" in shown.stdout
    assert "Processor told:   Fri 2025-03-07 16:00\n" in shown.stdout


def test_the_ap_export_names_the_processor_and_its_times(register_project: Project) -> None:
    project = register_project
    incident = new_letter(project, *BY_PROCESSOR)
    ap = project.run("incident", "export", incident, "--format", "ap")
    assert ap.exit_code == 0, ap.stderr
    section = ap.stdout.split("1.4 ", 1)[1].split("2. Tijdlijn", 1)[0]
    assert section.splitlines()[1:5] == [
        "    Ja: Printshop B.V. (verwerker).",
        "    Het datalek is ontdekt door de verwerker.",
        "    De verwerker heeft de inbreuk ontdekt op vrijdag 07-03-2025 om 10:00.",
        "    De verwerker heeft de organisatie ingelicht op vrijdag 07-03-2025 om 16:00.",
    ]
    assert "3.4 Hoe is de inbreuk ontdekt?\n    Ontdekt door de verwerker.\n" in ap.stdout


def test_update_records_the_processor_facts_in_the_audit_trail(register_project: Project) -> None:
    project = register_project
    incident = new_letter(project)
    updated = ok(project.run("incident", "update", incident, "--found-by", "joint-controller",
                             "--processor", "Regio ICT", "--processor-told-at", "2025-03-07 16:10",
                             "--format", "json"))
    assert (updated["found_by"], updated["processor_told_at"]) == ("joint-controller", "2025-03-07T16:10:00+01:00")
    history = ok(project.run("incident", "show", incident, "--history", "--format", "json"))["events"]
    changed = {e["field"]: e["new"] for e in history if e["action"] == "update"}
    assert changed == {"found_by": "joint-controller", "processor": "Regio ICT",
                       "processor_told_at": "2025-03-07T15:10:00.000000Z"}
    verified = project.run("incident", "verify", "--format", "json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["intact"] is True


@pytest.mark.parametrize(("extra", "message"), [
    (("--found-by", "processor", "--processor", "P", "--processor-discovered-at", "2025-03-07 12:00",
      "--processor-told-at", "2025-03-07 11:00"),
     "--processor-told-at 2025-03-07 11:00 Europe/Amsterdam lies before --processor-discovered-at 2025-03-07 12:00 "
     "Europe/Amsterdam: the processor cannot tell the municipality before it discovered the breach"),
    (("--found-by", "processor", "--processor", "P", "--processor-told-at", "2025-03-07 17:00"),
     "--aware-at 2025-03-07 16:40 Europe/Amsterdam lies before --processor-told-at 2025-03-07 17:00 "
     "Europe/Amsterdam: the municipality becomes aware when its processor tells it, or later"),
    (("--found-by", "processor", "--processor", "P", "--processor-discovered-at", "2025-03-05 12:00"),
     "--processor-discovered-at 2025-03-05 12:00 Europe/Amsterdam lies before --occurred-at 2025-03-06 09:00 "
     "Europe/Amsterdam: a breach cannot be discovered before it happened"),
    (("--found-by", "processor"),
     "--found-by processor needs the processor's name: give --processor ORGANISATION"),
    (("--processor-told-at", "2025-03-07 16:00"),
     "--processor-told-at is for a breach found by a processor or a joint controller; give --found-by processor "
     "(or joint-controller)"),
])
def test_processor_facts_that_do_not_fit_are_refused(register_project: Project, extra: tuple[str, ...],
                                                     message: str) -> None:
    project = register_project
    result = project.run("incident", "new", *LETTER, *extra)
    assert result.exit_code == 2
    assert message in result.stderr
    assert stored(project.db_url) == (0, 0, 0)


def test_an_update_that_breaks_the_processor_timeline_changes_nothing(register_project: Project) -> None:
    project = register_project
    incident = new_letter(project, *BY_PROCESSOR)
    before = stored(project.db_url)
    result = project.run("incident", "update", incident, "--aware-at", "2025-03-07 15:00")
    assert result.exit_code == 2
    assert ("--aware-at 2025-03-07 15:00 Europe/Amsterdam lies before --processor-told-at 2025-03-07 16:00 "
            "Europe/Amsterdam") in result.stderr
    assert stored(project.db_url) == before


def test_an_unknown_found_by_is_a_usage_error(register_project: Project) -> None:
    result = register_project.run("incident", "new", *LETTER, "--found-by", "procesor")
    assert result.exit_code == 2
    assert "Invalid value for '--found-by': 'procesor' is not one of" in result.stderr


def test_the_found_by_choices_are_the_register_s() -> None:
    from compliance.incidents import commands
    from compliance.incidents.model import FOUND_BY

    assert commands._FOUND_BY == FOUND_BY


def test_migration_0010_round_trip_keeps_the_register_verifiable(register_project: Project) -> None:
    """Down to 0009 and up again: incidents without the new facts read with their defaults and the audit
    trail still matches (an incident registered before 0010 has no processor facts in its create event)."""
    from alembic import command

    from compliance import db
    from compliance.db import alembic_config

    project = register_project
    incident = new_letter(project)
    command.downgrade(alembic_config(project.db_url), "0009")
    db.upgrade(project.db_url)
    found = ok(project.run("incident", "show", incident, "--format", "json"))
    assert (found["found_by"], found["processor_told_at"], found["ap_instruction"]) == (None, None, None)
    assert found["duties"]["follow-up"]["state"] == "not-applicable"
    verified = project.run("incident", "verify", "--format", "json")
    assert verified.exit_code == 0, verified.stdout
