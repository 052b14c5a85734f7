"""The AP form export is Dutch throughout, and `incident show --lang` gives the advice in Dutch or English,
through the CLI."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from tests.conftest import Project
from tests.incidents.conftest import ok

#: A breach with every free-text field in Dutch, so what is left in English would be the tool's own words.
DUTCH = ("--title", "Besluit over een uitkering naar een verkeerd adres", "--aware-at", "2025-03-07 16:40",
         "--occurred-at", "2025-03-06 09:00", "--nature", "confidentiality", "--data-category", "social-welfare",
         "--data-category", "bsn", "--data-category", "contact", "--data-category", "identity", "--subjects", "1",
         "--records", "1", "--people", "residents", "--description", "Een brief ging naar een verkeerd adres.",
         "--cause", "Een verkeerd adres in de verzendlijst.", "--how-discovered", "De ontvanger belde.",
         "--consequences", "Een ander weet van de uitkering.", "--measures-taken", "De brief is teruggehaald.",
         "--measures-planned", "Adressen worden gecontroleerd.", "--found-by", "processor", "--processor",
         "Drukkerij B.V.", "--processor-discovered-at", "2025-03-07 10:00", "--processor-told-at", "2025-03-07 16:00")
#: Words of the tool's English texts that must not appear in the Dutch export.
ENGLISH = re.compile(r"\b(the|and|because|from|instead|severity|Authority|People|notify|inform|register only|"
                     r"processor|found|social-welfare|identity|residents|none|yes|no)\b")


def assessed(project: Project) -> str:
    incident = str(ok(project.run("incident", "new", *DUTCH, "--format", "json"))["id"])
    ok(project.run("incident", "assess", incident, "--ei", "maximum", "--confidentiality", "known-recipients",
                   "--integrity", "none", "--availability", "none", "--dpc", "4", "--dpc-reason",
                   "kwetsbare inwoners", "--format", "json"))
    ok(project.run("incident", "decide", incident, "--notify-authority", "yes", "--notify-subjects", "yes",
                   "--reason", "Hoog risico voor de betrokkene.", "--format", "json"))
    return incident


def test_every_answer_of_the_ap_export_is_dutch(register_project: Project) -> None:
    project = register_project
    incident = assessed(project)
    ap = project.run("incident", "export", incident, "--format", "ap")
    assert ap.exit_code == 0, ap.stderr
    # the command lines the export suggests and the register's id are not prose
    prose = re.sub(r"`[^`]*`", "", ap.stdout)
    assert ENGLISH.findall(prose) == []
    assert ("    Beoordeling: Autoriteit: melden binnen 72 uur na het bekend worden, omdat ernst 4,25 (zeer hoog)"
            in ap.stdout)
    assert ("DPC 4 in plaats van 3, de basisscore van de gegevenscategorieën (gegevens uit het sociaal domein 3, "
            "burgerservicenummer 3, contactgegevens 1, identiteitsgegevens 1): kwetsbare inwoners") in ap.stdout


def test_an_assessment_without_dutch_reasons_is_summed_up_in_dutch(register_project: Project) -> None:
    from compliance.db import Database
    from compliance.db.models import IncidentRow

    project = register_project
    incident = assessed(project)
    db = Database(project.db_url)
    try:  # an assessment as recorded before the register kept its reasons in Dutch
        with db.transaction() as session:
            row = session.get(IncidentRow, incident)
            assert row is not None and row.assessment is not None
            old = {k: v for k, v in row.assessment.items() if k not in ("reasons_nl", "summary_nl")}
            session.execute(update(IncidentRow).where(IncidentRow.id == incident).values(assessment=old))
    finally:
        db.close()
    ap = project.run("incident", "export", incident, "--format", "ap")
    section = ap.stdout.split("9.1 Overige informatie\n", 1)[1]
    assert section.splitlines()[1:] == [
        "    Beoordeling: Ernst 4,25 (zeer hoog): DPC 4 × EI 1 + CB 0,25. Advies: melden aan de autoriteit: ja; "
        "betrokkenen informeren: ja. DPC 4 in plaats van 3, de basisscore van de gegevenscategorieën (gegevens uit "
        "het sociaal domein 3, burgerservicenummer 3, contactgegevens 1, identiteitsgegevens 1): kwetsbare inwoners "
        "Deze beoordeling is vastgelegd voordat het register de redenen ook in het Nederlands vastlegde; een nieuwe "
        "beoordeling geeft de volledige Nederlandse toelichting.",
    ]
    assert "Authority:" not in ap.stdout


@pytest.mark.parametrize(("lang", "first"), [
    ("en", "  - Authority: notify within 72 hours of becoming aware"),
    ("nl", "  - Autoriteit: melden binnen 72 uur na het bekend worden"),
])
def test_show_gives_the_reasons_in_the_language_asked(register_project: Project, lang: str, first: str) -> None:
    project = register_project
    incident = assessed(project)
    shown = project.run("incident", "show", incident, "--lang", lang)
    assert shown.exit_code == 0, shown.stderr
    reasons = [line for line in shown.stdout.splitlines() if line.startswith("  - ")]
    assert reasons[0].startswith(first)
    data = ok(project.run("incident", "show", incident, "--lang", lang, "--format", "json"))
    assert data["assessment"]["lang"] == lang and data["assessment"]["reasons"][0].startswith(first[4:])


def test_show_defaults_to_english(register_project: Project) -> None:
    project = register_project
    incident = assessed(project)
    assert project.run("incident", "show", incident).stdout == project.run("incident", "show", incident, "--lang",
                                                                            "en").stdout
