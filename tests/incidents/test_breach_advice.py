"""The advice after the EDPB's risk method (issue 14): the six cases it got wrong, now right, through the CLI,
and the worked examples of docs/breach-register.md, read from the doc itself so the two cannot drift."""

from __future__ import annotations

import re
import shlex
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from compliance.incidents.enisa import AVAILABILITY, CONFIDENTIALITY, INTEGRITY
from tests.conftest import Project
from tests.incidents.conftest import INCIDENT_SETTINGS, ok, stored

DOC = Path(__file__).parents[2] / "docs" / "breach-register.md"
CIRCUMSTANCES = {"confidentiality": CONFIDENTIALITY, "integrity": INTEGRITY, "availability": AVAILABILITY}


def register(project: Project, categories: list[str], people: int, assess_flags: list[str]) -> str:
    """A breach with the categories and number of people given; its nature follows from the circumstances."""
    levels = {aspect: assess_flags[assess_flags.index(f"--{aspect}") + 1] for aspect in CIRCUMSTANCES}
    nature = [aspect for aspect, value in levels.items() if value != "none"] or ["confidentiality"]
    args = ["--title", "A breach", "--aware-at", "2025-03-07 16:40", "--occurred-at", "2025-03-06 09:00",
            "--subjects", str(people), "--description", "What happened, without personal data."]
    args += [x for n in nature for x in ("--nature", n)] + [x for c in categories for x in ("--data-category", c)]
    return str(ok(project.run("incident", "new", *args, "--format", "json"))["id"])


def assess(project: Project, categories: list[str], people: int, flags: str, *extra: str) -> dict[str, Any]:
    split = shlex.split(flags)
    incident = register(project, categories, people, split)
    return dict(ok(project.run("incident", "assess", incident, *split, *extra, "--format", "json")))


def advice(a: dict[str, Any]) -> tuple[bool, bool, bool]:
    return a["notify_authority"], a["notify_subjects"], a["public_communication"]


def mentions(a: dict[str, Any], *parts: str) -> bool:
    return any(all(part in reason for part in parts) for reason in a["reasons"])


# -- the six wrong cases of issue 14 -------------------------------------------------------------------------


def test_1_integrity_loss_under_encryption_is_notified(project: Project) -> None:
    # Health data of 5,000 people, encrypted at rest, altered beyond repair by ransomware:
    # 4 × 1 + (0 unintelligible + 0.5 unrecoverable + 0.5 malicious) = 5.0, very high.
    # Old advice: notify neither (the unintelligible shortcut). New: AP and the people.
    a = assess(project, ["health"], 5000, "--ei maximum --confidentiality none --integrity unrecoverable "
                                          "--availability none --malicious --unintelligible")
    assert (a["score"], a["band"], a["rule"]) == (5.0, "very high", "high")
    assert advice(a) == (True, True, False)
    assert mentions(a, "Unintelligible data protect confidentiality only",
                    "altered and possibly misused beyond recovery", "art. 34(3)(a) does not spare")


def test_2_art_34_3_a_does_not_cure_availability_harm(project: Project) -> None:
    # 4 × 1 + (0 + 0 + 0.5 full) = 4.5, very high. Old: AP yes, people no (art. 34(3)(a)). New: both.
    a = assess(project, ["health"], 300, "--ei maximum --confidentiality none --integrity none --availability full "
                                         "--unintelligible")
    assert (a["score"], a["band"], a["rule"]) == (4.5, "very high", "high")
    assert advice(a) == (True, True, False)
    assert mentions(a, "Unintelligible data protect confidentiality only", "the data were lost for good",
                    "art. 34(3)(a) does not spare informing the people concerned")


def test_3a_a_low_band_with_a_malicious_known_recipient_is_notified(project: Project) -> None:
    # An employee took the customer list for his own business: 1 × 1 + (0.25 + 0.5) = 1.75, low.
    # Old: register only. New: notify the AP (likelihood), the people not (no high risk).
    a = assess(project, ["contact"], 800, "--ei maximum --confidentiality known-recipients --integrity none "
                                          "--availability none --malicious")
    assert (a["score"], a["band"], a["risk_band"], a["rule"]) == (1.75, "low", "low", "malicious")
    assert advice(a) == (True, False, False)
    assert a["reasons"][0].startswith("Authority: notify within 72 hours of becoming aware: severity 1.75 (low) "
                                      "alone would mean register only, but the data are in the hands of someone who "
                                      "means harm")


def test_3b_a_medium_band_contained_by_a_trusted_recipient_is_register_only(project: Project) -> None:
    # A misdirected file deleted by a secrecy-bound recipient, confirmed: 2 × 1 + 0.25 = 2.25, medium.
    # Old: notify the AP. New: register only (EDPB 9/2022 §IV.B).
    a = assess(project, ["contact", "behavioural"], 300, "--ei maximum --confidentiality known-recipients "
                                                         "--integrity none --availability none --contained")
    assert (a["score"], a["band"], a["rule"], a["contained"]) == (2.25, "medium", "contained", True)
    assert advice(a) == (False, False, False)
    assert mentions(a, "contained before any misuse", "trusted recipient", "EDPB Guidelines 9/2022 §IV.B")


