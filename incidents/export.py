"""The register as output: JSON objects, CSV rows for the annual audit, the answers to the AP
notification form (in Dutch, in the form's order), and the text views of `list` and `show`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from compliance.incidents.categories import DATA_CATEGORIES, short_nl
from compliance.incidents.model import Assessment, Duty, Incident, Notification, utc_now
from compliance.incidents.recommendation import BAND_NL, dpc_reasons
from compliance.incidents.recommendation import count as count_in

# -- JSON -----------------------------------------------------------------------------------------------


def local_iso(moment: datetime | None, zone: tzinfo) -> str | None:
    """ISO 8601 with the zone's offset, e.g. 2026-11-30T16:40:00+01:00."""
    return None if moment is None else moment.astimezone(zone).isoformat(timespec="seconds")


def as_json(incident: Incident, zone: tzinfo = UTC, now: datetime | None = None, lang: str = "en") -> dict[str, Any]:
    """The incident as one JSON object: what `list`, `show` and `export --format json` print; the
    assessment's `summary` and `reasons` in `lang`."""
    clock = incident.clock(now)

    def t(moment: datetime | None) -> str | None:
        return local_iso(moment, zone)

    return {
        "id": incident.id,
        "title": incident.title,
        "status": incident.status,
        "occurred_at": t(incident.occurred_at),
        "ended_at": t(incident.ended_at),
        "discovered_at": t(incident.discovered_at),
        "aware_at": t(incident.aware_at),
        "deadline": t(incident.deadline),
        "hours_left": clock.hours_left,
        "overdue": clock.overdue,
        "clock": {"state": clock.state, "hours_left": clock.hours_left, "notified_at": t(clock.notified_at),
                  "within_deadline": clock.within_deadline, "text": clock.describe()},
        "nature": list(incident.nature),
        "data_categories": list(incident.data_categories),
        "subjects": incident.subjects,
        "subjects_max": incident.subjects_max,
        "records": incident.records,
        "people": list(incident.people),
        "processor": incident.processor,
        "cross_border": incident.cross_border,
        "description": incident.description,
        "how_discovered": incident.how_discovered,
        "cause": incident.cause,
        "consequences": incident.consequences,
        "measures_taken": incident.measures_taken,
        "measures_planned": incident.measures_planned,
        "protection": incident.protection,
        "score": float(incident.assessment.score) if incident.assessment else None,
        "band": incident.assessment.band if incident.assessment else None,
        "assessment": assessment_json(incident.assessment, zone, lang) if incident.assessment else None,
        "decision": None if incident.decision is None else {
            "notify_authority": incident.decision.notify_authority,
            "notify_subjects": incident.decision.notify_subjects,
            "public_communication": incident.decision.public_communication,
            "subjects_exception": incident.decision.subjects_exception or None,
            "reason": incident.decision.reason,
            "follows_recommendation": incident.decision.follows_recommendation,
            "decided_at": t(incident.decision.decided_at),
            "decided_by": incident.decision.decided_by,
        },
        "notifications": [notification_json(n, incident, zone) for n in incident.notifications],
        "links": [{"kind": link.kind, "ref": link.ref, "linked_at": t(link.linked_at), "linked_by": link.linked_by}
                  for link in incident.links],
        "personal_data": incident.personal_data,
        "significant": incident.significant,
        "found_by": incident.found_by or None,
        "processor_discovered_at": t(incident.processor_discovered_at),
        "processor_told_at": t(incident.processor_told_at),
        "ap_instruction": incident.ap_instruction or None,
        "open_items": incident.open_items or None,
        "duties": {name: duty_json(duty, zone) for name, duty in incident.duties(now).items()
                   if not name.startswith("csirt.")},
        "csirt": csirt_json(incident, zone, now),
        "closure": None if incident.closure is None else {
            "closed_at": t(incident.closure.closed_at), "closed_by": incident.closure.closed_by,
            "note": incident.closure.note, "ongoing": incident.closure.ongoing},
        "created_at": t(incident.created_at),
        "created_by": incident.created_by,
        "updated_at": t(incident.updated_at),
    }


def duty_json(duty: Duty, zone: tzinfo = UTC) -> dict[str, Any]:
    """One duty: its state (not-applicable, to-decide, not-required, due, overdue, done), deadline and when done."""
    return {"state": duty.state, "deadline": local_iso(duty.deadline, zone), "done_at": local_iso(duty.done_at, zone),
            "reference": duty.reference or None, "within_deadline": duty.within_deadline}


def csirt_json(incident: Incident, zone: tzinfo = UTC, now: datetime | None = None) -> dict[str, Any]:
    """The Cbw track: `significant`, the three deadlines (`early_warning_due`, `notification_due`,
    `final_report_due`; null unless significant) and each stage's duty."""
    duties = incident.csirt_duties(now)
    due = {stage: local_iso(d.deadline, zone) for stage, d in duties.items()}
    return {"significant": incident.significant, "early_warning_due": due["early-warning"],
            "notification_due": due["notification"], "final_report_due": due["final"],
            "early_warning": duty_json(duties["early-warning"], zone),
            "notification": duty_json(duties["notification"], zone),
            "final_report": duty_json(duties["final"], zone)}


