"""The guard that keeps personal data of the people concerned out of the register's free text.

The register holds counts and categories only. Free text that contains something that passes the
Dutch BSN eleven-test, an e-mail address, or an IBAN with a valid mod-97 check is refused; the
message names the field and what was found, masked. A recorded reason (`--force --force-reason`)
may override the refusal; the override becomes an event in the audit trail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# 9 digits, written together or as 1234.56.789 / 1234 56 789, not part of a longer number
_BSN = re.compile(r"(?<![\d.,-])(\d{4}[. ]?\d{2}[. ]?\d{3})(?![\d]|[.,]\d)")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}\b")
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})(\d{2})")

#: IBAN lengths per country (ISO 13616 registry); a code not listed is not taken for an IBAN.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


@dataclass(frozen=True, slots=True)
class Finding:
    """Something in a free-text field that looks like personal data."""

    field: str
    kind: str  # BSN | e-mail address | IBAN
    masked: str

    def __str__(self) -> str:
        return f"{self.field} contains what looks like {_ARTICLE[self.kind]} {self.kind} ({self.masked})"


_ARTICLE = {"BSN": "a", "e-mail address": "an", "IBAN": "an"}


def passes_eleven_test(digits: str) -> bool:
    """The BSN eleven-test: 9·d1 + 8·d2 + … + 2·d8 − 1·d9 is a multiple of 11 (and not all zeros)."""
    if len(digits) != 9 or not digits.isdigit() or int(digits) == 0:
        return False
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - int(digits[8])
    return total % 11 == 0


def valid_iban(text: str) -> bool:
    """ISO 13616: the right length for the country and the mod-97 check (rearranged number mod 97 == 1)."""
    iban = text.replace(" ", "").upper()
    if len(iban) != IBAN_LENGTHS.get(iban[:2], -1) or not iban.isalnum() or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _ibans(text: str) -> list[str]:
    found = []
    for match in _IBAN_START.finditer(text):
        length = IBAN_LENGTHS.get(match.group(1).upper())
        if length is None:
            continue
        chars: list[str] = []
        i = match.start()
        # gather alphanumerics, allowing the single spaces of the printed form (NL91 ABNA 0417 1643 00)
        while i < len(text) and len(chars) < length:
            ch = text[i]
            if ch.isalnum() and ch.isascii():
                chars.append(ch)
            elif not (ch == " " and i + 1 < len(text) and text[i + 1].isalnum()):
                break
            i += 1
        candidate = "".join(chars)
        if len(candidate) == length and valid_iban(candidate) and (i >= len(text) or not text[i].isalnum()):
            found.append(candidate.upper())
    return found


def mask_digits(digits: str) -> str:
    return "*" * (len(digits) - 2) + digits[-2:]


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[0]}***@{domain}"


def mask_iban(iban: str) -> str:
    return f"{iban[:4]}{'*' * (len(iban) - 6)}{iban[-2:]}"


def scan(field: str, text: str) -> list[Finding]:
    """What in text looks like personal data of a person, masked."""
    findings = []
    for match in _BSN.finditer(text):
        digits = re.sub(r"\D", "", match.group(1))
        if passes_eleven_test(digits):
            findings.append(Finding(field, "BSN", mask_digits(digits)))
    findings += [Finding(field, "e-mail address", mask_email(m.group(0))) for m in _EMAIL.finditer(text)]
    findings += [Finding(field, "IBAN", mask_iban(iban)) for iban in _ibans(text)]
    return findings


def scan_fields(fields: Mapping[str, str | None]) -> list[Finding]:
    """Every finding in the given free-text fields, in field order."""
    return [f for name, text in fields.items() if text for f in scan(name, text)]