def test_3b_containment_does_not_count_when_the_intent_was_malicious(project: Project) -> None:
    a = assess(project, ["contact", "behavioural"], 300, "--ei maximum --confidentiality known-recipients "
                                                         "--integrity none --availability none --contained "
                                                         "--malicious")
    assert (a["band"], a["rule"]) == ("medium", "medium")  # 2 × 1 + 0.75 = 2.75
    assert advice(a) == (True, False, False)
    assert mentions(a, "Containment (--contained) does not make this a register-only breach, because the intent "
                       "was malicious")


def test_4_a_stolen_laptop_with_120000_residents_rises_one_step(project: Project) -> None:
    # Name, address and date of birth, not encrypted: 1 × 1 + (0 exposed + 0.5 malicious) = 1.5, low.
    # Old: low, nothing to report. New: above 10,000 people one step up: medium, notify the AP.
    a = assess(project, ["contact", "identity"], 120_000, "--ei maximum --confidentiality exposed --integrity none "
                                                          "--availability none --malicious")
    assert (a["score"], a["band"], a["risk_band"], a["rule"]) == (1.5, "low", "medium", "medium")
    assert (a["people"], a["large_scale"]) == (120_000, 10_000)
    assert advice(a) == (True, False, False)
    assert mentions(a, "Scale: 120,000 people concerned is more than incidents.large_scale (10,000), so the band "
                       "rises one step: low → medium")


@pytest.mark.parametrize(("large_scale", "band", "authority"), [(20_000, "low", False), (12_000, "medium", True)])
def test_4_the_large_scale_threshold_is_a_setting(project: Project, large_scale: int, band: str,
                                                  authority: bool) -> None:
    project.write_config(INCIDENT_SETTINGS + f"  large_scale: {large_scale}\n")
    a = assess(project, ["contact"], 15_000, "--ei maximum --confidentiality known-recipients --integrity none "
                                             "--availability none")
    assert (a["band"], a["risk_band"], a["notify_authority"], a["large_scale"]) == ("low", band, authority,
                                                                                    large_scale)


def test_5_the_bsn_scores_dpc_3_with_the_reason_shown(project: Project) -> None:
    # Old: DPC 2 (simple data), 2 × 1 + 1 = 3.0. New: DPC 3, 3 × 1 + 1 = 4.0, with the reason.
    a = assess(project, ["bsn", "contact"], 250, "--ei maximum --confidentiality unknown-recipients "
                                                 "--integrity none --availability none --malicious")
    assert (a["dpc"], a["dpc_basic"], a["score"], a["band"]) == (3, 3, 4.0, "very high")
    assert mentions(a, "DPC 3 from bsn", "identity fraud", "UAVG art. 46")
    assert any(r.startswith("DPC 3 door burgerservicenummer: met het burgerservicenummer (BSN) is "
                            "identiteitsfraude mogelijk") for r in a["reasons_nl"])


def test_6_a_decision_contradicting_the_assessment_is_refused(project: Project) -> None:
    # Old: accepted, and the AP export answered 6.1 "Nee" and 8.2 "onbegrijpelijk" for the same breach.
    a = assess(project, ["social-welfare", "contact"], 1, "--ei maximum --confidentiality known-recipients "
                                                          "--integrity none --availability none")
    before = stored(project.db_url)
    result = project.run("incident", "decide", a["id"], "--notify-authority", "yes", "--notify-subjects", "no",
                         "--subjects-exception", "unintelligible", "--reason", "It was encrypted.")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --subjects-exception unintelligible contradicts the assessment of {a['id']}: the assessment says "
        "the data were intelligible (it was made without --unintelligible), so art. 34(3)(a) cannot apply; if they "
        "were encrypted or hashed with the key safe, assess again with --unintelligible first\n")
    assert stored(project.db_url) == before


def test_6_art_34_3_a_is_refused_against_harm_to_availability(project: Project) -> None:
    a = assess(project, ["social-welfare"], 900, "--ei maximum --confidentiality none --integrity none "
                                                 "--availability full --unintelligible")
    result = project.run("incident", "decide", a["id"], "--notify-authority", "yes", "--notify-subjects", "no",
                         "--subjects-exception", "unintelligible", "--reason", "It was encrypted.")
    assert result.exit_code == 2
    assert ("art. 34(3)(a) covers data unintelligible to whoever obtained them (confidentiality), but the "
            "assessment says the data were lost for good (integrity none, availability full)") in result.stderr