def assessment_json(a: Assessment, zone: tzinfo = UTC, lang: str = "en") -> dict[str, Any]:
    """The assessment: score (a number), ENISA's `band`, `risk_band` (the band the advice followed, one
    step higher above `large_scale` people), the recommendation (`notify_authority`, `notify_subjects`,
    `public_communication`), `summary` and `reasons` in `lang` (`summary_nl`, `reasons_nl` always), and
    the inputs."""
    return {
        "score": float(a.score), "band": a.band, "risk_band": a.advice_band, "formula": a.formula,
        "notify_authority": a.notify_authority, "notify_subjects": a.notify_subjects,
        "public_communication": a.public_communication, "rule": a.rule, "lang": lang,
        "summary": a.summary_in(lang), "reasons": list(a.reasons_in(lang)),
        "summary_nl": a.summary_nl, "reasons_nl": list(a.reasons_nl),
        "dpc": a.dpc, "dpc_basic": a.dpc_basic, "dpc_reason": a.dpc_reason, "ei": a.ei,
        "confidentiality": a.confidentiality, "integrity": a.integrity, "availability": a.availability,
        "malicious": a.malicious, "unintelligible": a.unintelligible, "contained": a.contained,
        "risk_removed": a.risk_removed, "disproportionate_effort": a.disproportionate_effort,
        "people": a.people, "large_scale": a.large_scale,
        "assessed_at": local_iso(a.assessed_at, zone), "assessed_by": a.assessed_by,
    }


def notification_json(n: Notification, incident: Incident, zone: tzinfo = UTC) -> dict[str, Any]:
    return {"recipient": n.recipient, "kind": n.kind, "at": local_iso(n.at, zone), "reference": n.reference or None,
            "channel": n.channel or None, "late": _late(n, incident), "delay_reason": n.delay_reason or None,
            "note": n.note or None, "recorded_at": local_iso(n.recorded_at, zone), "recorded_by": n.recorded_by,
            "open_items": n.open_items or None, "follow_up_due": local_iso(n.follow_up_due, zone),
            "message": dict(n.message) if n.message else None}


def _late(n: Notification, incident: Incident) -> bool | None:
    if n.recipient != "authority" or n.kind != "initial":
        return None
    return n.at > incident.deadline


# -- CSV ------------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "id", "title", "status", "occurred_at", "ended_at", "discovered_at", "aware_at", "deadline", "clock",
    "nature", "data_categories", "subjects", "subjects_max", "records", "people", "processor", "cross_border",
    "description", "how_discovered", "cause", "consequences", "measures_taken", "measures_planned", "protection",
    "score", "band", "dpc", "dpc_basic", "dpc_reason", "ei", "confidentiality", "integrity", "availability",
    "malicious", "unintelligible", "contained", "risk_band", "risk_removed", "disproportionate_effort",
    "recommended_notify_authority",
    "recommended_notify_subjects", "recommended_public_communication", "assessed_at", "assessed_by",
    "notify_authority", "notify_subjects", "subjects_exception", "decision_reason", "follows_recommendation",
    "decided_at", "decided_by", "authority_notified_at", "authority_reference", "notified_within_72h",
    "delay_reason", "follow_ups", "withdrawn_at", "subjects_informed_at", "subjects_channels", "links",
    "closed_at", "closed_by", "close_note", "created_at", "created_by",
    "found_by", "processor_discovered_at", "processor_told_at", "ap_instruction", "open_items", "follow_up_due",
    "follow_up_state",
)


def csv_row(incident: Incident, zone: tzinfo = UTC, now: datetime | None = None) -> list[str]:
    """One row per incident, columns as CSV_COLUMNS: times in ISO 8601 with offset, lists joined with
    '; ', yes/no for booleans, empty for unknown."""
    def t(moment: datetime | None) -> str:
        return local_iso(moment, zone) or ""

    a, d, c = incident.assessment, incident.decision, incident.closure
    initial = incident.authority_notification
    withdrawal = next(iter(incident.notifications_to("authority", "withdrawal")), None)
    informed = incident.notifications_to("subjects")
    values: dict[str, Any] = {
        "id": incident.id, "title": incident.title, "status": incident.status,
        "occurred_at": t(incident.occurred_at), "ended_at": t(incident.ended_at),
        "discovered_at": t(incident.discovered_at), "aware_at": t(incident.aware_at),
        "deadline": t(incident.deadline), "clock": incident.clock(now).describe(),
        "nature": incident.nature, "data_categories": incident.data_categories, "subjects": incident.subjects,
        "subjects_max": incident.subjects_max, "records": incident.records, "people": incident.people,
        "processor": incident.processor, "cross_border": incident.cross_border,
        "description": incident.description, "how_discovered": incident.how_discovered, "cause": incident.cause,
        "consequences": incident.consequences, "measures_taken": incident.measures_taken,
        "measures_planned": incident.measures_planned, "protection": incident.protection,
        "links": [f"{link.kind} {link.ref}" for link in incident.links],
        "created_at": t(incident.created_at), "created_by": incident.created_by,
        "found_by": incident.found_by, "processor_discovered_at": t(incident.processor_discovered_at),
        "processor_told_at": t(incident.processor_told_at), "ap_instruction": incident.ap_instruction,
        "open_items": incident.open_items,
    }
    follow_up = incident.follow_up_duty(now)
    if follow_up.state != "not-applicable":
        values.update(follow_up_due=t(follow_up.deadline), follow_up_state=follow_up.state)
    if a is not None:
        values.update(
            score=f"{a.score:.2f}", band=a.band, dpc=a.dpc, dpc_basic=a.dpc_basic, dpc_reason=a.dpc_reason, ei=a.ei,
            confidentiality=a.confidentiality, integrity=a.integrity, availability=a.availability,
            malicious=a.malicious, unintelligible=a.unintelligible, contained=a.contained, risk_band=a.advice_band,
            risk_removed=a.risk_removed, disproportionate_effort=a.disproportionate_effort,
            recommended_notify_authority=a.notify_authority,
            recommended_notify_subjects=a.notify_subjects, recommended_public_communication=a.public_communication,
            assessed_at=t(a.assessed_at), assessed_by=a.assessed_by)
    if d is not None:
        values.update(notify_authority=d.notify_authority, notify_subjects=d.notify_subjects,
                      subjects_exception=d.subjects_exception, decision_reason=d.reason,
                      follows_recommendation=d.follows_recommendation, decided_at=t(d.decided_at),
                      decided_by=d.decided_by)
    if initial is not None:
        values.update(authority_notified_at=t(initial.at), authority_reference=initial.reference,
                      notified_within_72h=initial.at <= incident.deadline, delay_reason=initial.delay_reason)
    values["follow_ups"] = len(incident.notifications_to("authority", "follow-up"))
    if withdrawal is not None:
        values["withdrawn_at"] = t(withdrawal.at)
    if informed:
        values.update(subjects_informed_at=t(informed[0].at), subjects_channels=[n.channel for n in informed])
    if c is not None:
        values.update(closed_at=t(c.closed_at), closed_by=c.closed_by, close_note=c.note)
    return [_cell(values.get(column)) for column in CSV_COLUMNS]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    return str(value)


