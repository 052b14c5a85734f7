"""The product's notification recommendation: risk after the EDPB's method, with ENISA's score as the severity.

ENISA scores severity; it does not decide the GDPR questions. Risk under the GDPR is likelihood and
severity (recitals 75-76; EDPB Guidelines 9/2022 on breach notification, §IV.B). The rule
(docs/breach-register.md, "The recommendation"):

1. Every breach is documented in the register, notified or not (art. 33(5); EDPB Guidelines 01/2021 §15).
2. Severity: ENISA's score and band. Scale: above `large_scale` people (the upper bound of a range)
   the band rises one step (ENISA treats the number of people as a final criterion of its own).
3. Unintelligible data (state-of-the-art encryption or hashing, key safe) protect confidentiality only:
   with no harm to integrity or availability the breach is unlikely to result in a risk, so notify
   neither the authority nor the people concerned.
4. Contained (retrieved, returned or destroyed by a trusted recipient, or recovered, before any misuse)
   with no harm to integrity or availability and no malicious intent: register only.
5. Otherwise by the band: low → register only; medium → notify the authority; high and very high →
   notify the authority and inform the people (art. 34(1)) unless (b) the risk was removed by measures
   taken since or (c) informing each person would take disproportionate effort (then a public
   communication). Art. 34(3)(a) never cures the harm to integrity or availability that is left here.
6. Malicious intent (the data in the hands of someone who means harm): at least notify the authority,
   whatever the band.
7. Each piece of advice comes with its reasons in English and Dutch, naming the rule and the figures.

The privacy officer decides; the recommendation is advice she may depart from with a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from compliance.incidents.categories import DATA_CATEGORIES, short_nl
from compliance.incidents.enisa import BANDS, Severity

#: The default of `incidents.large_scale`: above this many people the band rises one step.
LARGE_SCALE = 10_000

EXCEPTIONS = ("unintelligible", "risk-removed", "disproportionate-effort")

BAND_NL = {"low": "laag", "medium": "gemiddeld", "high": "hoog", "very high": "zeer hoog"}

#: Harm to integrity or availability, in words (en, nl); levels not named here are no harm.
INTEGRITY_HARM = {
    "recoverable": ("the data were altered and possibly misused, though they can be recovered",
                    "de gegevens zijn gewijzigd en mogelijk misbruikt, al kunnen ze worden hersteld"),
    "unrecoverable": ("the data were altered and possibly misused beyond recovery",
                      "de gegevens zijn gewijzigd en mogelijk misbruikt, zonder mogelijkheid tot herstel"),
}
AVAILABILITY_HARM = {
    "temporary": ("the data were temporarily unavailable", "de gegevens waren tijdelijk niet beschikbaar"),
    "full": ("the data were lost for good", "de gegevens zijn blijvend verloren"),
}


@dataclass(frozen=True, slots=True)
class Recommendation:
    notify_authority: bool
    notify_subjects: bool
    public_communication: bool
    rule: str  # unintelligible | contained | low | malicious | medium | high | art-34-3-b | art-34-3-c
    summary: str
    reasons: tuple[str, ...]
    summary_nl: str = ""
    reasons_nl: tuple[str, ...] = field(default=())
    risk_band: str = ""  # the band after the scale step; ENISA's own band is the severity's


def nl_number(value: object) -> str:
    """A number as Dutch writes it: 3,25."""
    return str(value).replace(".", ",")


def count(value: int, lang: str) -> str:
    """10,000 in English, 10.000 in Dutch."""
    text = f"{value:,}"
    return text.replace(",", ".") if lang == "nl" else text


def raised(band: str) -> str:
    """The band one step up (very high stays very high)."""
    return BANDS[min(BANDS.index(band) + 1, len(BANDS) - 1)]


class _Advice:
    """Reasons collected in both languages."""

    def __init__(self) -> None:
        self.en: list[str] = []
        self.nl: list[str] = []

    def add(self, en: str, nl: str) -> None:
        self.en.append(en)
        self.nl.append(nl)


def recommend(severity: Severity, *, availability: str, integrity: str = "none", unintelligible: bool = False,
              contained: bool = False, risk_removed: bool = False, disproportionate_effort: bool = False,
              people: int = 0, large_scale: int = LARGE_SCALE) -> Recommendation:
    """Advice on notifying the authority (art. 33) and informing the people concerned (art. 34)."""
    malicious = bool(severity.malicious)
    band = severity.band
    scaled = people > large_scale
    risk_band = raised(band) if scaled else band
    score_nl = nl_number(severity.score_text)
    formula_nl = nl_number(severity.formula())
    if scaled and risk_band != band:
        level = f"severity {severity.score_text} ({band}; one step higher for its scale: {risk_band})"
        level_nl = f"ernst {score_nl} ({BAND_NL[band]}; door de omvang één stap hoger: {BAND_NL[risk_band]})"
        figures = (f"Severity {severity.score_text} ({band}): {severity.formula()}, raised to {risk_band} for more "
                   f"than {count(large_scale, 'en')} people")
        figures_nl = (f"Ernst {score_nl} ({BAND_NL[band]}): {formula_nl}, verhoogd naar {BAND_NL[risk_band]} voor "
                      f"meer dan {count(large_scale, 'nl')} betrokkenen")
    else:
        level = f"severity {severity.score_text} ({band})"
        level_nl = f"ernst {score_nl} ({BAND_NL[band]})"
        figures = f"Severity {severity.score_text} ({band}): {severity.formula()}"
        figures_nl = f"Ernst {score_nl} ({BAND_NL[band]}): {formula_nl}"
    harms = [INTEGRITY_HARM[integrity]] if integrity in INTEGRITY_HARM else []
    harms += [AVAILABILITY_HARM[availability]] if availability in AVAILABILITY_HARM else []
    harm_en = " and ".join(h[0] for h in harms)
    harm_nl = " en ".join(h[1] for h in harms)

    advice = _Advice()
    notes = _Advice()
    if scaled:
        step = (f"the band rises one step: {band} → {risk_band}" if risk_band != band
                else "the band is already the highest")
        step_nl = (f"de ernst gaat één stap omhoog: {BAND_NL[band]} → {BAND_NL[risk_band]}" if risk_band != band
                   else "de ernst is al de hoogste")
        notes.add(f"Scale: {count(people, 'en')} people concerned is more than incidents.large_scale "
                  f"({count(large_scale, 'en')}), so {step} (ENISA weighs the number of people as a criterion of "
                  "its own, outside the formula).",
                  f"Omvang: {count(people, 'nl')} betrokkenen is meer dan incidents.large_scale "
                  f"({count(large_scale, 'nl')}), dus {step_nl} (ENISA weegt het aantal betrokkenen als apart "
                  "criterium, buiten de formule).")
    given = [name for name, flag in zip(EXCEPTIONS, (unintelligible, risk_removed, disproportionate_effort),
                                        strict=True) if flag]

    def done(authority: bool, subjects: bool, public: bool, rule: str, summary: str, summary_nl: str,
             needs_subjects: bool) -> Recommendation:
        if unintelligible and harms and rule != "unintelligible":
            tail = (", and for the same reason art. 34(3)(a) does not spare informing the people concerned"
                    if needs_subjects else "")
            tail_nl = (", en om dezelfde reden ontslaat art. 34 lid 3 onder a AVG niet van het informeren van de "
                       "betrokkenen" if needs_subjects else "")
            notes.add(f"Unintelligible data protect confidentiality only: {harm_en}, so the encryption does not make "
                      f"the breach unlikely to result in a risk (EDPB Guidelines 9/2022 §IV.B){tail}.",
                      f"Onbegrijpelijke gegevens beschermen alleen de vertrouwelijkheid: {harm_nl}, dus de "
                      "versleuteling maakt een risico niet onwaarschijnlijk (EDPB-richtsnoeren 9/2022, § IV.B)"
                      f"{tail_nl}.")
        if contained and rule != "contained":
            why = [w for w, on in (("the intent was malicious", malicious), (harm_en, bool(harms))) if on]
            why_nl = [w for w, on in (("er was kwade opzet", malicious), (harm_nl, bool(harms))) if on]
            notes.add("Containment (--contained) does not make this a register-only breach, because "
                      f"{' and '.join(why)}.",
                      "Inperking (--contained) maakt dit geen datalek dat alleen in het register hoort, omdat "
                      f"{' en '.join(why_nl)}.")
        if not needs_subjects:
            # unintelligible either ended the advice above or has its own note
            unused = [g for g in given if g != "unintelligible"]
            if unused:
                several = len(unused) > 1
                notes.add(
                    f"The art. 34(3) exception{'s' if several else ''} given ({', '.join(unused)}) "
                    f"{'change' if several else 'changes'} nothing here: "
                    f"{'they concern' if several else 'it concerns'} informing the people concerned, which "
                    f"{level} does not require.",
                    f"De gegeven uitzondering{'en' if several else ''} van art. 34 lid 3 AVG ({', '.join(unused)}) "
                    f"{'veranderen' if several else 'verandert'} hier niets: {'die gaan' if several else 'die gaat'} "
                    f"over het informeren van de betrokkenen, en {level_nl} vraagt daar niet om.")
        return Recommendation(authority, subjects, public, rule, summary, tuple(advice.en + notes.en), summary_nl,
                              tuple(advice.nl + notes.nl), risk_band)

    register_only = "record it in the register only"
    register_only_nl = "leg het alleen vast in het register"
    documented = "it stays documented in the register (art. 33(5))"
    documented_nl = "het blijft vastgelegd in het register (art. 33 lid 5 AVG)"

    if unintelligible and not harms:
        advice.add("Authority: no notification, because the data were unintelligible to unauthorised persons "
                   "(encrypted or hashed, key safe) and neither integrity nor availability was harmed (availability "
                   f"{_availability_words(availability)}), so the breach is unlikely to result in a risk "
                   f"(art. 33(1)); {documented}.",
                   "Autoriteit: geen melding, omdat de gegevens voor onbevoegden onbegrijpelijk waren (versleuteld of "
                   "gehasht, sleutel veilig) en integriteit en beschikbaarheid niet zijn aangetast (beschikbaarheid "
                   f"{_availability_words(availability, 'nl')}), zodat het datalek waarschijnlijk geen risico oplevert "
                   f"(art. 33 lid 1 AVG); {documented_nl}.")
        advice.add("People concerned: not informed, because the data were unintelligible to unauthorised persons "
                   "(art. 34(3)(a)).",
                   "Betrokkenen: niet informeren, omdat de gegevens voor onbevoegden onbegrijpelijk waren (art. 34 "
                   "lid 3 onder a AVG).")
        return done(False, False, False, "unintelligible",
                    f"{figures}; the data were unintelligible to others and neither integrity nor availability was "
                    f"harmed, so the breach is unlikely to result in a risk: {register_only}, notify neither the "
                    "authority nor the people concerned (art. 33(1), art. 34(3)(a)).",
                    f"{figures_nl}; de gegevens waren voor anderen onbegrijpelijk en integriteit en beschikbaarheid "
                    f"zijn niet aangetast, zodat het datalek waarschijnlijk geen risico oplevert: {register_only_nl}, "
                    "meld het niet aan de autoriteit en niet aan de betrokkenen (art. 33 lid 1, art. 34 lid 3 onder a "
                    "AVG).", False)

    if contained and not harms and not malicious:
        advice.add("Authority: no notification, because the data were contained before any misuse (retrieved, "
                   f"returned or destroyed by a trusted recipient, or recovered), so despite {level} the breach is "
                   f"unlikely to result in a risk (art. 33(1); EDPB Guidelines 9/2022 §IV.B); {documented}.",
                   "Autoriteit: geen melding, omdat de gegevens zijn ingeperkt voordat er misbruik van kon worden "
                   "gemaakt (teruggehaald, teruggegeven of vernietigd door een betrouwbare ontvanger, of hersteld), "
                   f"zodat het datalek ondanks {level_nl} waarschijnlijk geen risico oplevert (art. 33 lid 1 AVG; "
                   f"EDPB-richtsnoeren 9/2022, § IV.B); {documented_nl}.")
        advice.add("People concerned: not informed, because with the data contained no high risk is likely "
                   "(art. 34(1)).",
                   "Betrokkenen: niet informeren, omdat na de inperking geen hoog risico waarschijnlijk is (art. 34 "
                   "lid 1 AVG).")
        return done(False, False, False, "contained",
                    f"{figures}; contained before any misuse (a trusted recipient or recovery): {register_only} "
                    "(art. 33(1), art. 33(5)).",
                    f"{figures_nl}; ingeperkt vóór enig misbruik (een betrouwbare ontvanger of herstel): "
                    f"{register_only_nl} (art. 33 lid 1 en lid 5 AVG).", False)

    no_high_risk = (f"People concerned: not informed, because {level} is no high risk (art. 34(1)).",
                    f"Betrokkenen: niet informeren, omdat {level_nl} geen hoog risico is (art. 34 lid 1 AVG).")
    if risk_band == "low" and not malicious:
        advice.add(f"Authority: no notification, because {level} is below 2, so the breach is unlikely to result in "
                   f"a risk (art. 33(1)); {documented}.",
                   f"Autoriteit: geen melding, omdat {level_nl} onder 2 ligt, zodat het datalek waarschijnlijk geen "
                   f"risico oplevert (art. 33 lid 1 AVG); {documented_nl}.")
        advice.add(*no_high_risk)
        return done(False, False, False, "low",
                    f"{figures}; unlikely to result in a risk: {register_only} (art. 33(1), art. 33(5)).",
                    f"{figures_nl}; waarschijnlijk geen risico: {register_only_nl} (art. 33 lid 1 en lid 5 AVG).",
                    False)
    if risk_band == "low":
        advice.add(f"Authority: notify within 72 hours of becoming aware: {level} alone would mean register only, "
                   "but the data are in the hands of someone who means harm (malicious intent), which makes a risk "
                   "to the people concerned likely (art. 33(1); EDPB Guidelines 9/2022 §IV.B).",
                   f"Autoriteit: melden binnen 72 uur na het bekend worden: bij {level_nl} alleen zou vastleggen in "
                   "het register volstaan, maar de gegevens zijn in handen van iemand die kwaad wil (kwade opzet), "
                   "waardoor een risico voor de betrokkenen waarschijnlijk is (art. 33 lid 1 AVG; EDPB-richtsnoeren "
                   "9/2022, § IV.B).")
        advice.add(*no_high_risk)
        return done(True, False, False, "malicious",
                    f"{figures}; the data are in the hands of someone who means harm: notify the authority within "
                    "72 hours (art. 33(1)); the people concerned need not be informed (no high risk, art. 34(1)).",
                    f"{figures_nl}; de gegevens zijn in handen van iemand die kwaad wil: meld het binnen 72 uur aan "
                    "de autoriteit (art. 33 lid 1 AVG); de betrokkenen hoeven niet te worden geïnformeerd (geen hoog "
                    "risico, art. 34 lid 1 AVG).", False)

    advice.add(f"Authority: notify within 72 hours of becoming aware, because {level} means the breach is likely to "
               "result in a risk to the people concerned (art. 33(1)).",
               f"Autoriteit: melden binnen 72 uur na het bekend worden, omdat {level_nl} betekent dat het datalek "
               "waarschijnlijk een risico oplevert voor de betrokkenen (art. 33 lid 1 AVG).")
    notify_authority = ("notify the authority within 72 hours (art. 33(1))",
                        "meld het binnen 72 uur aan de autoriteit (art. 33 lid 1 AVG)")
    if risk_band == "medium":
        advice.add(f"People concerned: not required, because {level} is a risk but no high risk (art. 34(1)).",
                   f"Betrokkenen: niet verplicht, omdat {level_nl} een risico is, maar geen hoog risico (art. 34 lid "
                   "1 AVG).")
        return done(True, False, False, "medium",
                    f"{figures}; {notify_authority[0]}; the people concerned need not be informed (no high risk, "
                    "art. 34(1)).",
                    f"{figures_nl}; {notify_authority[1]}; de betrokkenen hoeven niet te worden geïnformeerd (geen "
                    "hoog risico, art. 34 lid 1 AVG).", False)

    # high or very high: art. 34(1) unless (b) or (c); (a) is out, as unintelligible data without harm to
    # integrity or availability ended above
    if risk_removed:
        advice.add(f"People concerned: not required despite {level}, because measures taken since ensure the high "
                   "risk is no longer likely to materialise (art. 34(3)(b)).",
                   f"Betrokkenen: niet verplicht ondanks {level_nl}, omdat maatregelen achteraf ervoor zorgen dat het "
                   "hoge risico zich waarschijnlijk niet meer voordoet (art. 34 lid 3 onder b AVG).")
        return done(True, False, False, "art-34-3-b",
                    f"{figures}; {notify_authority[0]}; informing the people concerned is not required because "
                    "measures taken since ensure the high risk is no longer likely to materialise (art. 34(3)(b)).",
                    f"{figures_nl}; {notify_authority[1]}; de betrokkenen informeren is niet verplicht, omdat "
                    "maatregelen achteraf ervoor zorgen dat het hoge risico zich waarschijnlijk niet meer voordoet "
                    "(art. 34 lid 3 onder b AVG).", True)
    if disproportionate_effort:
        advice.add(f"People concerned: {level} is a high risk, but informing each of them would take "
                   "disproportionate effort, so make a public communication or a similarly effective measure "
                   "instead (art. 34(3)(c)).",
                   f"Betrokkenen: {level_nl} is een hoog risico, maar iedere betrokkene afzonderlijk informeren "
                   "vergt een onevenredige inspanning; doe daarom een openbare mededeling of neem een even "
                   "doeltreffende maatregel (art. 34 lid 3 onder c AVG).")
        return done(True, False, True, "art-34-3-c",
                    f"{figures}; {notify_authority[0]} and make a public communication instead of informing each "
                    "person, which would take disproportionate effort (art. 34(3)(c)).",
                    f"{figures_nl}; {notify_authority[1]} en doe een openbare mededeling in plaats van iedere "
                    "betrokkene te informeren, wat een onevenredige inspanning zou vergen (art. 34 lid 3 onder c "
                    "AVG).", True)
    advice.add(f"People concerned: inform them without undue delay, because {level} means a high risk to their "
               "rights and freedoms (art. 34(1)).",
               f"Betrokkenen: informeer hen zonder onredelijke vertraging, omdat {level_nl} een hoog risico betekent "
               "voor hun rechten en vrijheden (art. 34 lid 1 AVG).")
    return done(True, True, False, "high",
                f"{figures}; notify the authority within 72 hours and inform the people concerned (art. 34(1)).",
                f"{figures_nl}; meld het binnen 72 uur aan de autoriteit en informeer de betrokkenen (art. 34 lid 1 "
                "AVG).", True)


def _availability_words(availability: str, lang: str = "en") -> str:
    words = {"none": ("not affected", "niet aangetast"),
             "recoverable": ("recovered without difficulty", "zonder moeite hersteld")}
    return words[availability][lang == "nl"] if availability in words else availability


def dpc_reasons(dpc: int, basic: int, categories: Sequence[str], dpc_reason: str) -> tuple[tuple[str, ...],
                                                                                        tuple[str, ...]]:
    """The reasons about the DPC (en, nl): the adjustment with its reason, or the product default that set it."""
    if dpc != basic:
        listed = ", ".join(f"{c} {DATA_CATEGORIES[c].basic_dpc}" for c in categories)
        listed_nl = ", ".join(f"{short_nl(c)} {DATA_CATEGORIES[c].basic_dpc}" for c in categories)
        return ((f"DPC {dpc} instead of {basic}, the basic score of the data categories ({listed}): {dpc_reason}",),
                (f"DPC {dpc} in plaats van {basic}, de basisscore van de gegevenscategorieën ({listed_nl}): "
                 f"{dpc_reason}",))
    en: list[str] = []
    nl: list[str] = []
    for name in categories:
        category = DATA_CATEGORIES[name]
        if category.why and category.basic_dpc == basic:
            en.append(f"DPC {basic} from {name}: {category.why}.")
            nl.append(f"DPC {basic} door {short_nl(name)}: {category.why_nl}.")
    return tuple(en), tuple(nl)


def exception_contradiction(exception: str, *, unintelligible: bool, integrity: str, availability: str) -> str:
    """Why the assessment contradicts an art. 34(3) exception of a decision, or "" when it does not.

    Art. 34(3)(a) needs data that were unintelligible, and it covers confidentiality only, so it cannot
    answer harm to integrity or availability.
    """
    if exception != "unintelligible":
        return ""
    if not unintelligible:
        return ("the assessment says the data were intelligible (it was made without --unintelligible), so art. "
                "34(3)(a) cannot apply; if they were encrypted or hashed with the key safe, assess again with "
                "--unintelligible first")
    harms = [INTEGRITY_HARM[integrity][0]] if integrity in INTEGRITY_HARM else []
    harms += [AVAILABILITY_HARM[availability][0]] if availability in AVAILABILITY_HARM else []
    if harms:
        return (f"art. 34(3)(a) covers data unintelligible to whoever obtained them (confidentiality), but the "
                f"assessment says {' and '.join(harms)} (integrity {integrity}, availability {availability}); "
                "unintelligibility does not cure that risk")
    return ""


__all__ = ["BAND_NL", "EXCEPTIONS", "LARGE_SCALE", "Recommendation", "dpc_reasons", "exception_contradiction",
           "recommend"]