def test_6_an_exception_the_assessment_supports_is_accepted(project: Project) -> None:
    a = assess(project, ["social-welfare"], 900, "--ei maximum --confidentiality exposed --integrity none "
                                                 "--availability none --unintelligible")
    decided = ok(project.run("incident", "decide", a["id"], "--notify-authority", "no", "--notify-subjects", "no",
                             "--subjects-exception", "unintelligible", "--reason", "Encrypted, key safe.",
                             "--format", "json"))
    assert decided["decision"]["subjects_exception"] == "unintelligible"


# -- Dutch for the privacy officer and the AP ---------------------------------------------------------------


def test_the_advice_is_printed_in_dutch_with_lang_nl(project: Project) -> None:
    flags = shlex.split("--ei maximum --confidentiality exposed --integrity none --availability none --malicious")
    incident = register(project, ["contact", "identity"], 120_000, flags)
    result = project.run("incident", "assess", incident, *flags, "--lang", "nl")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"{incident}: ernst 1,50 (laag) = DPC 1 × EI 1 + CB 0,5; door de omvang gemiddeld",
                         "advies: melden aan de autoriteit: ja; betrokkenen informeren: nee"]
    assert ("  - Omvang: 120.000 betrokkenen is meer dan incidents.large_scale (10.000), dus de ernst gaat één stap "
            "omhoog: laag → gemiddeld") in result.stdout
    for english in ("Authority:", "People concerned:", "Scale:", "severity", "because"):
        assert english not in result.stdout


def test_the_ap_export_gives_the_reasons_in_dutch(project: Project) -> None:
    a = assess(project, ["contact", "identity"], 120_000, "--ei maximum --confidentiality exposed --integrity none "
                                                          "--availability none --malicious")
    result = project.run("incident", "export", a["id"], "--format", "ap")
    assert result.exit_code == 0, result.stderr
    section = result.stdout.split("9.1 Overige informatie", 1)[1]
    assert "Beoordeling: Autoriteit: melden binnen 72 uur na het bekend worden" in section
    assert "Omvang: 120.000 betrokkenen" in section
    for english in ("Authority:", "People concerned:", "Scale:", "because", "severity"):
        assert english not in section
    assert "Door de omvang (120.000 betrokkenen, meer dan 10.000) één stap hoger: gemiddeld." in result.stdout


def test_the_new_facts_are_in_the_audit_chain(project: Project) -> None:
    a = assess(project, ["contact"], 300, "--ei maximum --confidentiality known-recipients --integrity none "
                                          "--availability none --contained")
    shown = ok(project.run("incident", "show", a["id"], "--format", "json", "--history"))
    assessed = [e for e in shown["events"] if e["action"] == "assess" and e["field"] == "assessment"]
    assert assessed[-1]["new"]["contained"] is True
    assert assessed[-1]["new"]["risk_band"] == "low" and assessed[-1]["new"]["reasons_nl"]
    assert project.run("incident", "verify").exit_code == 0


# -- the worked examples of docs/breach-register.md -----------------------------------------------------------


def worked_examples() -> list[Any]:
    text = DOC.read_text("utf-8")
    table = text.split("<!-- worked-examples:start -->", 1)[1].split("<!-- worked-examples:end -->", 1)[0]
    rows = [line for line in table.strip().splitlines()[2:] if line.startswith("|")]
    assert len(rows) >= 10, "the worked-example table of docs/breach-register.md is missing or short"
    params = []
    for line in rows:
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 12, line
        params.append(pytest.param(*cells, id=re.sub(r"\W+", "-", cells[0]).strip("-")[:50]))
    return params


@pytest.mark.parametrize(("example", "categories", "people", "flags", "arithmetic", "score", "band", "adjustments",
                          "risk_band", "authority", "subjects", "rule"), worked_examples())
def test_the_worked_examples_of_the_doc(project: Project, example: str, categories: str, people: str, flags: str,
                                        arithmetic: str, score: str, band: str, adjustments: str, risk_band: str,
                                        authority: str, subjects: str, rule: str) -> None:
    parts = re.fullmatch(r"DPC (\d) × EI ([\d.]+) \+ CB ([\d.]+)", arithmetic)
    assert parts, arithmetic
    dpc, ei, cb = (Decimal(p) for p in parts.groups())
    assert f"{dpc * ei + cb:.2f}" == score, f"{example}: the doc's arithmetic is wrong"
    a = assess(project, [c.strip() for c in categories.split(",")], int(people), flags)
    assert (a["formula"], f"{Decimal(str(a['score'])):.2f}", a["band"], a["risk_band"], a["rule"]) == (
        arithmetic, score, band, risk_band, rule)
    people_advice = "public" if a["public_communication"] else ("yes" if a["notify_subjects"] else "no")
    assert ("yes" if a["notify_authority"] else "no", people_advice) == (authority, subjects)