# -- the AP notification form ---------------------------------------------------------------------------

#: Our data categories → the answers of the form's "Persoonsgegevens in het algemeen".
AP_GENERAL: dict[str, tuple[str, ...]] = {
    "contact": ("Naam-, adres- en woonplaatsgegevens", "Telefoonnummers",
                "E-mailadressen of andere adressen voor elektronische communicatie"),
    "identity": ("Geslacht, geboortedatum en/of leeftijd",),
    "id-document": ("Paspoortkopieën of kopieën van andere legitimatiebewijzen",),
    "credentials": ("Toegangs- of identificatiegegevens",),
    "financial": ("Financiële gegevens",),
    "social-welfare": ("Financiële gegevens",),
}
#: Our data categories → the answers of the form's "Bijzondere categorieën van persoonsgegevens".
AP_SPECIAL: dict[str, tuple[str, ...]] = {
    "bsn": ("Burgerservicenummer (BSN)",),
    "health": ("Over iemands gezondheid",),
    "special": ("Over iemands godsdienst of levensovertuiging", "Over iemands ras", "Over iemands politieke gezindheid",
                "Over iemands seksuele leven", "Over het lidmaatschap van een vakvereniging"),
    "criminal": ("Strafrechtelijke persoonsgegevens",
                 "Over onrechtmatig of hinderlijk gedrag in verband met een opgelegd verbod naar aanleiding van dat "
                 "gedrag"),
}
#: What the form's lists do not say about our categories.
AP_NOTES: dict[str, str] = {
    "contact": "De categorie contactgegevens van het register dekt drie antwoorden van het formulier "
               "(NAW-gegevens, telefoonnummers, e-mailadressen); vink alleen aan wat bij dit datalek hoort.",
    "identity": "De categorie identiteitsgegevens van het register omvat ook nationaliteit en foto's; die staan niet "
                "in de lijst van het formulier: noem ze in de toelichting.",
    "social-welfare": "De categorie sociaal domein van het register (uitkeringen, schuldhulp, jeugdzorg, Wmo) valt "
                      "onder financiële gegevens; gaat het ook om zorg of gezondheid (jeugdzorg, Wmo), vink dan ook "
                      "'Over iemands gezondheid' aan.",
    "special": "De categorie bijzondere persoonsgegevens van het register dekt vijf antwoorden van het formulier "
               "(godsdienst of levensovertuiging, ras, politieke gezindheid, seksuele leven, lidmaatschap van een "
               "vakvereniging); vink aan wat van toepassing is. Genetische en biometrische gegevens staan niet in de "
               "lijst: noem ze in de toelichting.",
    "criminal": "De categorie strafrechtelijke gegevens van het register dekt twee antwoorden van het formulier "
                "(strafrechtelijke persoonsgegevens, onrechtmatig of hinderlijk gedrag met een opgelegd verbod); vink "
                "aan wat van toepassing is.",
    "behavioural": "De categorie gedragsgegevens van het register (locatie, verkeersgegevens, gewoonten, voorkeuren) "
                   "staat niet in de lijsten van het formulier: noem ze in de toelichting.",
    "other": "De categorie andere persoonsgegevens van het register staat niet in de lijsten van het formulier: kies "
             "het passende antwoord of noem ze in de toelichting (zie de samenvatting).",
}
AP_NATURE = {"confidentiality": "Lezen (vertrouwelijkheid)", "integrity": "Veranderen (integriteit)",
             "availability": "Verwijderen of vernietigen (beschikbaarheid)"}
AP_PEOPLE = {"residents": "Inwoners", "employees": "Medewerkers", "children": "Kinderen (minderjarigen)",
             "vulnerable": "Kwetsbare personen", "business-contacts": "Zakelijke contactpersonen", "other": "Overig"}
