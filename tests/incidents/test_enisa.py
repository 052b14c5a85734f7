"""The ENISA severity: SE = DPC × EI + CB with exact quarters, the bands, and worked examples."""

from __future__ import annotations

from decimal import Decimal

import pytest

from compliance.incidents import enisa
from compliance.incidents.categories import DATA_CATEGORIES, basic_dpc

D = Decimal


# DOMAIN.md 4.6: (DPC, EI, confidentiality, integrity, availability, malicious) -> SE, band
@pytest.mark.parametrize(("dpc", "ei", "conf", "integ", "avail", "mal", "expected", "band"), [
    (1, "1", "0", "0", "0", "0", "1.00", "low"),
    (1, "1", "0.5", "0", "0", "0.5", "2.00", "medium"),  # boundary
    (2, "0.75", "0.25", "0", "0", "0", "1.75", "low"),
    (3, "1", "0", "0", "0", "0", "3.00", "high"),  # boundary
    (4, "0.5", "0.25", "0", "0", "0", "2.25", "medium"),
    (4, "1", "0", "0", "0", "0", "4.00", "very high"),  # boundary
    (4, "1", "0.5", "0.5", "0.5", "0.5", "6.00", "very high"),  # maximum
    (1, "0.25", "0", "0", "0", "0", "0.25", "low"),  # minimum
])
def test_domain_test_vectors(dpc: int, ei: str, conf: str, integ: str, avail: str, mal: str, expected: str,
                             band: str) -> None:
    score = enisa.score(dpc, D(ei), D(conf), D(integ), D(avail), D(mal))
    assert score == D(expected)
    assert f"{score:.2f}" == expected
    assert enisa.band(score) == band


@pytest.mark.parametrize(("score", "band"), [
    ("1.75", "low"), ("2", "medium"), ("2.75", "medium"), ("3", "high"), ("3.75", "high"), ("4", "very high"),
])
def test_bands_include_their_lower_bound(score: str, band: str) -> None:
    assert enisa.band(D(score)) == band


# Worked examples, computed by hand from the method (DOMAIN.md 4.3-4.5 and 9), then through the levels.
WORKED = [
    pytest.param(
        # A letter with a benefit decision goes to a wrong address.
        # social-welfare -> financial, basic DPC 3; name and address on the letter: EI maximum = 1;
        # read by one known recipient: confidentiality 0.25; integrity 0, availability 0, no malice.
        # SE = 3 × 1 + (0.25 + 0 + 0 + 0) = 3.25 -> high
        {"dpc": 3, "ei": "maximum", "confidentiality": "known-recipients", "integrity": "none",
         "availability": "none", "malicious": False}, "3.25", "high", id="misaddressed-benefit-letter"),
    pytest.param(
        # A youth-care worker's unencrypted laptop with case files on children is stolen from a car.
        # social-welfare basic 3, adjusted +1 to 4: vulnerable children (ENISA Annex 1 contextual factor);
        # case files name the child: EI maximum = 1; no evidence the files were opened: confidentiality 0;
        # copies on the server: availability 0; theft is malicious: +0.5.
        # SE = 4 × 1 + (0 + 0 + 0 + 0.5) = 4.5 -> very high
        {"dpc": 4, "ei": "maximum", "confidentiality": "exposed", "integrity": "none", "availability": "recoverable",
         "malicious": True}, "4.50", "very high", id="stolen-youth-care-laptop"),
    pytest.param(
        # A phished employee mailbox, read by the attacker, holds e-mails with residents' BSN and addresses.
        # bsn basic 3 (product default, identity fraud), contact 1: DPC = max = 3; the BSN with name
        # identifies directly: EI 1; attacker could pass it on to anyone: confidentiality 0.5; phishing is
        # malicious: +0.5. SE = 3 × 1 + (0.5 + 0 + 0 + 0.5) = 4.0 -> very high (on the boundary)
        {"dpc": 3, "ei": "maximum", "confidentiality": "unknown-recipients", "integrity": "none",
         "availability": "none", "malicious": True}, "4.00", "very high", id="phished-mailbox-with-bsn"),
    pytest.param(
        # Ransomware encrypts the file share with WMO care assessments; restored from backup after 3 days,
        # no sign of exfiltration. health basic 4; files named by case number, linkable with some effort:
        # EI significant 0.75; confidentiality 0; availability temporary 0.25; malicious +0.5.
        # SE = 4 × 0.75 + (0 + 0 + 0.25 + 0.5) = 3 + 0.75 = 3.75 -> high
        {"dpc": 4, "ei": "significant", "confidentiality": "none", "integrity": "none",
         "availability": "temporary", "malicious": True}, "3.75", "high", id="ransomware-wmo-share"),
    pytest.param(
        # A newsletter goes out with 400 subscribers' addresses in CC instead of BCC.
        # contact basic 1; e-mail addresses often reveal the name: EI maximum 1;
        # disclosed to the known list of recipients: confidentiality 0.25.
        # SE = 1 × 1 + 0.25 = 1.25 -> low
        {"dpc": 1, "ei": "maximum", "confidentiality": "known-recipients", "integrity": "none",
         "availability": "none", "malicious": False}, "1.25", "low", id="newsletter-in-cc"),
    pytest.param(
        # The parking-permit export (licence plates with home street) sat on a public web folder for a week.
        # behavioural basic 2; a plate identifies only via the vehicle register: EI significant 0.75;
        # publicly reachable, unknown readers: confidentiality 0.5.
        # SE = 2 × 0.75 + 0.5 = 1.5 + 0.5 = 2.0 -> medium (on the boundary)
        {"dpc": 2, "ei": "significant", "confidentiality": "unknown-recipients", "integrity": "none",
         "availability": "none", "malicious": False}, "2.00", "medium", id="public-parking-permits"),
    pytest.param(
        # A lost USB stick, AES-encrypted with the key safe, with staff contact details (copies elsewhere).
        # contact basic 1; EI maximum 1; unintelligible, so confidentiality counts 0 (DOMAIN 5.2).
        # SE = 1 × 1 + 0 = 1.0 -> low
        {"dpc": 1, "ei": "maximum", "confidentiality": "exposed", "integrity": "none", "availability": "none",
         "malicious": False, "unintelligible": True}, "1.00", "low", id="encrypted-usb-stick"),
]


