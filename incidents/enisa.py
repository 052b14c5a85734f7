"""The ENISA (2013) severity of a personal-data breach: SE = DPC × EI + CB, with exact quarters.

Source: ENISA, *Recommendations for a methodology of the assessment of severity of personal data
breaches*, working document v1.0, December 2013 (https://www.enisa.europa.eu/publications/dbn-severity).

- DPC, Data Processing Context, 1-4: the highest score of the data involved (Annex 1), possibly adjusted
  for context with a reason.
- EI, Ease of Identification, 0.25 / 0.5 / 0.75 / 1 (Annex 2): a multiplier of DPC.
- CB, Circumstances of Breach: loss of confidentiality, integrity and availability (each 0, 0.25 or 0.5)
  plus malicious intent (0.5). CB only adds.
- Bands: SE < 2 low, 2 <= SE < 3 medium, 3 <= SE < 4 high, SE >= 4 very high (lower bound inclusive).

All arithmetic is in `Decimal`: every input is a multiple of 0.25, so scores and band limits compare
exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from compliance.incidents.errors import InvalidInput

Q = Decimal("0.25")
HALF = Decimal("0.5")
ZERO = Decimal("0")

#: Ease of identification (Annex 2): from "extremely difficult" to "directly from the breached data".
EASE_OF_IDENTIFICATION: Mapping[str, Decimal] = {
    "negligible": Decimal("0.25"), "limited": Decimal("0.5"), "significant": Decimal("0.75"), "maximum": Decimal("1"),
}
#: Loss of confidentiality: none, or exposed without evidence of unlawful processing (0); disclosed to
#: known recipients (0.25); disclosed to an unknown number of recipients (0.5).
CONFIDENTIALITY: Mapping[str, Decimal] = {
    "none": ZERO, "exposed": ZERO, "known-recipients": Q, "unknown-recipients": HALF,
}
#: Loss of integrity: none, or altered without identified incorrect use (0); altered and possibly misused
#: but recoverable (0.25); altered, possibly misused and not recoverable (0.5).
INTEGRITY: Mapping[str, Decimal] = {
    "none": ZERO, "altered": ZERO, "recoverable": Q, "unrecoverable": HALF,
}
#: Loss of availability: none, or recoverable without difficulty (0); temporary (0.25); full (0.5).
AVAILABILITY: Mapping[str, Decimal] = {
    "none": ZERO, "recoverable": ZERO, "temporary": Q, "full": HALF,
}
MALICIOUS_INTENT = HALF

BANDS = ("low", "medium", "high", "very high")
_BAND_FLOORS = ((Decimal(4), "very high"), (Decimal(3), "high"), (Decimal(2), "medium"))


def score(dpc: int | Decimal, ei: Decimal, confidentiality: Decimal = ZERO, integrity: Decimal = ZERO,
          availability: Decimal = ZERO, malicious: Decimal = ZERO) -> Decimal:
    """SE = DPC × EI + CB, where CB = confidentiality + integrity + availability + malicious intent."""
    return Decimal(dpc) * ei + confidentiality + integrity + availability + malicious


def band(severity: Decimal) -> str:
    """low, medium, high or very high; each band includes its lower bound (2.0 is medium)."""
    return next((name for floor, name in _BAND_FLOORS if severity >= floor), "low")


def number(value: Decimal | int) -> str:
    """A score part as people write it: 1, 0.75, 3.25 (no trailing zeros)."""
    text = format(Decimal(value), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True, slots=True)
class Severity:
    """A computed ENISA severity with its parts."""

    dpc: int
    ei: Decimal
    confidentiality: Decimal
    integrity: Decimal
    availability: Decimal
    malicious: Decimal

    @property
    def cb(self) -> Decimal:
        return self.confidentiality + self.integrity + self.availability + self.malicious

    @property
    def score(self) -> Decimal:
        return score(self.dpc, self.ei, self.confidentiality, self.integrity, self.availability, self.malicious)

    @property
    def band(self) -> str:
        return band(self.score)

    @property
    def score_text(self) -> str:
        """The score with two decimals, as stored: "3.25"."""
        return f"{self.score:.2f}"

    def formula(self) -> str:
        """The sum in words, e.g. DPC 3 × EI 1 + CB 0.25."""
        return f"DPC {self.dpc} × EI {number(self.ei)} + CB {number(self.cb)}"


def level(table: Mapping[str, Decimal], value: str, option: str) -> Decimal:
    """The score of a named level, or an InvalidInput listing the levels."""
    try:
        return table[value]
    except KeyError:
        raise InvalidInput(f"unknown {option} level '{value}'; choose from: {', '.join(table)}") from None


def severity(*, dpc: int, ei: str, confidentiality: str, integrity: str, availability: str, malicious: bool,
             unintelligible: bool = False) -> Severity:
    """The severity from named levels. For unintelligible data, loss of confidentiality counts 0.

    (Unintelligible: encrypted or hashed with a state-of-the-art method and the key not compromised,
    ENISA's CB table, confidentiality 0; product rule, DOMAIN section 5.2.)
    """
    if isinstance(dpc, bool) or not isinstance(dpc, int) or not 1 <= dpc <= 4:
        raise InvalidInput(f"the DPC must be 1, 2, 3 or 4, not '{dpc}'")
    conf = level(CONFIDENTIALITY, confidentiality, "confidentiality")
    return Severity(
        dpc=dpc,
        ei=level(EASE_OF_IDENTIFICATION, ei, "ease-of-identification (--ei)"),
        confidentiality=ZERO if unintelligible else conf,
        integrity=level(INTEGRITY, integrity, "integrity"),
        availability=level(AVAILABILITY, availability, "availability"),
        malicious=MALICIOUS_INTENT if malicious else ZERO,
    )
