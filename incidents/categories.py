"""The names the register uses: data categories with their ENISA basic score, people, breach natures.

The data-category names and their basic Data Processing Context (DPC) scores follow ENISA's
Annex 1 (simple 1, behavioural 2, financial 3, sensitive 4) with the product defaults for the Dutch
citizen service number (2), identity documents (3) and credentials (2); see docs/breach-register.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from compliance.errors import did_you_mean
from compliance.incidents.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class DataCategory:
    name: str
    what: str
    enisa_type: str
    basic_dpc: int


DATA_CATEGORIES: Mapping[str, DataCategory] = {c.name: c for c in (
    DataCategory("contact", "name, address, phone, e-mail (NAW)", "simple", 1),
    DataCategory("identity", "date of birth, gender, nationality, photos", "simple", 1),
    DataCategory("bsn", "citizen service number (burgerservicenummer)", "simple, identity-fraud risk", 2),
    DataCategory("id-document", "copy of passport, ID card, driving licence", "simple, identity-fraud risk", 3),
    DataCategory("credentials", "user names with passwords, tokens", "inherits what they open", 2),
    DataCategory("behavioural", "location, traffic data, habits, preferences", "behavioural", 2),
    DataCategory("financial", "income, bank accounts, transactions, debts, invoices", "financial", 3),
    DataCategory("social-welfare", "benefits, debt counselling, youth care, WMO (sociaal domein)", "financial", 3),
    DataCategory("health", "medical and care data (art. 9)", "sensitive", 4),
    DataCategory("special", "other art. 9 data: ethnicity, politics, religion, union, genetics, biometrics, "
                            "sex life", "sensitive", 4),
    DataCategory("criminal", "criminal convictions and offences (art. 10)", "sensitive", 4),
    DataCategory("other", "anything else, described in the record", "simple", 1),
)}

PEOPLE = ("residents", "employees", "children", "vulnerable", "business-contacts", "other")

#: The kinds of breach (art. 4(12); WP29/EDPB, see EDPB Guidelines 01/2021 §5); one or more per incident.
NATURES = ("confidentiality", "integrity", "availability")


def basic_dpc(categories: Iterable[str]) -> int:
    """The DPC before adjustment: the highest basic score of the categories (ENISA, Annex 1)."""
    return max((DATA_CATEGORIES[c].basic_dpc for c in categories), default=1)


def checked_names(values: Iterable[str], choices: Iterable[str], option: str) -> list[str]:
    """The values in the order given without repeats, or an InvalidInput naming every unknown one."""
    allowed = list(choices)
    result: list[str] = []
    problems = []
    for raw in values:
        value = raw.strip().lower()
        if value not in allowed:
            hint = did_you_mean(value, allowed)
            problems.append(f"unknown {option} '{raw}'" + (f"; {hint}" if hint else ""))
        elif value not in result:
            result.append(value)
    if problems:
        raise InvalidInput("; ".join(problems) + f" (choose from: {', '.join(allowed)})")
    return result
