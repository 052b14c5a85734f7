"""A notification to the AP in phases (art. 33(4)) through the CLI: what was still open and when the
follow-up is due, the follow-up as a duty with its deadline, closing only once it is done, and the
answers for an aanvulling (`export --format ap --supplement`) with the AP's reference number."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import Project
from tests.incidents.conftest import new_letter, ok, stored

PHASED = ("--open-items", "the number of letters sent to wrong addresses", "--follow-up-due", "2025-03-12 12:00")


def decided(project: Project) -> str:
    """The letter, assessed high and decided: notify the authority and the people."""
    incident = new_letter(project)
    ok(project.run("incident", "assess", incident, "--ei", "maximum", "--confidentiality", "known-recipients",
                   "--integrity", "none", "--availability", "none", "--format", "json"))
    ok(project.run("incident", "decide", incident, "--notify-authority", "yes", "--notify-subjects", "yes",
                   "--reason", "high risk", "--format", "json"))
    return incident


def notified_in_phases(project: Project) -> str:
    incident = decided(project)
    ok(project.run("incident", "notify", incident, "--authority", "--reference", "M2025-0042", "--at",
                   "2025-03-08 10:00", *PHASED, "--format", "json"))
    return incident


def test_the_first_notification_records_what_is_open_and_the_follow_up_is_a_duty(register_project: Project) -> None:
    project = register_project
    incident = decided(project)
    result = project.run("incident", "notify", incident, "--authority", "--reference", "M2025-0042", "--at",
                         "2025-03-08 10:00", *PHASED)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (f"{incident}: initial notification to the authority recorded, Sat 2025-03-08 10:00 "
                             "(Europe/Amsterdam), reference M2025-0042; in time; follow-up due Wed 2025-03-12 12:00 "
                             "(Europe/Amsterdam) for: the number of letters sent to wrong addresses; status notified\n")
    found = ok(project.run("incident", "show", incident, "--format", "json"))
    assert found["duties"]["follow-up"] == {"state": "overdue", "deadline": "2025-03-12T12:00:00+01:00",
                                            "done_at": None, "reference": None, "within_deadline": None}
    assert found["open_items"] == "the number of letters sent to wrong addresses"
    assert found["notifications"][0]["follow_up_due"] == "2025-03-12T12:00:00+01:00"
    shown = project.run("incident", "show", incident)
    assert ("AP follow-up:     due Wed 2025-03-12 12:00: overdue; open at notification: the number of letters sent "
            "to wrong addresses\n") in shown.stdout
    listed = ok(project.run("incident", "list", "--format", "json"))
    assert listed[0]["duties"]["follow-up"]["state"] == "overdue"
    [row] = list(csv.DictReader(io.StringIO(project.run("incident", "list", "--format", "csv").stdout)))
    assert (row["follow_up_due"], row["follow_up_state"]) == ("2025-03-12T12:00:00+01:00", "overdue")
    assert "AP done; AP follow-up overdue; people due" in row["clock"] + shown.stdout


def test_a_follow_up_does_the_duty_and_then_the_incident_can_close(register_project: Project) -> None:
    project = register_project
    incident = notified_in_phases(project)
    ok(project.run("incident", "notify", incident, "--subjects", "--channel", "letter", "--at", "2025-03-09 10:00",
                   "--format", "json"))
    ok(project.run("incident", "update", incident, "--consequences", "c", "--measures-taken", "m", "--ended-at",
                   "2025-03-07 17:30", "--format", "json"))
    refused = project.run("incident", "close", incident)
    assert refused.exit_code == 2
    assert ("still needs the follow-up to the authority of what was still open (art. 33(4): `compliance incident "
            f"notify {incident} --authority --follow-up --note ...`)") in refused.stderr
    followed = ok(project.run("incident", "notify", incident, "--authority", "--follow-up", "--at", "2025-03-11 09:00",
                              "--note", "12 letters in all", "--format", "json"))
    assert followed["duties"]["follow-up"] == {"state": "done", "deadline": "2025-03-12T12:00:00+01:00",
                                               "done_at": "2025-03-11T09:00:00+01:00", "reference": "M2025-0042",
                                               "within_deadline": True}
    assert ok(project.run("incident", "close", incident, "--format", "json"))["status"] == "closed"
    verified = project.run("incident", "verify", "--format", "json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["intact"] is True


@pytest.mark.parametrize(("extra", "message"), [
    (("--open-items", "the count"), "--open-items needs --follow-up-due: when will the rest follow"),
    (("--follow-up-due", "2025-03-12 12:00"), "--follow-up-due needs --open-items: say what is still open"),
    (("--open-items", "x", "--follow-up-due", "2025-03-08 09:00"),
     "--follow-up-due 2025-03-08 09:00 Europe/Amsterdam is not after the notification (2025-03-08 10:00 "
     "Europe/Amsterdam)"),
])
def test_a_phase_that_does_not_fit_is_refused(register_project: Project, extra: tuple[str, ...],
                                              message: str) -> None:
    project = register_project
    incident = decided(project)
    before = stored(project.db_url)
    result = project.run("incident", "notify", incident, "--authority", "--reference", "M1", "--at",
                         "2025-03-08 10:00", *extra)
    assert result.exit_code == 2
    assert message in result.stderr
    assert stored(project.db_url) == before


def test_open_items_are_for_the_authority(register_project: Project) -> None:
    project = register_project
    incident = decided(project)
    result = project.run("incident", "notify", incident, "--subjects", "--channel", "letter", *PHASED)
    assert result.exit_code == 2
    assert "--open-items and --follow-up-due are for a notification to the authority in phases" in result.stderr


def test_the_supplement_carries_the_reference_and_what_was_open(register_project: Project) -> None:
    project = register_project
    incident = notified_in_phases(project)
    ok(project.run("incident", "notify", incident, "--authority", "--follow-up", "--at", "2025-03-11 09:00",
                   "--note", "12 letters in all", "--format", "json"))
    result = project.run("incident", "export", incident, "--format", "ap", "--supplement")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Meldformulier datalekken (Autoriteit Persoonsgegevens): aanvulling op de melding "
                                    f"voor {incident}\n")
    section = result.stdout.split("0.2 ", 1)[1].split("\n1. ", 1)[0]
    assert section.splitlines()[1:] == [
        "    Aanvulling op een eerdere melding. Meldnummer van de eerdere melding: M2025-0042 (gemeld op zaterdag "
        "08-03-2025 om 10:00).",
        "    Bij de melding van zaterdag 08-03-2025 om 10:00 stond nog open: the number of letters sent to wrong "
        "addresses (aanvulling toegezegd vóór woensdag 12-03-2025 om 12:00).",
        "    Eerder aangevuld op dinsdag 11-03-2025 om 09:00: 12 letters in all",
    ]


def test_no_supplement_without_an_earlier_notification(register_project: Project) -> None:
    project = register_project
    incident = decided(project)
    result = project.run("incident", "export", incident, "--format", "ap", "--supplement")
    assert result.exit_code == 2
    assert (f"{incident} has no notification to the AP with a reference number, so there is nothing to supplement"
            in result.stderr)
    assert result.stdout == ""


def test_supplement_goes_with_the_ap_format(register_project: Project) -> None:
    project = register_project
    incident = decided(project)
    result = project.run("incident", "export", incident, "--format", "json", "--supplement")
    assert result.exit_code == 2
    assert "--supplement goes with --format ap" in result.stderr
