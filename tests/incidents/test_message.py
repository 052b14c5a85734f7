"""The message to the people concerned (art. 34(2)) and the AP's instruction (art. 34(4)) through the CLI:
the Dutch and English drafts from the register, recording what was said when notifying the people,
showing it, the AP export, and the audit trail."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Project
from tests.incidents.conftest import new_letter, ok, stored

CONTACT_NL = ("Hebt u vragen over dit datalek, neem dan contact op met B. Jansen, Functionaris gegevensbescherming, "
              "telefoon +31 20 123 4568, e-mail fg@gemeente.example.")
SAID = ("--message-nature", "Een brief over uw uitkering is naar een verkeerd adres gestuurd.",
        "--message-consequences", "Iemand anders heeft kunnen lezen dat u een uitkering krijgt.",
        "--message-measures", "De brief is dezelfde avond teruggehaald.")


def decided(project: Project) -> str:
    incident = new_letter(project, "--measures-taken", "Letter collected back the same evening")
    ok(project.run("incident", "assess", incident, "--ei", "maximum", "--confidentiality", "known-recipients",
                   "--integrity", "none", "--availability", "none", "--format", "json"))
    ok(project.run("incident", "decide", incident, "--notify-authority", "yes", "--notify-subjects", "yes",
                   "--reason", "high risk", "--format", "json"))
    return incident


def test_the_dutch_draft_is_filled_in_from_the_register(register_project: Project) -> None:
    project = register_project
    incident = new_letter(project, "--measures-taken", "De brief is teruggehaald")
    result = project.run("incident", "message", incident, "--template", "--lang", "nl")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Betreft: datalek waarbij uw persoonsgegevens betrokken zijn", "",
        "Wat is er gebeurd?",
        "Op 7 maart 2025 ontdekte Gemeente Voorbeeld dat er een datalek was: persoonsgegevens van u zijn mogelijk "
        "gezien door iemand die ze niet mocht zien. [aanvullen] beschrijf in eenvoudige woorden wat er is gebeurd. "
        "Het gaat om deze gegevens: gegevens uit het sociaal domein (uitkeringen, schuldhulp, jeugdzorg, Wmo), "
        "contactgegevens (naam, adres, telefoon, e-mail).", "",
        "Wat zijn de mogelijke gevolgen voor u?", "[aanvullen] wat de gevolgen voor u kunnen zijn", "",
        "Wat hebben wij gedaan en wat gaan wij doen?", "Wat wij hebben gedaan: De brief is teruggehaald", "",
        "Vragen?", CONTACT_NL,
    ]


def test_the_english_draft_as_json(register_project: Project) -> None:
    project = register_project
    incident = new_letter(project)
    draft = ok(project.run("incident", "message", incident, "--template", "--lang", "en", "--format", "json"))
    assert draft["lang"] == "en"
    assert draft["contact"] == ("If you have questions about this breach, please contact B. Jansen, Functionaris "
                                "gegevensbescherming, phone +31 20 123 4568, e-mail fg@gemeente.example.")
    assert draft["consequences"] == "[fill in] what the consequences for you could be"
    assert draft["text"].startswith("Subject: a data breach involving your personal data\n")


def test_notifying_the_people_records_the_message_from_the_template(register_project: Project) -> None:
    project = register_project
    incident = decided(project)
    result = project.run("incident", "notify", incident, "--subjects", "--channel", "letter", "--at",
                         "2025-03-08 10:00", "--message-from-template", *SAID)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("; message recorded (art. 34(2)); status assessed\n")
    found = ok(project.run("incident", "show", incident, "--format", "json"))
    assert found["notifications"][0]["message"] == {
        "nature": SAID[1], "consequences": SAID[3], "measures": SAID[5], "contact": CONTACT_NL, "lang": "nl"}
    recorded = ok(project.run("incident", "message", incident, "--format", "json"))
    assert [m["nature"] for m in recorded] == [SAID[1]]
    ap = project.run("incident", "export", incident, "--format", "ap")
    assert ("Toelichting bij 8.1: de inhoud van de mededeling aan de betrokkenen (art. 34 lid 2 AVG; in het "
            "Nederlands):\n    - Aard van het datalek: Een brief over uw uitkering is naar een verkeerd adres "
            "gestuurd.\n") in ap.stdout
    assert f"    - Contactpunt (functionaris gegevensbescherming): {CONTACT_NL}\n" in ap.stdout
    history = ok(project.run("incident", "show", incident, "--history", "--format", "json"))["events"]
    assert history[-1]["new"]["message"]["measures"] == SAID[5]
    verified = project.run("incident", "verify", "--format", "json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["intact"] is True


def test_a_template_part_left_to_fill_in_is_refused(register_project: Project) -> None:
    project = register_project
    incident = decided(project)
    before = stored(project.db_url)
    result = project.run("incident", "notify", incident, "--subjects", "--channel", "letter",
                         "--message-from-template")
    assert result.exit_code == 2
    assert ("the template still has parts to fill in: --message-nature, --message-consequences (see `compliance "
            "incident message ID --template`; give those parts yourself)") in result.stderr
    assert stored(project.db_url) == before


def test_a_message_needs_all_four_parts(register_project: Project) -> None:
    project = register_project
    incident = decided(project)
    result = project.run("incident", "notify", incident, "--subjects", "--channel", "letter", *SAID[:2])
    assert result.exit_code == 2
    assert "missing: --message-contact, --message-consequences, --message-measures" in result.stderr


def test_a_message_goes_with_the_people(register_project: Project) -> None:
    project = register_project
    incident = decided(project)
    result = project.run("incident", "notify", incident, "--authority", "--reference", "M1", *SAID)
    assert result.exit_code == 2
    assert "the --message-* options record what the people concerned were told: use them with --subjects" \
        in result.stderr


def test_personal_data_in_the_message_is_refused(register_project: Project) -> None:
    project = register_project
    incident = decided(project)
    result = project.run("incident", "notify", incident, "--subjects", "--channel", "letter", "--message-contact",
                         "fg@gemeente.example", "--message-nature", "Uw BSN 111222333 is gelekt.",
                         "--message-consequences", "c", "--message-measures", "m")
    assert result.exit_code == 2
    assert "message-nature contains what looks like a BSN (*******33)" in result.stderr
    assert "message-contact" not in result.stderr  # the FG's own address is no personal data of someone concerned


@pytest.mark.parametrize("where", ["update", "new"])
def test_the_ap_instruction_is_recorded_and_blocks_closing_until_followed(register_project: Project,
                                                                           where: str) -> None:
    project = register_project
    instruction = ("--ap-instruction", "De AP verlangt dat alle ontvangers van de mailing worden geïnformeerd.")
    incident = new_letter(project, *(instruction if where == "new" else ()), "--consequences", "c",
                          "--measures-taken", "m", "--ended-at", "2025-03-07 17:30")
    if where == "update":
        ok(project.run("incident", "update", incident, *instruction, "--format", "json"))
    ok(project.run("incident", "assess", incident, "--ei", "limited", "--confidentiality", "known-recipients",
                   "--integrity", "none", "--availability", "none", "--format", "json"))
    ok(project.run("incident", "decide", incident, "--notify-authority", "no", "--notify-subjects", "no",
                   "--reason", "low", "--format", "json"))
    found = ok(project.run("incident", "show", incident, "--format", "json"))
    assert found["ap_instruction"] == instruction[1]
    refused = project.run("incident", "close", incident)
    assert refused.exit_code == 2
    assert "a decision that follows the authority's instruction on informing the people concerned (art. 34(4)" \
        in refused.stderr
    ap = project.run("incident", "export", incident, "--format", "ap")
    assert ("    Aanwijzing van de Autoriteit Persoonsgegevens over het informeren van de betrokkenen (art. 34 lid 4 "
            f"AVG): {instruction[1]}\n") in ap.stdout
    events = ok(project.run("incident", "show", incident, "--history", "--format", "json"))["events"]
    assert any(e["field"] == "ap_instruction" for e in events) == (where == "update")