AP_BAND = {"low": "Laag", "medium": "Gemiddeld", "high": "Hoog", "very high": "Zeer hoog"}
AP_CONFIDENTIALITY = {
    "none": "niet aangetast",
    "exposed": "blootgesteld, zonder aanwijzing dat de gegevens zijn ingezien of verwerkt",
    "known-recipients": "verstrekt aan een bekend aantal ontvangers",
    "unknown-recipients": "verstrekt aan een onbekend aantal ontvangers",
}
AP_INTEGRITY = {
    "none": "niet aangetast",
    "altered": "gewijzigd, zonder aanwijzing van onjuist of onrechtmatig gebruik",
    "recoverable": "gewijzigd en mogelijk onjuist of onrechtmatig gebruikt; herstel is mogelijk",
    "unrecoverable": "gewijzigd en mogelijk onjuist of onrechtmatig gebruikt; herstel is niet mogelijk",
}
AP_AVAILABILITY = {
    "none": "niet aangetast", "recoverable": "zonder moeite hersteld",
    "temporary": "tijdelijk niet beschikbaar", "full": "volledig en blijvend niet beschikbaar",
}
AP_EXCEPTION = {
    "unintelligible": "De gegevens waren voor onbevoegden onbegrijpelijk, bijvoorbeeld versleuteld met een veilige "
                      "sleutel (art. 34 lid 3 onder a AVG).",
    "risk-removed": "Met maatregelen achteraf is het hoge risico niet langer waarschijnlijk (art. 34 lid 3 onder b "
                    "AVG).",
    "disproportionate-effort": "Het informeren van iedere betrokkene vergt een onevenredige inspanning; in plaats "
                               "daarvan volgt een openbare mededeling (art. 34 lid 3 onder c AVG).",
}
AP_CHANNEL = {"letter": "per brief", "e-mail": "per e-mail", "public": "met een openbare mededeling"}
#: Who found the breach (FOUND_BY), as the answers about the reporter and the discovery say it.
AP_FOUND_BY = {"municipality": "de organisatie zelf", "processor": "de verwerker",
               "joint-controller": "een gezamenlijke verwerkingsverantwoordelijke", "other": "een ander (derde)"}
AP_MESSAGE = {"nature": "Aard van het datalek", "contact": "Contactpunt (functionaris gegevensbescherming)",
              "consequences": "Waarschijnlijke gevolgen", "measures": "Genomen en voorgestelde maatregelen"}
TODO = "[aanvullen]"



