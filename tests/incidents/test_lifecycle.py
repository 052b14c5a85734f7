"""The whole life of a breach through the command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from tests.conftest import Project
from tests.incidents.conftest import ok, stored

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def test_the_life_of_a_misaddressed_benefit_letter(register_project: Project) -> None:
    project = register_project
    year = datetime.now(AMSTERDAM).year

    # Friday 16:40: the letter went to the wrong address; every field as a flag, as a script would
    created = ok(project.run(
        "incident", "new", "--title", "Benefit decision sent to a wrong address",
        "--aware-at", "2025-03-07 16:40", "--occurred-at", "2025-03-06T09:00", "--discovered-at", "2025-03-07 16:30",
        "--ended-at", "2025-03-07 17:30", "--nature", "confidentiality", "--data-category", "social-welfare",
        "--data-category", "contact", "--subjects", "1", "--records", "1", "--people", "residents",
        "--description", "A letter with a benefit decision was put in the envelope of another resident.",
        "--cause", "Two letters in one envelope at the mailing street", "--how-discovered",
        "The recipient phoned the service desk", "--consequences", "The income of the resident became known "
        "to a neighbour.", "--measures-taken", "Letter collected back the same evening",
        "--by", "anna", "--format", "json"))
    incident = created["id"]
    assert incident == f"DL-{year}-0001"
    assert (created["status"], created["aware_at"], created["deadline"]) == (
        "open", "2025-03-07T16:40:00+01:00", "2025-03-10T16:40:00+01:00")
    assert created["clock"]["state"] == "overdue" and created["overdue"] is True

    assessed = ok(project.run(
        "incident", "assess", incident, "--ei", "maximum", "--confidentiality", "known-recipients",
        "--integrity", "none", "--availability", "none", "--by", "anna", "--format", "json"))
    # social-welfare: DPC 3; SE = 3 × 1 + 0.25 = 3.25 -> high
    assert {k: assessed[k] for k in ("id", "status", "score", "band", "notify_authority", "notify_subjects",
                                     "public_communication")} == {
        "id": incident, "status": "assessed", "score": 3.25, "band": "high", "notify_authority": True,
        "notify_subjects": True, "public_communication": False}
    assert assessed["summary"] == ("Severity 3.25 (high): DPC 3 × EI 1 + CB 0.25; notify the authority within 72 "
                                   "hours and inform the people concerned (art. 34(1)).")
    assert len(assessed["reasons"]) == 2

    decided = ok(project.run(
        "incident", "decide", incident, "--notify-authority", "yes", "--notify-subjects", "yes",
        "--reason", "Income data of a resident read by a neighbour: high risk.", "--by", "bert", "--format", "json"))
    assert decided["decision"]["follows_recommendation"] is True and decided["status"] == "assessed"

    late = project.run("incident", "notify", incident, "--authority", "--reference", "M2025-0042",
                       "--at", "2025-03-10 20:10")
    assert late.exit_code == 2
    assert "came 3.5 hours after the deadline 2025-03-10 16:40 Europe/Amsterdam" in late.stderr
    assert "give --delay-reason" in late.stderr

    notified = ok(project.run(
        "incident", "notify", incident, "--authority", "--reference", "M2025-0042", "--at", "2025-03-10 20:10",
        "--delay-reason", "The privacy officer was ill on Monday; her deputy reported in the evening.",
        "--format", "json"))
    assert notified["status"] == "notified"
    assert notified["clock"] == {"state": "notified", "hours_left": None, "notified_at": "2025-03-10T20:10:00+01:00",
                                 "within_deadline": False, "text": "notified 3.5 h late"}

    follow_up = ok(project.run("incident", "notify", incident, "--authority", "--follow-up", "--at",
                               "2025-03-12 11:00", "--note", "The neighbour confirmed the letter was opened.",
                               "--format", "json"))
    assert [(n["kind"], n["reference"]) for n in follow_up["notifications"]] == [
        ("initial", "M2025-0042"), ("follow-up", "M2025-0042")]

    informed = ok(project.run("incident", "notify", incident, "--subjects", "--channel", "letter",
                              "--at", "2025-03-11 10:00", "--format", "json"))
    assert informed["notifications"][-1]["channel"] == "letter"

    ok(project.run("incident", "update", incident, "--consequences", "The neighbour read a benefit decision.",
                   "--format", "json"))
    closed = ok(project.run("incident", "close", incident, "--note", "Mailing street now seals one letter per "
                            "envelope.", "--format", "json"))
    assert closed["status"] == "closed" and closed["closure"]["note"].startswith("Mailing street")

    ap = project.run("incident", "export", incident, "--format", "ap")
    assert ap.exit_code == 0, ap.stderr
    headings = re.findall(r"^(\d)\. ", ap.stdout, re.MULTILINE)
    assert headings == [str(n) for n in range(10)]
    for expected in (
        f"Meldformulier datalekken (Autoriteit Persoonsgegevens): antwoorden voor {incident}",
        "    Algemene verordening gegevensbescherming (AVG), artikel 33.",
        "    Nieuwe melding, gedaan op maandag 10-03-2025 om 20:10 (meldnummer M2025-0042).",
        "    Gemeente Voorbeeld",
        "    A. de Vries, Privacy officer, +31 20 123 4567",
        "    B. Jansen, Functionaris gegevensbescherming, +31 20 123 4568, fg@gemeente.example",
        "    Nee, de inbreuk is beëindigd op vrijdag 07-03-2025 om 17:30.",
        "    Gemeld op maandag 10-03-2025 om 20:10, na de termijn van 72 uur. Reden: The privacy officer was ill",
        "    - Lezen (vertrouwelijkheid)",
        "    - Financiële gegevens (register: gegevens uit het sociaal domein)",
        "    - Naam-, adres- en woonplaatsgegevens (register: contactgegevens)",
        "    - Telefoonnummers (register: contactgegevens)",
        "De categorie contactgegevens van het register dekt drie antwoorden van het formulier",
        "    Ongeveer 1 (minimaal en maximaal 1).",
        "    Hoog: ernst 3,25 volgens de ENISA-methode (2013), DPC 3 × EI 1 + CB 0,25 (DPC: context van de "
        "gegevensverwerking, EI: identificeerbaarheid, CB: omstandigheden van de inbreuk).",
        "    Ja: per brief op dinsdag 11-03-2025 om 10:00.",
        "    Genomen: Letter collected back the same evening",
    ):
        assert expected in ap.stdout

    audit = project.run("incident", "export", "--all", "--format", "csv")
    assert audit.exit_code == 0, audit.stderr
    [row] = list(csv.DictReader(io.StringIO(audit.stdout)))
    assert {k: row[k] for k in ("id", "status", "score", "band", "notify_authority", "authority_reference",
                                "notified_within_72h", "follow_ups", "subjects_channels", "data_categories")} == {
        "id": incident, "status": "closed", "score": "3.25", "band": "high", "notify_authority": "yes",
        "authority_reference": "M2025-0042", "notified_within_72h": "no", "follow_ups": "1",
        "subjects_channels": "letter", "data_categories": "social-welfare; contact"}
    assert row["delay_reason"].startswith("The privacy officer was ill")

    verified = project.run("incident", "verify")
    assert verified.exit_code == 0
    assert verified.stdout.startswith("audit trail intact: 11 events, 1 incident; head hash ")

    history = ok(project.run("incident", "show", incident, "--history", "--format", "json"))
    assert [(e["action"], e["field"]) for e in history["events"]] == [
        ("create", None), ("assess", "assessment"), ("assess", "status"), ("decide", "decision"),
        ("notify", "notifications"), ("notify", "status"), ("notify", "notifications"), ("notify", "notifications"),
        ("update", "consequences"),
        ("close", "closure"), ("close", "status")]
    assert [e["by"] for e in history["events"]][:4] == ["anna", "anna", "anna", "bert"]
    assert stored(project.db_url) == (1, 11, 3)
