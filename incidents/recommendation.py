"""The product's notification recommendation: the ENISA severity turned into advice on art. 33 and 34.

ENISA scores severity; it does not decide the GDPR questions. The rule (docs/breach-register.md,
"The recommendation"):

1. Every breach is documented in the register, notified or not (art. 33(5); EDPB Guidelines 01/2021 §15).
2. Unintelligible data (state-of-the-art encryption or hashing, key not compromised) with no lasting
   loss of availability (not affected, or recovered from a backup): unlikely to result in a risk, so
   notify neither the authority nor the people concerned.
3. Otherwise by band: low → register only; medium → notify the authority, not the people; high and
   very high → notify the authority and inform the people (art. 34(1)) unless an art. 34(3) exception
   applies: (a) unintelligible data, (b) the risk removed by measures taken since, (c) informing each
   person would take disproportionate effort, then a public communication instead.
4. Each piece of advice comes with its reason in one sentence naming the rule and the figures.

The privacy officer decides; the recommendation is advice she may depart from with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from compliance.incidents.enisa import Severity

#: Availability levels that are no lasting loss: not affected, or recovered without difficulty.
NO_LASTING_AVAILABILITY_LOSS = ("none", "recoverable")

EXCEPTIONS = ("unintelligible", "risk-removed", "disproportionate-effort")


@dataclass(frozen=True, slots=True)
class Recommendation:
    notify_authority: bool
    notify_subjects: bool
    public_communication: bool
    rule: str  # unintelligible | low | medium | high | art-34-3-a | art-34-3-b | art-34-3-c
    summary: str
    reasons: tuple[str, ...]


def recommend(severity: Severity, *, availability: str, unintelligible: bool = False, risk_removed: bool = False,
              disproportionate_effort: bool = False) -> Recommendation:
    """Advice on notifying the authority (art. 33) and informing the people concerned (art. 34)."""
    figures = f"Severity {severity.score_text} ({severity.band}): {severity.formula()}"
    sev = f"severity {severity.score_text} ({severity.band})"
    given = [name for name, flag in zip(EXCEPTIONS, (unintelligible, risk_removed, disproportionate_effort),
                                        strict=True) if flag]

    if unintelligible and availability in NO_LASTING_AVAILABILITY_LOSS:
        return Recommendation(
            False, False, False, "unintelligible",
            f"{figures}; the data were unintelligible to others and availability was not lastingly lost, so the "
            "breach is unlikely to result in a risk: record it in the register only, notify neither the authority "
            "nor the people concerned (art. 33(1), art. 34(3)(a)).",
            (
                "Authority: no notification, because the data were unintelligible to unauthorised persons "
                f"(encrypted or hashed, key safe) and availability was {_availability_words(availability)}, so "
                "the breach is unlikely to result in a risk (art. 33(1)); it stays documented in the register "
                "(art. 33(5)).",
                "People concerned: not informed, because the data were unintelligible to unauthorised persons "
                "(art. 34(3)(a)).",
            ),
        )

    if severity.band == "low":
        return Recommendation(
            False, False, False, "low",
            f"{figures}; unlikely to result in a risk: record it in the register only (art. 33(1), art. 33(5)).",
            (
                f"Authority: no notification, because {sev} is below 2, so the breach is unlikely to result in "
                "a risk (art. 33(1)); it stays documented in the register (art. 33(5)).",
                f"People concerned: not informed, because {sev} is no high risk (art. 34(1)).",
                *_unused_exceptions(given, sev),
            ),
        )

    authority = (f"Authority: notify within 72 hours of becoming aware, because {sev} means the breach is likely "
                 "to result in a risk to the people concerned (art. 33(1)).")
    if severity.band == "medium":
        return Recommendation(
            True, False, False, "medium",
            f"{figures}; notify the authority within 72 hours (art. 33(1)); the people concerned need not be "
            "informed (no high risk, art. 34(1)).",
            (authority, f"People concerned: not required, because {sev} is a risk but no high risk (art. 34(1)).",
             *_unused_exceptions(given, sev)),
        )

    # high or very high: art. 34(1) unless an exception of art. 34(3) applies, in the order of the article
    if unintelligible:
        return Recommendation(
            True, False, False, "art-34-3-a",
            f"{figures}; notify the authority within 72 hours (art. 33(1)); informing the people concerned is not "
            "required because the data were unintelligible to unauthorised persons (art. 34(3)(a)).",
            (authority, f"People concerned: not required despite {sev}, because the data were unintelligible to "
                        "unauthorised persons, e.g. encrypted with the key safe (art. 34(3)(a)); availability was "
                        f"{_availability_words(availability)}, so the authority is still notified."),
        )
    if risk_removed:
        return Recommendation(
            True, False, False, "art-34-3-b",
            f"{figures}; notify the authority within 72 hours (art. 33(1)); informing the people concerned is not "
            "required because measures taken since ensure the high risk is no longer likely to materialise "
            "(art. 34(3)(b)).",
            (authority, f"People concerned: not required despite {sev}, because measures taken since ensure the "
                        "high risk is no longer likely to materialise (art. 34(3)(b))."),
        )
    if disproportionate_effort:
        return Recommendation(
            True, False, True, "art-34-3-c",
            f"{figures}; notify the authority within 72 hours (art. 33(1)) and make a public communication "
            "instead of informing each person, which would take disproportionate effort (art. 34(3)(c)).",
            (authority, f"People concerned: {sev} is a high risk, but informing each of them would take "
                        "disproportionate effort, so make a public communication or a similarly effective "
                        "measure instead (art. 34(3)(c))."),
        )
    return Recommendation(
        True, True, False, "high",
        f"{figures}; notify the authority within 72 hours and inform the people concerned (art. 34(1)).",
        (authority, f"People concerned: inform them without undue delay, because {sev} means a high risk to "
                    "their rights and freedoms (art. 34(1))."),
    )


def _availability_words(availability: str) -> str:
    return {"none": "not affected", "recoverable": "recovered without difficulty",
            "temporary": "temporarily lost", "full": "fully lost"}.get(availability, availability)


def _unused_exceptions(given: list[str], sev: str) -> tuple[str, ...]:
    if not given:
        return ()
    several = len(given) > 1
    return (f"The art. 34(3) exception{'s' if several else ''} given ({', '.join(given)}) "
            f"{'change' if several else 'changes'} nothing here: {'they concern' if several else 'it concerns'} "
            f"informing the people concerned, which {sev} does not require.",)