def ap_form(incident: Incident, *, zone: tzinfo, organisation: str = "", reporter: Any = None, contact: Any = None,
            now: datetime | None = None, supplement: bool = False) -> str:
    """The answers to the AP's "Meldformulier datalekken" in its order (sections 0-9) and language.

    `reporter` and `contact` have name, function, phone and email (the `incidents` settings).
    Where the register has no answer the text says [aanvullen] and what to fill in. With `supplement`
    the answers are for an aanvulling to the earlier notification (art. 33(4)); the caller checks there
    is one with its reference number.
    """
    now = now or utc_now()

    def d(moment: datetime | None) -> str:
        return _nl_time(moment, zone)

    a, decision = incident.assessment, incident.decision
    initial = incident.authority_notification
    out: list[str] = []

    def q(number: str, question: str, *answers: str) -> None:
        out.append(f"{number} {question}".strip())
        out.extend(f"    {line}" for answer in answers for line in answer.splitlines())

    title = "aanvulling op de melding" if supplement and initial is not None else "antwoorden"
    out += [f"Meldformulier datalekken (Autoriteit Persoonsgegevens): {title} voor {incident.id}",
            f"Opgesteld uit het register datalekken op {d(now)}; tijden in {zone}.",
            f"Neem de antwoorden over in het meldformulier en controleer ze; vul aan waar {TODO} staat.",
            "Vrije tekst uit het register (zoals de samenvatting, de oorzaak, de maatregelen en de redenen van het "
            "besluit) staat er zoals die is ingevoerd: controleer of die in het Nederlands is.", ""]
    q("", "Vooraf: kunt u redelijkerwijs uitsluiten dat er persoonsgegevens verloren zijn gegaan of onrechtmatig "
          "zijn verwerkt?", "Nee.")

    out += ["", "0. Over deze melding"]
    q("0.1", "Op grond van welke regelgeving doet u deze melding?",
      "Algemene verordening gegevensbescherming (AVG), artikel 33.")
    follow_ups = incident.notifications_to("authority", "follow-up")
    withdrawal = next(iter(incident.notifications_to("authority", "withdrawal")), None)
    if initial is None:
        kind = "Nieuwe melding."
    elif supplement:
        kind = (f"Aanvulling op een eerdere melding. Meldnummer van de eerdere melding: {initial.reference} (gemeld "
                f"op {d(initial.at)}).")
        for n in [initial, *follow_ups]:
            if n.follow_up_due is not None:
                kind += (f"\nBij de melding van {d(n.at)} stond nog open: {n.open_items} (aanvulling toegezegd vóór "
                         f"{d(n.follow_up_due)}).")
            if n.kind == "follow-up":
                kind += f"\nEerder aangevuld op {d(n.at)}" + (f": {n.note}" if n.note else ".")
    else:
        kind = f"Nieuwe melding, gedaan op {d(initial.at)} (meldnummer {initial.reference})."
        if initial.follow_up_due is not None:
            kind += (f" Bij die melding stond nog open: {initial.open_items} (aanvulling toegezegd vóór "
                     f"{d(initial.follow_up_due)}).")
        kind += "".join(f"\nVervolgmelding op {d(f.at)}" + (f": {f.note}" if f.note else ".") for f in follow_ups)
        if withdrawal is not None:
            kind += f"\nIngetrokken op {d(withdrawal.at)}: {withdrawal.note}"
    q("0.2", "Gaat het om een nieuwe melding of om een aanvulling op (of intrekking van) een eerdere melding?", kind)

    out += ["", "1. Contactgegevens en overige algemene informatie"]
    q("1.1", "Over welke organisatie gaat het (verwerkingsverantwoordelijke)?",
      organisation or f"{TODO} naam van de organisatie (zet incidents.organisation in compliance.yaml)")
    q("1.2", "Wie meldt het datalek? (naam, functie, telefoonnummer, e-mailadres)",
      _person(reporter, "incidents.reporter", "van wie meldt"))
    q("1.3", "Met wie kan de AP contact opnemen voor nadere informatie over de melding?",
      _person(contact, "incidents.contact", "van de contactpersoon, bijvoorbeeld de functionaris gegevensbescherming,"))
    q("1.4", "Was er een andere organisatie betrokken bij de inbreuk?", *_other_organisation(incident, d))

    out += ["", "2. Tijdlijn"]
    q("2.1", "Wanneer is de inbreuk begonnen?", d(incident.occurred_at))
    q("2.2", "Wanneer is de inbreuk ontdekt?",
      f"{d(incident.discovered_at)}; de organisatie is er op {d(incident.aware_at)} van op de hoogte geraakt "
      f"(begin van de termijn van 72 uur, die afloopt op {d(incident.deadline)}).")
    q("2.3", "Duurt de inbreuk op dit moment nog voort?",
      f"Nee, de inbreuk is beëindigd op {d(incident.ended_at)}." if incident.ended_at else
      "Ja, of het einde is nog niet vastgesteld (het register heeft geen einddatum).")
    if initial is not None and initial.at > incident.deadline:
        late = f"Gemeld op {d(initial.at)}, na de termijn van 72 uur. Reden: {initial.delay_reason}"
    elif initial is None and now > incident.deadline:
        late = (f"{TODO} De termijn van 72 uur is verstreken op {d(incident.deadline)}: geef de reden van de "
                "vertraging (art. 33 lid 1 AVG); leg die vast met `compliance incident notify ... --delay-reason`.")
    else:
        late = "Niet van toepassing: melding binnen 72 uur."
    q("2.4", "Reden voor het later melden dan 72 uur na het bekend worden van de inbreuk:", late)

    out += ["", "3. Gegevens over het datalek"]
    q("3.1", "Geef een samenvatting van het incident waarbij de inbreuk op de beveiliging van persoonsgegevens zich "
             "heeft voorgedaan.", f"{incident.title}. {incident.description}")
    q("3.2", "Wat is de aard van de inbreuk? (één of meer)",
      *[f"- {AP_NATURE[n]}" for n in incident.nature],
      "Kopiëren en Diefstal: vink deze zelf aan als ze van toepassing zijn (het register legt ze niet apart vast)."
      + (" Er was kwade opzet." if a is not None and a.malicious else ""))
    q("3.3", "Wat is de aard van het incident (oorzaak)?", incident.cause or f"{TODO} de oorzaak")
    found = f"Ontdekt door {AP_FOUND_BY[incident.found_by]}." if incident.found_by else ""
    q("3.4", "Hoe is de inbreuk ontdekt?",
      " ".join(filter(None, (found, incident.how_discovered))) or f"{TODO} hoe de inbreuk is ontdekt")

    out += ["", "4. Persoonsgegevens die betrokken zijn bij het datalek"]
    general = _answers(incident.data_categories, AP_GENERAL)
    special = _answers(incident.data_categories, AP_SPECIAL)
    q("4.1", "Persoonsgegevens in het algemeen: om welk type persoonsgegevens gaat het?",
      *(general or ["Geen van de antwoorden in deze lijst."]))
    q("4.2", "Bijzondere categorieën van persoonsgegevens (en BSN, strafrechtelijke gegevens):",
      *(special or ["Geen."]))
    notes = [AP_NOTES[c] for c in incident.data_categories if c in AP_NOTES]
    if notes:
        q("", "Toelichting bij 4.1 en 4.2 (hoe de categorieën van het register op het formulier passen):",
          *[f"- {n}" for n in notes])
    q("4.3", "Geef (eventueel bij benadering) aan hoeveel gegevensrecords zijn getroffen door de inbreuk.",
      f"Ongeveer {incident.records}." if incident.records is not None else f"{TODO} het aantal gegevensrecords")

    out += ["", "5. De groep mensen van wie persoonsgegevens betrokken zijn bij het datalek"]
    q("5.1", "Om welke groep(en) mensen gaat het?",
      ", ".join(AP_PEOPLE[p] for p in incident.people) + "." if incident.people else f"{TODO} de groep(en) mensen")
    if incident.subjects_max is not None and incident.subjects_max != incident.subjects:
        count = f"Minimaal {incident.subjects}, maximaal {incident.subjects_max}."
    else:
        count = f"Ongeveer {incident.subjects} (minimaal en maximaal {incident.subjects})."
    q("5.2", "Om hoeveel personen gaat het (minimaal en maximaal)?", count)

    out += ["", "6. Maatregelen die zijn getroffen voordat het datalek plaatsvond"]
    protected = f"{TODO} (nog geen beoordeling in het register)" if a is None else "Ja." if a.unintelligible else "Nee."
    if incident.protection:
        protected += f" {incident.protection}"
    q("6.1", "Waren de persoonsgegevens op het moment dat de inbreuk zich voordeed versleuteld, gecodeerd of op een "
             "andere manier onbegrijpelijk of ontoegankelijk voor onbevoegden?", protected)

    out += ["", "7. Gevolgen van het datalek"]
    if a is None:
        q("7.1", "Gevolgen van de inbreuk op de vertrouwelijkheid, de integriteit en/of beschikbaarheid van de "
                 "gegevens.", f"{TODO} (nog geen beoordeling: `compliance incident assess {incident.id}`)")
    else:
        q("7.1", "Gevolgen van de inbreuk op de vertrouwelijkheid, de integriteit en/of beschikbaarheid van de "
                 "gegevens.",
          f"Vertrouwelijkheid: {AP_CONFIDENTIALITY[a.confidentiality]}.",
          f"Integriteit: {AP_INTEGRITY[a.integrity]}.", f"Beschikbaarheid: {AP_AVAILABILITY[a.availability]}.")
    q("7.2", "Lichamelijke, materiële en immateriële schade voor de betrokkenen: welke gevolgen kan de inbreuk "
             "hebben voor de persoonlijke levenssfeer van de betrokkenen?",
      incident.consequences or f"{TODO} de mogelijke gevolgen voor de betrokkenen")
    if a is None:
        severity = f"{TODO} (nog geen beoordeling)"
    else:
        severity = (f"{AP_BAND[a.band]}: ernst {_nl_number(a.score)} volgens de ENISA-methode (2013), "
                    f"{a.formula.replace('.', ',')} (DPC: context van de gegevensverwerking, EI: "
                    "identificeerbaarheid, CB: omstandigheden van de inbreuk).")
        if a.dpc_reason:
            severity += f" DPC aangepast van {a.dpc_basic} naar {a.dpc}: {a.dpc_reason}"
        if a.advice_band != a.band:
            severity += (f" Door de omvang ({count_in(a.people, 'nl')} betrokkenen, meer dan "
                         f"{count_in(a.large_scale, 'nl')}) één stap hoger: {AP_BAND[a.advice_band].lower()}.")
    q("7.3", "Geef een inschatting van de ernst van de mogelijke gevolgen voor de betrokkenen.", severity)

    out += ["", "8. Vervolgacties naar aanleiding van het datalek"]
    informed = incident.notifications_to("subjects")
    if informed:
        told = "Ja: " + "; ".join(f"{AP_CHANNEL[n.channel]} op {d(n.at)}" for n in informed) + "."
    elif decision is not None and (decision.notify_subjects or decision.public_communication):
        told = "Nog niet; de organisatie is van plan dat te doen" + (
            " met een openbare mededeling." if decision.public_communication else ".")
    elif decision is not None:
        told = "Nee."
    else:
        told = f"{TODO} (nog geen besluit: `compliance incident decide {incident.id}`)"
    q("8.1", "Heeft u het datalek gemeld aan de betrokkenen of bent u van plan dat te gaan doen?", told)
    said = next((n for n in informed if n.message), None)
    if said is not None and said.message is not None:
        language = "Nederlands" if said.message.get("lang", "nl") == "nl" else "Engels"
        q("", f"Toelichting bij 8.1: de inhoud van de mededeling aan de betrokkenen (art. 34 lid 2 AVG; in het "
              f"{language}):", *[f"- {AP_MESSAGE[part]}: {said.message[part]}" for part in AP_MESSAGE])
    elif informed:
        q("", "Toelichting bij 8.1: de inhoud van de mededeling aan de betrokkenen:",
          f"{TODO} wat de betrokkenen is verteld (leg het vast met `compliance incident notify {incident.id} "
          "--subjects --message-...`)")
    if decision is not None and not decision.notify_subjects:
        if decision.subjects_exception:
            why = AP_EXCEPTION[decision.subjects_exception]
        elif a is not None and a.advice_band in ("low", "medium"):
            why = ("Het datalek leidt naar verwachting niet tot een hoog risico voor de betrokkenen (ernst "
                   f"{AP_BAND[a.advice_band].lower()}; art. 34 lid 1 AVG).")
        else:
            why = "Zie de toelichting."
        q("8.2", "Waarom ziet u af van het melden van het datalek aan de betrokkenen?", why)
    choice = [decision.reason if decision is not None else f"{TODO} (nog geen besluit)"]
    if incident.ap_instruction:
        choice.append(f"Aanwijzing van de Autoriteit Persoonsgegevens over het informeren van de betrokkenen (art. 34 "
                      f"lid 4 AVG): {incident.ap_instruction}")
    q("8.3", "Licht uw keuze toe.", *choice)
    if decision is not None and decision.public_communication:
        public = [n for n in informed if n.channel == "public"]
        q("8.4", "Als het informeren van alle betrokkenen een onevenredige inspanning zou vergen, licht dan toe hoe u "
                 "door een openbare mededeling of een soortgelijke maatregel de betrokkenen gaat informeren.",
          (f"Openbare mededeling op {d(public[0].at)}." + (f" {public[0].note}" if public[0].note else ""))
          if public else f"{TODO} hoe en wanneer de openbare mededeling gebeurt")
    q("8.5", "Maatregelen om de inbreuk aan te pakken en de mogelijke nadelige gevolgen te beperken.",
      f"Genomen: {incident.measures_taken or TODO}", f"Gepland: {incident.measures_planned or TODO}")
    q("8.6", "Internationale aspecten: heeft de inbreuk zich voorgedaan in een grensoverschrijdende "
             "gegevensverwerking?",
      "Ja. " + f"{TODO} bij welke andere Europese toezichthouders is of wordt de inbreuk gemeld?"
      if incident.cross_border else "Nee.")

    out += ["", "9. Overig"]
    other = [f"Nummer in het register datalekken van de organisatie: {incident.id}."]
    if a is not None:
        other.append("Beoordeling: " + " ".join(dutch_reasons(a, incident.data_categories)))
    q("9.1", "Overige informatie", *other)
    return "\n".join(out) + "\n"


