"""The communication to the people concerned (GDPR art. 34(2)): a draft from the register's facts.

Art. 34(2) asks the message to describe in clear and plain language the nature of the breach and
at least the information of art. 33(3)(b), (c) and (d): a contact point (the data protection
officer, FG), the likely consequences, and the measures taken or proposed. The draft fills each part
from the register and marks with [aanvullen] / [fill in] what the register does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from compliance.incidents.categories import DATA_CATEGORIES
from compliance.incidents.categories import DATA_CATEGORIES_NL as CATEGORY_NL
from compliance.incidents.errors import InvalidInput
from compliance.incidents.model import MESSAGE_PARTS, Incident

#: The placeholder of each language for what the register cannot fill in.
TODO = {"nl": "[aanvullen]", "en": "[fill in]"}
#: The headings of the parts, by language.
HEADINGS = {
    "nl": {"nature": "Wat is er gebeurd?", "consequences": "Wat zijn de mogelijke gevolgen voor u?",
           "measures": "Wat hebben wij gedaan en wat gaan wij doen?", "contact": "Vragen?"},
    "en": {"nature": "What happened?", "consequences": "What could this mean for you?",
           "measures": "What we have done and will do", "contact": "Questions?"},
}
_NL_MONTHS = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
              "november", "december")


#: What each nature of breach means for the person, as the message says it.
_NATURE = {
    "nl": {"confidentiality": "gezien door iemand die ze niet mocht zien", "integrity": "gewijzigd",
           "availability": "verloren gegaan of niet beschikbaar geweest"},
    "en": {"confidentiality": "been seen by someone who should not have seen them", "integrity": "been altered",
           "availability": "been lost or unavailable"},
}


def _joined(items: list[str], word: str) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"


def _date(incident: Incident, zone: tzinfo, lang: str) -> str:
    local = incident.aware_at.astimezone(zone)
    if lang == "nl":
        return f"{local.day} {_NL_MONTHS[local.month - 1]} {local.year}"
    return f"{local.day} {local.strftime('%B')} {local.year}"


def _contact(contact: Any, lang: str) -> str:
    todo = TODO[lang]
    if contact is None or not (contact.name or contact.phone or contact.email):
        who = (f"{todo} naam en telefoonnummer of e-mailadres van de functionaris gegevensbescherming (zet "
               "incidents.contact in compliance.yaml)" if lang == "nl" else
               f"{todo} name and phone number or e-mail address of the data protection officer (set incidents.contact "
               "in compliance.yaml)")
    else:
        parts = [p for p in (contact.name, contact.function) if p]
        reach = [p for p in ((f"telefoon {contact.phone}" if lang == "nl" else f"phone {contact.phone}")
                             if contact.phone else "", (f"e-mail {contact.email}" if contact.email else "")) if p]
        who = ", ".join(parts + reach)
    if lang == "nl":
        return f"Hebt u vragen over dit datalek, neem dan contact op met {who}."
    return f"If you have questions about this breach, please contact {who}."


def template(incident: Incident, *, lang: str = "nl", zone: tzinfo, organisation: str = "",
             contact: Any = None) -> dict[str, str]:
    """The four parts of art. 34(2) as a draft in `lang` (nl or en), filled in from the register."""
    if lang not in TODO:
        raise InvalidInput(f"unknown --lang '{lang}'; choose from: nl, en")
    todo = TODO[lang]
    when = _date(incident, zone, lang)
    if lang == "nl":
        who = organisation or "de gemeente"
        categories = ", ".join(CATEGORY_NL[c] for c in incident.data_categories)
        what = _joined([_NATURE["nl"][n] for n in incident.nature], "of")
        nature = (f"Op {when} ontdekte {who} dat er een datalek was: persoonsgegevens van u zijn mogelijk {what}. "
                  f"{todo} beschrijf in eenvoudige woorden wat er is gebeurd. Het gaat om deze gegevens: "
                  f"{categories}.")
        consequences = incident.consequences or f"{todo} wat de gevolgen voor u kunnen zijn"
        measures = " ".join(filter(None, (
            f"Wat wij hebben gedaan: {incident.measures_taken}" if incident.measures_taken else
            f"Wat wij hebben gedaan: {todo}",
            f"Wat wij nog gaan doen: {incident.measures_planned}" if incident.measures_planned else "")))
    else:
        who = organisation or "the municipality"
        categories = ", ".join(DATA_CATEGORIES[c].what for c in incident.data_categories)
        what = _joined([_NATURE["en"][n] for n in incident.nature], "or")
        nature = (f"On {when} {who} found that there had been a data breach: personal data of yours may have {what}. "
                  f"{todo} describe in plain words what happened. The data concerned: {categories}.")
        consequences = incident.consequences or f"{todo} what the consequences for you could be"
        measures = " ".join(filter(None, (
            f"What we have done: {incident.measures_taken}" if incident.measures_taken else
            f"What we have done: {todo}",
            f"What we will still do: {incident.measures_planned}" if incident.measures_planned else "")))
    return {"nature": nature, "contact": _contact(contact, lang), "consequences": consequences, "measures": measures,
            "lang": lang}


def unfinished(parts: Mapping[str, str]) -> list[str]:
    """The parts that still hold a placeholder of the template."""
    return [part for part in MESSAGE_PARTS if any(mark in parts.get(part, "") for mark in TODO.values())]


def render(incident: Incident, parts: Mapping[str, str]) -> str:
    """The message as a letter body: a subject line and the four parts under their headings."""
    lang = parts.get("lang", "nl")
    subject = ("Betreft: datalek waarbij uw persoonsgegevens betrokken zijn" if lang == "nl"
               else "Subject: a data breach involving your personal data")
    lines = [subject, ""]
    for part in ("nature", "consequences", "measures", "contact"):
        lines += [HEADINGS[lang][part], parts[part], ""]
    return "\n".join(lines)
