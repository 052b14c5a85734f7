"""The names the register uses: data categories with their ENISA basic score, people, breach natures.

The data-category names and their basic Data Processing Context (DPC) scores follow ENISA's
Annex 1 (simple 1, behavioural 2, financial 3, sensitive 4) with the product defaults for the Dutch
citizen service number (3), identity documents (3) and credentials (2); see docs/breach-register.md.
A product default comes with its reason (`why`, `why_nl`), shown in the assessment's reasons.
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
    why: str = ""  # why a product default departs from ENISA's basic score, in English
    why_nl: str = ""  # the same in Dutch


_BSN_WHY = ("the citizen service number (BSN) enables identity fraud, and Dutch practice (UAVG art. 46, the AP's "
            "guidance) treats its leak as aggravating: product default DPC 3 (ENISA simple data 1, raised by 2)")
_BSN_WHY_NL = ("met het burgerservicenummer (BSN) is identiteitsfraude mogelijk, en de Nederlandse praktijk (art. 46 "
               "UAVG, de handreikingen van de AP) ziet een lek ervan als verzwarend: standaard van het product DPC 3 "
               "(ENISA eenvoudige gegevens 1, verhoogd met 2)")
_ID_WHY = ("a copy of an identity document enables identity fraud: product default DPC 3 (ENISA simple data 1, "
           "raised by 2)")
_ID_WHY_NL = ("met een kopie van een identiteitsbewijs is identiteitsfraude mogelijk: standaard van het product DPC 3 "
              "(ENISA eenvoudige gegevens 1, verhoogd met 2)")


DATA_CATEGORIES: Mapping[str, DataCategory] = {c.name: c for c in (
    DataCategory("contact", "name, address, phone, e-mail (NAW)", "simple", 1),
    DataCategory("identity", "date of birth, gender, nationality, photos", "simple", 1),
    DataCategory("bsn", "citizen service number (burgerservicenummer)", "simple, identity-fraud risk", 3,
                 _BSN_WHY, _BSN_WHY_NL),
    DataCategory("id-document", "copy of passport, ID card, driving licence", "simple, identity-fraud risk", 3,
                 _ID_WHY, _ID_WHY_NL),
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

#: The data categories in Dutch, for what Dutch readers get (the AP form, the message to the people).
DATA_CATEGORIES_NL: Mapping[str, str] = {
    "contact": "contactgegevens (naam, adres, telefoon, e-mail)",
    "identity": "identiteitsgegevens (geboortedatum, geslacht, nationaliteit, foto's)",
    "bsn": "burgerservicenummer (BSN)",
    "id-document": "kopie van een identiteitsbewijs",
    "credentials": "inloggegevens (gebruikersnamen met wachtwoorden, tokens)",
    "behavioural": "gedragsgegevens (locatie, verkeersgegevens, gewoonten, voorkeuren)",
    "financial": "financiële gegevens (inkomen, bankrekeningen, betalingen, schulden)",
    "social-welfare": "gegevens uit het sociaal domein (uitkeringen, schuldhulp, jeugdzorg, Wmo)",
    "health": "gezondheidsgegevens",
    "special": "bijzondere persoonsgegevens (zoals etniciteit, politieke voorkeur, godsdienst, vakbondslidmaatschap, "
               "genetische of biometrische gegevens, seksueel leven)",
    "criminal": "strafrechtelijke gegevens",
    "other": "andere persoonsgegevens",
}



def short_nl(category: str) -> str:
    """A data category's Dutch name without its examples: 'contactgegevens'."""
    return DATA_CATEGORIES_NL[category].split(" (")[0]


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