def _answers(categories: Sequence[str], table: dict[str, tuple[str, ...]]) -> list[str]:
    lines: dict[str, list[str]] = {}
    for category in categories:
        for answer in table.get(category, ()):
            lines.setdefault(answer, []).append(short_nl(category))
    return [f"- {answer} (register: {', '.join(ours)})" for answer, ours in lines.items()]


def _other_organisation(incident: Incident, d: Any) -> list[str]:
    """Answer 1.4: the processor or other organisation involved, who found the breach and, for a processor,
    when it discovered it and told the organisation (art. 33(2))."""
    role = {"joint-controller": "gezamenlijke verwerkingsverantwoordelijke"}.get(incident.found_by, "verwerker")
    answer = [f"Ja: {incident.processor} ({role})." if incident.processor else "Nee."]
    if incident.found_by:
        answer.append(f"Het datalek is ontdekt door {AP_FOUND_BY[incident.found_by]}.")
    if incident.processor_discovered_at is not None:
        answer.append(f"De {role} heeft de inbreuk ontdekt op {d(incident.processor_discovered_at)}.")
    if incident.processor_told_at is not None:
        answer.append(f"De {role} heeft de organisatie ingelicht op {d(incident.processor_told_at)}.")
    elif incident.found_by in ("processor", "joint-controller"):
        answer.append(f"{TODO} wanneer de {role} de organisatie heeft ingelicht (leg het vast met `compliance "
                      f"incident update {incident.id} --processor-told-at TIME`).")
    return answer


