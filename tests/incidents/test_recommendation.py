"""The recommendation rule (DOMAIN.md section 5): band to advice, with the exceptions of art. 34(3)."""

from __future__ import annotations

import pytest

from compliance.incidents import enisa
from compliance.incidents.recommendation import recommend


def severity(dpc: int, ei: str = "maximum", confidentiality: str = "known-recipients", availability: str = "none",
             malicious: bool = False, unintelligible: bool = False) -> enisa.Severity:
    return enisa.severity(dpc=dpc, ei=ei, confidentiality=confidentiality, integrity="none",
                          availability=availability, malicious=malicious, unintelligible=unintelligible)


@pytest.mark.parametrize(("sev", "authority", "subjects", "rule"), [
    (severity(1), False, False, "low"),  # 1 × 1 + 0.25 = 1.25
    (severity(2), True, False, "medium"),  # 2 × 1 + 0.25 = 2.25
    (severity(3), True, True, "high"),  # 3 × 1 + 0.25 = 3.25
    (severity(4), True, True, "high"),  # 4 × 1 + 0.25 = 4.25, very high
])
def test_by_band(sev: enisa.Severity, authority: bool, subjects: bool, rule: str) -> None:
    advice = recommend(sev, availability="none")
    assert (advice.notify_authority, advice.notify_subjects, advice.public_communication, advice.rule) == (
        authority, subjects, False, rule)


def test_the_summary_names_the_rule_and_the_figures() -> None:
    advice = recommend(severity(3), availability="none")
    assert advice.summary == ("Severity 3.25 (high): DPC 3 × EI 1 + CB 0.25; notify the authority within 72 hours "
                              "and inform the people concerned (art. 34(1)).")
    assert advice.reasons[0].startswith("Authority: notify within 72 hours of becoming aware, because severity 3.25")
    assert advice.reasons[1].endswith("high risk to their rights and freedoms (art. 34(1)).")


def test_low_means_register_only() -> None:
    advice = recommend(severity(1), availability="none")
    assert "register" in advice.summary and "art. 33(5)" in advice.reasons[0]


@pytest.mark.parametrize("availability", ["none", "recoverable"])
def test_unintelligible_without_lasting_loss_of_availability_notifies_neither(availability: str) -> None:
    # DPC 4 × EI 1 + 0 (confidentiality counts 0) = 4.0, very high, yet unlikely to result in a risk
    sev = severity(4, confidentiality="unknown-recipients", availability=availability, unintelligible=True)
    assert sev.band == "very high"
    advice = recommend(sev, availability=availability, unintelligible=True)
    assert (advice.notify_authority, advice.notify_subjects, advice.public_communication) == (False, False, False)
    assert advice.rule == "unintelligible"
    assert "art. 34(3)(a)" in advice.reasons[1]


def test_unintelligible_data_do_not_spare_the_people_a_lasting_loss_of_availability() -> None:
    # Encrypted disk stolen and no backup: 4 × 1 + 0 (unintelligible) + 0.5 (full) = 4.5 -> very high;
    # art. 34(3)(a) covers confidentiality only, so the loss of the data still calls for informing the people
    sev = severity(4, confidentiality="exposed", availability="full", unintelligible=True)
    advice = recommend(sev, availability="full", unintelligible=True)
    assert sev.score_text == "4.50"
    assert (advice.notify_authority, advice.notify_subjects, advice.rule) == (True, True, "high")
    assert "art. 34(3)(a) does not spare informing the people concerned" in advice.reasons[-1]


def test_every_reason_has_its_dutch_counterpart() -> None:
    advice = recommend(severity(1), availability="full", integrity="unrecoverable", unintelligible=True,
                       contained=True, risk_removed=True, people=50_000)
    assert len(advice.reasons) == len(advice.reasons_nl) > 2
    assert advice.summary_nl.startswith("Ernst ")


@pytest.mark.parametrize(("people", "large_scale", "risk_band"), [
    (10_000, 10_000, "medium"), (10_001, 10_000, "high"), (5, 4, "high"),
])
def test_the_band_rises_one_step_only_above_the_threshold(people: int, large_scale: int, risk_band: str) -> None:
    advice = recommend(severity(2), availability="none", people=people, large_scale=large_scale)  # 2.25, medium
    assert advice.risk_band == risk_band


def test_very_high_stays_very_high_above_the_threshold() -> None:
    advice = recommend(severity(4), availability="none", people=20_000)
    assert advice.risk_band == "very high" and "the band is already the highest" in advice.reasons[-1]


def test_risk_removed_means_the_people_need_not_be_informed() -> None:
    advice = recommend(severity(3), availability="none", risk_removed=True)
    assert (advice.notify_authority, advice.notify_subjects, advice.public_communication) == (True, False, False)
    assert advice.rule == "art-34-3-b" and "art. 34(3)(b)" in advice.summary


def test_disproportionate_effort_means_a_public_communication() -> None:
    advice = recommend(severity(4), availability="none", disproportionate_effort=True)
    assert (advice.notify_authority, advice.notify_subjects, advice.public_communication) == (True, False, True)
    assert advice.rule == "art-34-3-c" and "public communication" in advice.summary


def test_exceptions_are_taken_in_the_order_of_the_article() -> None:
    advice = recommend(severity(3), availability="none", risk_removed=True, disproportionate_effort=True)
    assert advice.rule == "art-34-3-b" and not advice.public_communication


@pytest.mark.parametrize("dpc", [1, 2])
def test_an_exception_below_high_changes_nothing_and_says_so(dpc: int) -> None:
    plain = recommend(severity(dpc), availability="none")
    advice = recommend(severity(dpc), availability="none", risk_removed=True)
    assert (advice.notify_authority, advice.notify_subjects) == (plain.notify_authority, plain.notify_subjects)
    assert advice.reasons[-1].startswith("The art. 34(3) exception given (risk-removed) changes nothing here")