@pytest.mark.parametrize(("inputs", "expected", "band"), WORKED)
def test_worked_examples(inputs: dict[str, object], expected: str, band: str) -> None:
    severity = enisa.severity(**inputs)  # type: ignore[arg-type]
    assert severity.score_text == expected
    assert severity.band == band


def test_unintelligible_data_count_no_loss_of_confidentiality() -> None:
    # DPC 3 × EI 1 + confidentiality 0.5 = 3.5, but unintelligible data: 3 × 1 + 0 = 3.0
    plain = enisa.severity(dpc=3, ei="maximum", confidentiality="unknown-recipients", integrity="none",
                           availability="none", malicious=False)
    encrypted = enisa.severity(dpc=3, ei="maximum", confidentiality="unknown-recipients", integrity="none",
                               availability="none", malicious=False, unintelligible=True)
    assert (plain.score, encrypted.score) == (D("3.5"), D("3"))


def test_the_formula_in_words_names_every_part() -> None:
    severity = enisa.severity(dpc=4, ei="limited", confidentiality="known-recipients", integrity="recoverable",
                              availability="temporary", malicious=True)
    # 4 × 0.5 + (0.25 + 0.25 + 0.25 + 0.5) = 2 + 1.25 = 3.25
    assert severity.formula() == "DPC 4 × EI 0.5 + CB 1.25"
    assert severity.score == D("3.25")


@pytest.mark.parametrize(("table", "expected"), [
    (enisa.EASE_OF_IDENTIFICATION, ["0.25", "0.5", "0.75", "1"]),
    (enisa.CONFIDENTIALITY, ["0", "0", "0.25", "0.5"]),
    (enisa.INTEGRITY, ["0", "0", "0.25", "0.5"]),
    (enisa.AVAILABILITY, ["0", "0", "0.25", "0.5"]),
])
def test_levels_map_in_order_to_enisas_values(table: dict[str, Decimal], expected: list[str]) -> None:
    assert list(table.values()) == [D(v) for v in expected]


def test_the_command_line_offers_exactly_the_levels_of_the_method() -> None:
    from compliance.incidents import commands

    assert tuple(enisa.EASE_OF_IDENTIFICATION) == commands._EI_LEVELS
    assert tuple(enisa.CONFIDENTIALITY) == commands._CONFIDENTIALITY
    assert tuple(enisa.INTEGRITY) == commands._INTEGRITY
    assert tuple(enisa.AVAILABILITY) == commands._AVAILABILITY


@pytest.mark.parametrize(("categories", "dpc"), [
    (["contact"], 1), (["contact", "bsn"], 3), (["id-document"], 3), (["social-welfare", "contact"], 3),
    (["health"], 4), (["criminal", "contact"], 4), (["behavioural"], 2), (["credentials"], 2),
])
def test_the_dpc_defaults_to_the_highest_basic_score(categories: list[str], dpc: int) -> None:
    assert basic_dpc(categories) == dpc


def test_data_categories_are_the_domain_names() -> None:
    assert list(DATA_CATEGORIES) == ["contact", "identity", "bsn", "id-document", "credentials", "behavioural",
                                     "financial", "social-welfare", "health", "special", "criminal", "other"]
    assert [c.basic_dpc for c in DATA_CATEGORIES.values()] == [1, 1, 3, 3, 2, 2, 3, 3, 4, 4, 4, 1]