def dutch_reasons(a: Assessment, categories: Sequence[str]) -> tuple[str, ...]:
    """The reasons of an assessment in Dutch.

    An assessment recorded before the Dutch reasons has none: then the Dutch says what was recorded
    (the severity, the DPC and the recommendation), not the English reasons.
    """
    if a.reasons_nl:
        return a.reasons_nl
    ja = {True: "ja", False: "nee"}
    said = (f"Ernst {_nl_number(a.score)} ({BAND_NL[a.band]}): {a.formula.replace('.', ',')}. Advies: melden aan de "
            f"autoriteit: {ja[a.notify_authority]}; betrokkenen informeren: {ja[a.notify_subjects]}"
            + ("; openbare mededeling: ja" if a.public_communication else "") + ".")
    basic = a.dpc_basic or a.dpc
    return (said, *dpc_reasons(a.dpc, basic, categories, a.dpc_reason)[1],
            "Deze beoordeling is vastgelegd voordat het register de redenen ook in het Nederlands vastlegde; een "
            "nieuwe beoordeling geeft de volledige Nederlandse toelichting.")


def _person(person: Any, setting: str, whose: str) -> str:
    if person is None or not (person.name or person.function or person.phone):
        return f"{TODO} naam, functie en telefoonnummer {whose} (zet {setting} in compliance.yaml)"
    parts = [person.name or f"{TODO} naam", person.function or f"{TODO} functie",
             person.phone or f"{TODO} telefoonnummer"]
    if person.email:
        parts.append(person.email)
    return ", ".join(parts)


_NL_DAYS = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")


def _nl_time(moment: datetime | None, zone: tzinfo) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    return f"{_NL_DAYS[local.weekday()]} {local.strftime('%d-%m-%Y')} om {local.strftime('%H:%M')}"


def _nl_number(value: Any) -> str:
    return f"{value:.2f}".replace(".", ",")


# -- text views -----------------------------------------------------------------------------------------

LIST_COLUMNS = ("Id", "Status", "Title", "Aware", "Deadline", "Clock", "Severity", "Decision", "Duties")


def list_row(incident: Incident, zone: tzinfo, now: datetime | None = None) -> tuple[str, ...]:
    a, decision = incident.assessment, incident.decision
    return (
        incident.id, incident.status, incident.title, _local(incident.aware_at, zone),
        _local(incident.deadline, zone), incident.clock(now).describe(),
        f"{a.score:.2f} {a.band}" if a else "not assessed",
        _decision_words(decision) if decision else "",
        duties_words(incident, now),
    )


_DUTY_NAMES = {"authority": "AP", "follow-up": "AP follow-up", "people": "people",
               "csirt.early-warning": "CSIRT early warning",
               "csirt.notification": "CSIRT notification", "csirt.final": "CSIRT final report"}


def duties_words(incident: Incident, now: datetime | None = None) -> str:
    """Each applicable duty with its own state, e.g. "AP due; people done; CSIRT early warning overdue"."""
    return "; ".join(f"{_DUTY_NAMES[name]} {duty.state}" for name, duty in incident.duties(now).items()
                     if duty.state != "not-applicable")


def _decision_words(decision: Any) -> str:
    people = "public" if decision.public_communication else ("yes" if decision.notify_subjects else "no")
    return f"AP {'yes' if decision.notify_authority else 'no'}, people {people}"


def _local(moment: datetime | None, zone: tzinfo, weekday: bool = False) -> str:
    if moment is None:
        return ""
    return moment.astimezone(zone).strftime("%a %Y-%m-%d %H:%M" if weekday else "%Y-%m-%d %H:%M")


