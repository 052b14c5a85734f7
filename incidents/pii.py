"""The guard that keeps personal data of the people concerned out of the register's text.

The register holds counts and categories only. Text that contains a number that passes the Dutch BSN
eleven-test, an e-mail address (also with a non-ASCII domain), an IBAN with a valid check (both
validated with python-stdnum) or a Dutch phone number is refused; the message names the field and
what was found, masked. Separators are normalised first: a BSN written 123.456.782, 123 456 782,
123-456-782 or with a non-breaking space, an IBAN as NL91-ABNA-... or NL 91 ABNA ... are found too.
A recorded reason (`--force --force-reason`) may override the refusal; the override becomes an event
in the audit trail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

#: Spaces and dashes people type or paste (no-break, narrow, figure and thin spaces; hyphens, en dash,
#: minus), each made a plain space or hyphen before matching.
_SEPARATOR_FORMS = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2007": " ", "\u2009": " ", "\u2002": " ",
                                  "\u2003": " ", "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-",
                                  "\u2212": "-"})
_S = r"[ .\-]"  # one separator between groups of digits
# 9 digits, together or grouped as people write a BSN (123.456.782, 123 456 782, 1234.56.789, 12-34-56-782),
# not part of a longer number
_BSN = re.compile(rf"(?<![\d])(?<!\d{_S})(\d{{9}}|\d{{3}}{_S}\d{{3}}{_S}\d{{3}}|\d{{4}}{_S}\d{{2}}{_S}\d{{3}}|"
                  rf"\d{{2}}{_S}\d{{2}}{_S}\d{{2}}{_S}\d{{3}})(?!{_S}?\d)")
# a letter or digit of any script, for domains such as gemeënte.nl or xn--...
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
_EMAIL = re.compile(rf"(?<![\w.+-])[\w.+-]+@{_LABEL}(?:\.{_LABEL})*\.(?:[^\W\d_]{{2,}}|xn--[a-z0-9-]+)(?!\w)",
                    re.IGNORECASE)
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})[ .\-]?(\d{2})")
# a Dutch phone number: +31 / 0031 (optionally with (0)) or 0, then 9 digits with single separators
_PHONE = re.compile(rf"(?<![\w+])(?:(?:\+|00)31{_S}?(?:\(0\){_S}?)?|\(?0)((?:\d\)?{_S}?){{8}}\d)(?!{_S}?\d)")
_DATE = re.compile(r"^\d{2}[-./ ]\d{2}[-./ ]\d{4}")
#: Numbers of services, not of people: free (0800) and paid information numbers (090x).
_SERVICE_PREFIXES = ("800", "900", "906", "909")

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
    """Something in a text field that looks like personal data."""

    field: str
    kind: str  # BSN | e-mail address | IBAN | phone number
    masked: str

    def __str__(self) -> str:
        return f"{self.field} contains what looks like {_ARTICLE[self.kind]} {self.kind} ({self.masked})"


_ARTICLE = {"BSN": "a", "e-mail address": "an", "IBAN": "an", "phone number": "a"}


def normalised(text: str) -> str:
    """Text with the exotic spaces and dashes made plain, so that separators match one pattern."""
    return text.translate(_SEPARATOR_FORMS)


def passes_eleven_test(digits: str) -> bool:
    """The BSN eleven-test: 9·d1 + 8·d2 + … + 2·d8 − 1·d9 is a multiple of 11 (and not all zeros)."""
    if len(digits) != 9 or not digits.isdigit() or int(digits) == 0:
        return False
    from stdnum.nl import bsn  # imported when a text is checked: not on every command's start-up

    return bool(bsn.is_valid(digits))


def valid_iban(text: str) -> bool:
    """ISO 13616: the country's length and format and the mod-97 check; spaces, dashes and dots allowed."""
    from stdnum import iban

    return bool(iban.is_valid(normalised(text)))


def _ibans(text: str) -> list[tuple[str, int, int]]:
    """The valid IBANs in text, each with where it starts and ends."""
    found = []
    for match in _IBAN_START.finditer(text):
        length = IBAN_LENGTHS.get(match.group(1).upper())
        if length is None:
            continue
        chars: list[str] = []
        i = match.start()
        # gather alphanumerics, allowing single separators of the printed form (NL91 ABNA 0417 1643 00,
        # NL 91 ABNA..., NL91-ABNA-...)
        while i < len(text) and len(chars) < length:
            ch = text[i]
            if ch.isalnum() and ch.isascii():
                chars.append(ch)
            elif not (ch in " .-" and i + 1 < len(text) and text[i + 1].isalnum()):
                break
            i += 1
        candidate = "".join(chars)
        if len(candidate) == length and valid_iban(candidate) and (i >= len(text) or not text[i].isalnum()):
            found.append((candidate.upper(), match.start(), i))
    return found


def _phones(text: str) -> list[str]:
    """Dutch phone numbers as 0 and 9 digits (06..., 020...); not dates, not service numbers."""
    found = []
    for match in _PHONE.finditer(text):
        if _DATE.match(match.group(0).lstrip("(")):
            continue
        digits = "0" + re.sub(r"\D", "", match.group(1))
        if len(digits) == 10 and digits[1] != "0" and not digits[1:].startswith(_SERVICE_PREFIXES):
            found.append(digits)
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
    text = normalised(text)
    findings = []
    for match in _BSN.finditer(text):
        digits = re.sub(r"\D", "", match.group(1))
        if passes_eleven_test(digits):
            findings.append(Finding(field, "BSN", mask_digits(digits)))
    findings += [Finding(field, "e-mail address", mask_email(m.group(0))) for m in _EMAIL.finditer(text)]
    ibans = _ibans(text)
    findings += [Finding(field, "IBAN", mask_iban(iban)) for iban, _, _ in ibans]
    for _, start, end in ibans:  # the account number inside an IBAN is not also a phone number
        text = text[:start] + "#" * (end - start) + text[end:]
    findings += [Finding(field, "phone number", mask_digits(phone)) for phone in _phones(text)]
    return findings


def scan_fields(fields: Mapping[str, str | None]) -> list[Finding]:
    """Every finding in the given text fields, in field order."""
    return [f for name, text in fields.items() if text for f in scan(name, text)]