def show_text(incident: Incident, zone: tzinfo, now: datetime | None = None,
              events: Sequence[Any] = (), lang: str = "en") -> str:
    """The whole record for a person to read, with the audit trail when events are given; the
    assessment's reasons in `lang` (en or nl)."""
    clock = incident.clock(now)
    a, decision = incident.assessment, incident.decision
    lines = [f"{incident.id}  {incident.title}", ""]

    def row(label: str, value: Any) -> None:
        if value not in (None, "", ()):
            lines.append(f"{label + ':':<17} {value}")

    row("Status", incident.status)
    row("Duties", duties_words(incident, now))
    for stage, duty in incident.csirt_duties(now).items() if incident.significant else ():
        row(f"CSIRT {stage}", f"due {_local(duty.deadline, zone, True)}: {duty.state}"
            + (f" {_local(duty.done_at, zone, True)}, reference {duty.reference}" if duty.done_at else ""))
    row("Occurred", _local(incident.occurred_at, zone, True))
    row("Ended", _local(incident.ended_at, zone, True) or "not recorded (ongoing or unknown)")
    row("Discovered", _local(incident.discovered_at, zone, True))
    row("Became aware", _local(incident.aware_at, zone, True))
    row("Deadline", f"{_local(incident.deadline, zone, True)} ({zone}): {clock.describe()}")
    follow_up = incident.follow_up_duty(now)
    if follow_up.state != "not-applicable":
        row("AP follow-up", f"due {_local(follow_up.deadline, zone, True)}: {follow_up.state}"
            + (f" {_local(follow_up.done_at, zone, True)}" if follow_up.done_at else "")
            + (f"; open at notification: {incident.open_items}" if incident.open_items else ""))
    row("Nature", ", ".join(incident.nature))
    row("Data categories", ", ".join(f"{c} (DPC {DATA_CATEGORIES[c].basic_dpc})" for c in incident.data_categories))
    people = f"about {incident.subjects}" + (f" to {incident.subjects_max}" if incident.subjects_max else "")
    row("People", people + (f" ({', '.join(incident.people)})" if incident.people else ""))
    row("Records", incident.records)
    row("Processor", incident.processor)
    row("Found by", incident.found_by.replace("-", " "))
    row("Processor found", _local(incident.processor_discovered_at, zone, True))
    row("Processor told", _local(incident.processor_told_at, zone, True))
    row("Cross-border", "yes" if incident.cross_border else None)
    row("Description", incident.description)
    row("How discovered", incident.how_discovered)
    row("Cause", incident.cause)
    row("Consequences", incident.consequences)
    row("Measures taken", incident.measures_taken)
    row("Measures planned", incident.measures_planned)
    row("Protection", incident.protection)
    row("AP instruction", incident.ap_instruction)
    lines.append("")
    if a is None:
        lines.append(f"Assessment:       none yet (`compliance incident assess {incident.id} ...`)")
    else:
        scaled = f", {a.advice_band} for its scale" if a.advice_band != a.band else ""
        lines.append(f"Assessment:       {a.score:.2f} {a.band} ({a.formula}){scaled} by {a.assessed_by}, "
                     f"{_local(a.assessed_at, zone)}")
        lines.append(f"Recommendation:   authority {'yes' if a.notify_authority else 'no'}, people concerned "
                     f"{'yes' if a.notify_subjects else 'no'}" + (", public communication" if a.public_communication
                                                                   else ""))
        reasons = dutch_reasons(a, incident.data_categories) if lang == "nl" else a.reasons
        lines.extend(f"  - {reason}" for reason in reasons)
    if decision is not None:
        lines.append(f"Decision:         {_decision_words(decision)}"
                     + (f" (art. 34(3): {decision.subjects_exception})" if decision.subjects_exception else "")
                     + ("" if decision.follows_recommendation else ", differs from the recommendation")
                     + f"; by {decision.decided_by}, {_local(decision.decided_at, zone)}")
        lines.append(f"  Reason: {decision.reason}")
    if incident.notifications:
        lines.append("Notifications:")
        for n in incident.notifications:
            what = "authority, " + n.kind if n.recipient == "authority" else f"people concerned, {n.channel}"
            if n.recipient == "subjects" and n.kind != "initial":
                what += f", {n.kind}"
            extra = [f"reference {n.reference}" if n.reference else "", "LATE" if _late(n, incident) else "",
                     f"delay: {n.delay_reason}" if n.delay_reason else "", n.note,
                     f"still open: {n.open_items}, follow-up due {_local(n.follow_up_due, zone)}"
                     if n.follow_up_due else "", "message recorded (`compliance incident message`)" if n.message
                     else ""]
            lines.append(f"  {_local(n.at, zone)}  {what}" + "".join(f"; {x}" for x in extra if x))
    if incident.links:
        lines.append("Linked:           " + ", ".join(f"{link.kind} {link.ref}" for link in incident.links))
    if incident.closure is not None:
        lines.append(f"Closed:           {_local(incident.closure.closed_at, zone)} by {incident.closure.closed_by}"
                     + (f": {incident.closure.note}" if incident.closure.note else ""))
    lines.append(f"Registered:       {_local(incident.created_at, zone)} by {incident.created_by}")
    if events:
        lines += ["", "Audit trail:"]
        for e in events:
            change = f" {e.field}" if e.field else ""
            if e.field and not isinstance(e.new, dict | list) and e.action != "override":
                change += f": {_short(e.old)} -> {_short(e.new)}"
            lines.append(f"  #{e.seq:<5} {_local(e.at, zone)}  {e.by}  {e.action}{change}")
    return "\n".join(lines) + "\n"


def _short(value: Any, limit: int = 60) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
