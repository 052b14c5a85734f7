"""`compliance incident`: the register of personal-data breaches on the command line.

Parsing and printing only; the rules live in this package. The level names are the command-line
contract of issue 3; tests/incidents check they match the package's tables.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from compliance.cli import (
    EXIT_FAILING,
    App,
    emit_csv,
    emit_json,
    emit_table,
    emit_text,
    error,
    format_option,
    pass_app,
    who,
)

_NATURES = ("confidentiality", "integrity", "availability")
_EI_LEVELS = ("negligible", "limited", "significant", "maximum")
_CONFIDENTIALITY = ("none", "exposed", "known-recipients", "unknown-recipients")
_INTEGRITY = ("none", "altered", "recoverable", "unrecoverable")
_AVAILABILITY = ("none", "recoverable", "temporary", "full")
_EXCEPTIONS = ("unintelligible", "risk-removed", "disproportionate-effort")
_INCIDENT_STATUSES = ("open", "assessed", "notified", "closed")
_FOUND_BY = ("municipality", "processor", "joint-controller", "other")
_YES_NO = click.Choice(["yes", "no"])


@click.group(short_help="The personal-data breach register (GDPR articles 33, 34).")
def incident() -> None:
    """The register of personal-data breaches (GDPR art. 33/34): 72-hour clock, ENISA severity, audit trail.

    \b
    compliance incident new            register a breach (asks for what is missing on a terminal)
    compliance incident assess ID      ENISA severity and a recommendation on notifying
    compliance incident decide ID      record the decision on notifying, with its reason
    compliance incident notify ID      record a notification to the AP or the people concerned
    compliance incident message ID     the message to the people concerned (--template: a draft)
    compliance incident close ID       close it once everything decided is done
    compliance incident list           open incidents first, with the time left
    compliance incident export ID      the answers for the AP notification form (--format ap)
    compliance incident verify         check that nobody altered the register outside the tool

    The register holds no personal data of the people concerned: counts and categories only.
    Times without an offset are local time (the config's timezone, Europe/Amsterdam by default).
    """


def _register(app: App) -> Any:
    from compliance.incidents import Register

    return Register(app.database(), zone=app.settings.zone, id_prefix=app.settings.incidents.id_prefix,
                    large_scale=app.settings.incidents.large_scale, audit_key=_audit_key(app))


def _audit_key(app: App) -> Any:
    """The audit trail's key from COMPLIANCE_AUDIT_KEY or `incidents.audit_key_file` (None: unkeyed)."""
    import os

    from compliance.incidents.chain import load_key

    named = app.settings.incidents.audit_key_file
    return load_key(os.environ, app.settings.resolve(named) if named else None)


def _by_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--by", "by", help="Who does this [default: the operating-system user].")(f)


def _force_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--force-reason", metavar="TEXT",
                     help="Why text that looks like personal data may stay; recorded in the audit trail.")(f)
    return click.option("--force", is_flag=True,
                        help="Store free text even though it looks like personal data (BSN, e-mail address, "
                             "IBAN); needs --force-reason.")(f)


def _forced(force: bool, force_reason: str | None) -> str | None:
    if force_reason is not None and not force:
        error("--force-reason goes with --force")
    return (force_reason or "") if force else None


def _time(app: App, value: str | None, option: str) -> Any:
    from compliance.incidents.model import parse_time

    return None if value is None else parse_time(value, app.settings.zone, option)


def _incident_out(app: App, fmt: str, found: Any, message: str) -> None:
    from compliance.incidents.export import as_json

    if fmt == "json":
        emit_json(as_json(found, app.settings.zone))
    else:
        emit_text(message)


def _when(app: App, moment: Any) -> str:
    return f"{moment.astimezone(app.settings.zone).strftime('%a %Y-%m-%d %H:%M')} ({app.settings.timezone})"


def _fact_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options of the facts of a breach, shared by `new` and `update`."""
    options = [
        click.option("--title", help="What happened, in a line (no personal data)."),
        click.option("--aware-at", metavar="ISO8601",
                     help="When the municipality became aware: the 72-hour clock starts here."),
        click.option("--occurred-at", metavar="ISO8601", help="When the breach started."),
        click.option("--discovered-at", metavar="ISO8601", help="When it was discovered [default: --aware-at]."),
        click.option("--ended-at", metavar="ISO8601", help="When it ended, if it has."),
        click.option("--nature", "natures", multiple=True, metavar="NATURE",
                     help=f"{', '.join(_NATURES)} (repeatable)."),
        click.option("--data-category", "data_categories", multiple=True, metavar="CATEGORY",
                     help="contact, identity, bsn, id-document, credentials, behavioural, financial, social-welfare, "
                          "health, special, criminal, other (repeatable)."),
        click.option("--subjects", type=int, help="Approximate number of people concerned."),
        click.option("--subjects-max", type=int, help="Upper bound of the number of people, if it is a range."),
        click.option("--records", type=int, help="Approximate number of personal-data records."),
        click.option("--people", "people", multiple=True, metavar="GROUP",
                     help="residents, employees, children, vulnerable, business-contacts, other (repeatable)."),
        click.option("--description", help="The facts: what happened and how (no personal data)."),
        click.option("--how-discovered", help="How and by whom (a role, not a name) it was discovered."),
        click.option("--cause", help="The cause, e.g. a wrong address in the mailing, a phishing e-mail."),
        click.option("--processor", help="The processor (verwerker) involved, if any: an organisation."),
        click.option("--consequences", help="Likely consequences for the people concerned."),
        click.option("--measures-taken", help="Measures taken to address the breach and limit its effects."),
        click.option("--measures-planned", help="Measures planned."),
        click.option("--protection", help="How the data were protected before the breach (e.g. encryption)."),
        click.option("--cross-border/--no-cross-border", "cross_border", default=None,
                     help="Whether the processing is cross-border (other EU countries)."),
        click.option("--significant", "significant", is_flag=True, default=None,
                     help="A significant incident under the Cbw (NIS2 art. 23): report it to the CSIRT, early "
                          "warning in 24 hours, notification in 72 hours, final report in one month."),
        click.option("--found-by", type=click.Choice(_FOUND_BY),
                     help="Who found the breach: the municipality, its processor (give --processor), a joint "
                          "controller, or someone else."),
        click.option("--processor-discovered-at", metavar="ISO8601",
                     help="When the processor (or joint controller) discovered the breach (art. 33(2))."),
        click.option("--processor-told-at", metavar="ISO8601",
                     help="When the processor told the municipality; --aware-at is not before it."),
        click.option("--ap-instruction", metavar="TEXT",
                     help="What the AP required about informing the people concerned (art. 34(4))."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _facts(app: App, given: dict[str, Any]) -> dict[str, Any]:
    """The facts given on the command line, times parsed, lists only when given."""
    facts: dict[str, Any] = {}
    for name in ("aware_at", "occurred_at", "discovered_at", "ended_at", "processor_discovered_at",
                 "processor_told_at"):
        if given.get(name) is not None:
            facts[name] = _time(app, given[name], "--" + name.replace("_", "-"))
    for name, key in (("natures", "nature"), ("data_categories", "data_categories"), ("people", "people")):
        if given.get(name):
            facts[key] = _split(given[name])
    for name in ("title", "description", "how_discovered", "cause", "processor", "consequences", "measures_taken",
                 "measures_planned", "protection", "subjects", "subjects_max", "records", "cross_border",
                 "significant", "found_by", "ap_instruction"):
        if given.get(name) is not None:
            facts[name] = given[name]
    return facts


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


_PROMPTS = {
    "title": "Title (what happened, no personal data)",
    "aware_at": "Became aware at (YYYY-MM-DD HH:MM local time, or 'now'); the 72-hour clock starts here",
    "occurred_at": "Breach started at (YYYY-MM-DD HH:MM)",
    "natures": f"Nature ({', '.join(_NATURES)}; several separated by commas)",
    "data_categories": "Data categories (contact, identity, bsn, id-document, credentials, behavioural, financial, "
                       "social-welfare, health, special, criminal, other; separated by commas)",
    "subjects": "Approximate number of people concerned",
    "description": "Description: the facts, what happened and how (no personal data)",
}


def _ask_missing(app: App, given: dict[str, Any], personal_data: bool = True) -> None:
    """Fill in the required facts that are missing: by asking on a terminal, else exit 2 with the list."""
    from compliance.incidents.register import REQUIRED

    keys = [{"nature": "natures"}.get(name, name) for name in REQUIRED
            if personal_data or name not in ("data_categories", "subjects")]
    missing = [k for k in keys if given.get(k) in (None, ())]
    if not missing:
        return
    if not sys.stdin.isatty():
        names = ", ".join("--" + {"natures": "nature", "data_categories": "data-category"}.get(k, k.replace("_", "-"))
                          for k in missing)
        error(f"missing required fields: {names} (give them as options; on a terminal "
              "`compliance incident new` asks for them)")

    def checked(key: str) -> Callable[[str], Any]:
        def convert(text: str) -> Any:
            from compliance.errors import ComplianceError

            try:
                if key in ("aware_at", "occurred_at"):
                    _time(app, text, "--" + key.replace("_", "-"))
                return text
            except ComplianceError as exc:
                raise click.UsageError(str(exc)) from None
        return convert

    for key in missing:
        if key == "subjects":
            given[key] = click.prompt(_PROMPTS[key], type=int)
        elif key in ("natures", "data_categories"):
            given[key] = (click.prompt(_PROMPTS[key]),)
        else:
            given[key] = click.prompt(_PROMPTS[key], default="now" if key == "aware_at" else None,
                                      value_proc=checked(key))


@incident.command("new")
@_fact_options
@click.option("--no-personal-data", is_flag=True,
              help="A security incident without personal data: no data categories or people; the GDPR duties "
                   "do not apply, the CSIRT track does with --significant.")
@_by_option
@_force_options
@format_option("text", "json", default="text")
@pass_app
def incident_new(app: App, /, no_personal_data: bool, by: str | None, force: bool, force_reason: str | None,
                 fmt: str, **given: Any) -> None:
    """Register an incident (a personal-data breach, or with --no-personal-data another security incident).

    With --significant the Cbw track starts: its three CSIRT deadlines are printed.

    Required: --title, --aware-at, --occurred-at, --nature, --data-category, --subjects, --description.
    On a terminal you are asked for what is missing; in a script a missing field is an error (exit 2).
    Times are ISO 8601 (2026-11-27T16:40, local time unless an offset such as +01:00 or Z is given).

    \b
    compliance incident new --title "Benefit decision sent to a wrong address" \\
      --aware-at "2026-11-27 16:40" --occurred-at "2026-11-26 09:00" --nature confidentiality \\
      --data-category social-welfare --data-category contact --subjects 1 --people residents \\
      --description "A letter with a benefit decision was sent to the wrong address."
    """
    from compliance.incidents import Draft

    _ask_missing(app, given, personal_data=not no_personal_data)
    facts = _facts(app, given)
    if no_personal_data:
        facts = {"data_categories": [], "subjects": 0, **facts}  # validation names any given
    found = _register(app).register(Draft(**facts), by=who(by), personal_data=not no_personal_data,
                                    force_reason=_forced(force, force_reason))
    clock = found.clock()
    lines = [f"registered {found.id}: {found.title}", f"became aware  {_when(app, found.aware_at)}"]
    if found.personal_data:
        lines.append(f"deadline      {_when(app, found.deadline)}, 72 hours after becoming aware: {clock.describe()}")
    else:
        lines.append("no personal data: no notification to the AP or the people concerned")
    lines += _csirt_lines(app, found)
    if found.personal_data:
        lines.append(f"next: compliance incident assess {found.id} --ei ... --confidentiality ... --integrity ... "
                     "--availability ...")
    _incident_out(app, fmt, found, "\n".join(lines))


_STAGE_NAMES = {"early-warning": "early warning", "notification": "notification", "final": "final report"}


def _csirt_lines(app: App, found: Any) -> list[str]:
    """The CSIRT deadlines of a significant incident, one line per stage."""
    if not found.significant:
        return []
    return [f"CSIRT {_STAGE_NAMES[stage] + ':':<14}{duty.state}, due {_when(app, duty.deadline)}"
            for stage, duty in found.csirt_duties().items()]


@incident.command("update")
@click.argument("incident_id", metavar="ID")
@_fact_options
@_by_option
@_force_options
@format_option("text", "json", default="text")
@pass_app
def incident_update(app: App, /, incident_id: str, by: str | None, force: bool, force_reason: str | None,
                    fmt: str, **given: Any) -> None:
    """Change facts of an incident that is not closed; each change is recorded in the audit trail.

    A repeatable option (--nature, --data-category, --people) replaces the whole list.
    """
    facts = _facts(app, given)
    if not facts:
        error("nothing to change: give at least one option, e.g. --measures-taken TEXT (see --help)")
    found = _register(app).update(incident_id, facts, by=who(by), force_reason=_forced(force, force_reason))
    _incident_out(app, fmt, found, "\n".join([f"{found.id}: changed {', '.join(sorted(facts))}",
                                               *(_csirt_lines(app, found) if "significant" in facts else [])]))


@incident.command("assess")
@click.argument("incident_id", metavar="ID")
@click.option("--dpc", type=click.IntRange(1, 4),
              help="Data processing context 1-4 [default: the highest basic score of the data categories].")
@click.option("--dpc-reason", default="", help="Why the DPC differs from the basic score (required then).")
@click.option("--ei", required=True, type=click.Choice(_EI_LEVELS),
              help="Ease of identification: 0.25, 0.5, 0.75, 1.")
@click.option("--confidentiality", required=True, type=click.Choice(_CONFIDENTIALITY),
              help="Loss of confidentiality: 0, 0, 0.25, 0.5.")
@click.option("--integrity", required=True, type=click.Choice(_INTEGRITY), help="Loss of integrity: 0, 0, 0.25, 0.5.")
@click.option("--availability", required=True, type=click.Choice(_AVAILABILITY),
              help="Loss of availability: 0, 0, 0.25, 0.5.")
@click.option("--malicious", is_flag=True,
              help="Intentional: theft, hacking, selling data (+0.5); the data are in the hands of someone who means "
                   "harm, so at least notify the authority, whatever the band.")
@click.option("--unintelligible", is_flag=True,
              help="The data were unintelligible to others: state-of-the-art encryption or hashing, key safe "
                   "(protects confidentiality only; art. 34(3)(a)).")
@click.option("--contained", is_flag=True,
              help="Retrieved, returned or destroyed by a trusted recipient, or recovered, before any misuse: register "
                   "only, unless integrity or availability were harmed or the intent was malicious.")
@click.option("--risk-removed", is_flag=True,
              help="Measures taken since make the high risk no longer likely (art. 34(3)(b)).")
@click.option("--disproportionate-effort", is_flag=True,
              help="Informing each person would take disproportionate effort: public communication "
                   "(art. 34(3)(c)).")
@click.option("--lang", type=click.Choice(["en", "nl"]), default="en", show_default=True,
              help="The language of the advice and its reasons (both are recorded).")
@_by_option
@_force_options
@format_option("text", "json", default="text")
@pass_app
def incident_assess(app: App, incident_id: str, dpc: int | None, dpc_reason: str, ei: str, confidentiality: str,
                    integrity: str, availability: str, malicious: bool, unintelligible: bool, contained: bool,
                    risk_removed: bool, disproportionate_effort: bool, lang: str, by: str | None, force: bool,
                    force_reason: str | None, fmt: str) -> None:
    """Score the breach with the ENISA method, weigh likelihood and scale, and recommend whether to notify.

    Severity SE = DPC × EI + CB (ENISA 2013): low < 2 <= medium < 3 <= high < 4 <= very high; above
    incidents.large_scale people the band rises one step. Low: register only; medium: notify the
    authority; high and very high: also inform the people concerned, unless art. 34(3)(b) or (c) is
    given. Unintelligible data, or data contained before any misuse, without harm to integrity or
    availability: register only; malicious intent: at least notify the authority. The recommendation is
    advice; record your decision with `compliance incident decide`.
    """
    from compliance.incidents.export import assessment_json, local_iso
    from compliance.incidents.recommendation import BAND_NL, nl_number

    found = _register(app).assess(
        incident_id, dpc=dpc, dpc_reason=dpc_reason, ei=ei, confidentiality=confidentiality, integrity=integrity,
        availability=availability, malicious=malicious, unintelligible=unintelligible, contained=contained,
        risk_removed=risk_removed, disproportionate_effort=disproportionate_effort, by=who(by),
        force_reason=_forced(force, force_reason))
    a = found.assessment
    if fmt == "json":
        emit_json({"id": found.id, "status": found.status, "deadline": local_iso(found.deadline, app.settings.zone),
                   **assessment_json(a, app.settings.zone, lang)})
        return
    yes = {True: "yes", False: "no"}
    if lang == "nl":
        ja = {True: "ja", False: "nee"}
        scaled = f"; door de omvang {BAND_NL[a.advice_band]}" if a.advice_band != a.band else ""
        click.echo(f"{found.id}: ernst {nl_number(f'{a.score:.2f}')} ({BAND_NL[a.band]}) = {nl_number(a.formula)}"
                   + scaled)
        click.echo(f"advies: melden aan de autoriteit: {ja[a.notify_authority]}; betrokkenen informeren: "
                   f"{ja[a.notify_subjects]}" + ("; openbare mededeling: ja" if a.public_communication else ""))
    else:
        scaled = f"; {a.advice_band} for its scale" if a.advice_band != a.band else ""
        click.echo(f"{found.id}: severity {a.score:.2f} ({a.band}) = {a.formula}{scaled}")
        click.echo(f"recommendation: notify the authority: {yes[a.notify_authority]}; inform the people concerned: "
                   f"{yes[a.notify_subjects]}" + ("; public communication: yes" if a.public_communication else ""))
    for reason in a.reasons_in(lang):
        click.echo(f"  - {reason}")
    click.echo(("volgende stap" if lang == "nl" else "next")
               + f": compliance incident decide {found.id} --notify-authority {yes[a.notify_authority]} "
               f"--notify-subjects {yes[a.notify_subjects]} --reason \"...\"")


@incident.command("decide")
@click.argument("incident_id", metavar="ID")
@click.option("--notify-authority", required=True, type=_YES_NO, help="Notify the authority (AP), art. 33.")
@click.option("--notify-subjects", required=True, type=_YES_NO, help="Inform the people concerned, art. 34.")
@click.option("--reason", required=True, help="The justification, also when it follows the recommendation.")
@click.option("--subjects-exception", type=click.Choice(_EXCEPTIONS),
              help="Why the people are not informed despite a high risk (art. 34(3) a, b, c); "
                   "disproportionate-effort means a public communication instead.")
@_by_option
@_force_options
@format_option("text", "json", default="text")
@pass_app
def incident_decide(app: App, incident_id: str, notify_authority: str, notify_subjects: str, reason: str,
                    subjects_exception: str | None, by: str | None, force: bool, force_reason: str | None,
                    fmt: str) -> None:
    """Record the decision on notifying the authority and informing the people concerned.

    The decision may differ from the recommendation of `assess`; it needs a reason either way.
    """
    found = _register(app).decide(
        incident_id, notify_authority=notify_authority == "yes", notify_subjects=notify_subjects == "yes",
        reason=reason, subjects_exception=subjects_exception or "", by=who(by),
        force_reason=_forced(force, force_reason))
    d = found.decision
    _incident_out(app, fmt, found,
                  f"{found.id}: decided: notify the authority {notify_authority}, inform the people concerned "
                  f"{notify_subjects}" + (" (public communication)" if d.public_communication else "")
                  + ("; follows the recommendation" if d.follows_recommendation
                     else "; differs from the recommendation, with the reason recorded"))


@incident.command("notify")
@click.argument("incident_id", metavar="ID")
@click.option("--authority", "to_authority", is_flag=True, help="A notification to the authority (AP).")
@click.option("--subjects", "to_subjects", is_flag=True, help="A communication to the people concerned.")
@click.option("--csirt", "to_csirt", is_flag=True,
              help="A report of a significant incident to the CSIRT (Cbw); needs --stage and --reference.")
@click.option("--stage", type=click.Choice(["early-warning", "notification", "final"]),
              help="With --csirt: the early warning (24 h), the notification (72 h) or the final report (1 month).")
@click.option("--reference", default="",
              help="The AP meldnummer (required for the first notification), or the CSIRT's reference.")
@click.option("--at", "at", metavar="ISO8601", help="When it was made [default: now].")
@click.option("--follow-up", is_flag=True, help="A follow-up notification (vervolgmelding, art. 33(4)).")
@click.option("--withdraw", is_flag=True, help="The notification to the authority is withdrawn (needs --note).")
@click.option("--channel", type=click.Choice(["letter", "e-mail", "public"]),
              help="How the people concerned were informed (with --subjects).")
@click.option("--delay-reason", default="", help="Why the authority was notified after 72 hours (art. 33(1)).")
@click.option("--note", default="", help="What was added, why it is withdrawn, or other remarks.")
@click.option("--open-items", default="", metavar="TEXT",
              help="With --authority: what is still open and will follow (notification in phases, art. 33(4)).")
@click.option("--follow-up-due", metavar="ISO8601",
              help="With --open-items: when the follow-up to the authority is due.")
@click.option("--message-nature", metavar="TEXT", help="With --subjects: what the people were told about the "
              "nature of the breach (art. 34(2)).")
@click.option("--message-contact", metavar="TEXT", help="With --subjects: the contact given, e.g. the FG.")
@click.option("--message-consequences", metavar="TEXT", help="With --subjects: the likely consequences told.")
@click.option("--message-measures", metavar="TEXT", help="With --subjects: the measures taken or proposed told.")
@click.option("--message-lang", type=click.Choice(["nl", "en"]), default="nl", show_default=True,
              help="The language of the message.")
@click.option("--message-from-template", is_flag=True,
              help="Fill the message parts not given from `compliance incident message ID --template`.")
@_by_option
@_force_options
@format_option("text", "json", default="text")
@pass_app
def incident_notify(app: App, incident_id: str, to_authority: bool, to_subjects: bool, to_csirt: bool,
                    stage: str | None, reference: str, at: str | None, follow_up: bool, withdraw: bool,
                    channel: str | None, delay_reason: str, note: str, open_items: str, follow_up_due: str | None,
                    message_nature: str | None, message_contact: str | None, message_consequences: str | None,
                    message_measures: str | None, message_lang: str, message_from_template: bool, by: str | None,
                    force: bool, force_reason: str | None, fmt: str) -> None:
    """Record a notification to the authority or the communication to the people concerned.

    \b
    compliance incident notify DL-2026-0007 --authority --reference M2026-1234 --at "2026-11-30 20:10" \\
      --delay-reason "..."
    compliance incident notify DL-2026-0007 --authority --reference M2026-1234 \\
      --open-items "the number of letters" --follow-up-due "2026-12-04 12:00"
    compliance incident notify DL-2026-0007 --authority --follow-up --note "number of letters confirmed"
    compliance incident notify DL-2026-0007 --subjects --channel letter --at "2026-12-01 10:00" \\
      --message-from-template --message-nature "..."
    compliance incident notify DL-2026-0007 --csirt --stage early-warning --reference CSIRT-2026-42
    """
    if to_authority + to_subjects + to_csirt != 1:
        error("say who was notified: --authority, --subjects or --csirt (one of them)")
    if (stage is not None) != to_csirt:
        error("--csirt needs --stage (early-warning, notification or final)" if to_csirt
              else "--stage goes with --csirt")
    given_parts = {"nature": message_nature, "contact": message_contact, "consequences": message_consequences,
                   "measures": message_measures}
    wants_message = message_from_template or any(v is not None for v in given_parts.values())
    if wants_message and not to_subjects:
        error("the --message-* options record what the people concerned were told: use them with --subjects")
    if to_csirt:
        if follow_up or withdraw or channel or delay_reason or open_items or follow_up_due:
            error("--follow-up, --withdraw, --channel, --delay-reason, --open-items and --follow-up-due are not for "
                  "a report to the CSIRT")
        assert stage is not None
        found = _register(app).notify_csirt(incident_id, stage=stage, reference=reference, at=_time(app, at, "--at"),
                                            note=note, by=who(by), force_reason=_forced(force, force_reason))
        duty = found.csirt_duties()[stage]
        timing = "in time" if duty.within_deadline else f"after the deadline {_when(app, duty.deadline)}"
        _incident_out(app, fmt, found, f"{found.id}: {_STAGE_NAMES[stage]} to the CSIRT recorded, "
                      f"{_when(app, duty.done_at)}, reference {duty.reference}; {timing}")
        return
    if follow_up and withdraw:
        error("--follow-up and --withdraw exclude each other")
    kind = "follow-up" if follow_up else "withdrawal" if withdraw else "initial"
    register = _register(app)
    message: dict[str, str] | None = None
    if wants_message:
        message = {part: text for part, text in given_parts.items() if text is not None}
        if message_from_template:
            from compliance.incidents.message import template, unfinished

            s = app.settings.incidents
            draft = template(register.get(incident_id), lang=message_lang, zone=app.settings.zone,
                             organisation=s.organisation, contact=s.contact)
            message = {**draft, **message}
            left = unfinished(message)
            if left:
                error("the template still has parts to fill in: " + ", ".join(f"--message-{p}" for p in left)
                      + " (see `compliance incident message ID --template`; give those parts yourself)")
        message["lang"] = message_lang
    found = register.notify(
        incident_id, recipient="authority" if to_authority else "subjects", kind=kind,
        at=_time(app, at, "--at"), reference=reference, channel=channel or "", delay_reason=delay_reason, note=note,
        open_items=open_items, follow_up_due=_time(app, follow_up_due, "--follow-up-due"), message=message,
        by=who(by), force_reason=_forced(force, force_reason))
    n = found.notifications[-1]
    whom = "the authority" if to_authority else f"the people concerned ({n.channel})"
    late = ""
    if to_authority and kind == "initial":
        late = "; in time" if n.at <= found.deadline else (
            f"; {(n.at - found.deadline).total_seconds() / 3600:.1f} h after the deadline, reason recorded")
    phase = (f"; follow-up due {_when(app, n.follow_up_due)} for: {n.open_items}" if n.follow_up_due else "")
    said = "; message recorded (art. 34(2))" if n.message else ""
    _incident_out(app, fmt, found, f"{found.id}: {kind} notification to {whom} recorded, {_when(app, n.at)}"
                  + (f", reference {n.reference}" if n.reference else "") + late + phase + said
                  + f"; status {found.status}")


@incident.command("message")
@click.argument("incident_id", metavar="ID")
@click.option("--template", "draft", is_flag=True,
              help="Print a draft of the message to the people concerned, filled in from the register.")
@click.option("--lang", type=click.Choice(["nl", "en"]), default="nl", show_default=True,
              help="With --template: the language of the draft.")
@format_option("text", "json", default="text")
@pass_app
def incident_message(app: App, incident_id: str, draft: bool, lang: str, fmt: str) -> None:
    """The message to the people concerned (art. 34(2)): what was recorded, or with --template a draft.

    The draft has the four parts art. 34(2) asks for: the nature of the breach, a contact (the FG), the
    likely consequences and the measures; [aanvullen] marks what to write yourself. Record what was
    sent with `compliance incident notify ID --subjects --channel ... --message-from-template
    --message-nature TEXT` (or each --message-* part).
    """
    from compliance.incidents.export import local_iso
    from compliance.incidents.message import render, template

    found = _register(app).get(incident_id)
    if draft:
        s = app.settings.incidents
        parts = template(found, lang=lang, zone=app.settings.zone, organisation=s.organisation, contact=s.contact)
        if fmt == "json":
            emit_json({"id": found.id, **parts, "text": render(found, parts)})
        else:
            emit_text(render(found, parts), nl=False)
        return
    sent = [n for n in found.notifications_to("subjects") if n.message]
    if fmt == "json":
        emit_json([{"at": local_iso(n.at, app.settings.zone), "channel": n.channel, "kind": n.kind, **(n.message or {})}
                   for n in sent])
        return
    if not sent:
        click.echo(f"{found.id}: no message to the people concerned recorded; start from the draft: "
                   f"`compliance incident message {found.id} --template --lang nl`")
        return
    for n in sent:
        click.echo(f"{_when(app, n.at)}, {n.channel} ({n.kind}):")
        emit_text(render(found, n.message or {}), nl=False)


@incident.command("close")
@click.argument("incident_id", metavar="ID")
@click.option("--note", default="", help="A closing remark, e.g. what was learned.")
@click.option("--ongoing", is_flag=True,
              help="Close the record although the incident has no end time: it goes on (art. 33(5)).")
@_by_option
@_force_options
@format_option("text", "json", default="text")
@pass_app
def incident_close(app: App, incident_id: str, note: str, ongoing: bool, by: str | None, force: bool,
                   force_reason: str | None, fmt: str) -> None:
    """Close an incident: needs the facts, the consequences, the remedial action taken and an end time
    (or --ongoing), art. 33(5); for a breach the assessment, the decision and the notifications decided
    on; for a significant incident the final report to the CSIRT."""
    found = _register(app).close(incident_id, note=note, ongoing=ongoing, by=who(by),
                                 force_reason=_forced(force, force_reason))
    _incident_out(app, fmt, found, f"{found.id}: closed")


@incident.command("link")
@click.argument("incident_id", metavar="ID")
@click.option("--control", "control_id", help="A control id (as stored by `compliance scan`).")
@click.option("--finding", "finding_id", type=int, help="A finding id (see `compliance findings --format json`).")
@_by_option
@format_option("text", "json", default="text")
@pass_app
def incident_link(app: App, incident_id: str, control_id: str | None, finding_id: int | None, by: str | None,
                  fmt: str) -> None:
    """Link an incident to a related control or finding of the monitor."""
    if (control_id is None) == (finding_id is None):
        error("give one of --control ID or --finding ID")
    kind, ref = ("control", control_id) if control_id is not None else ("finding", str(finding_id))
    found = _register(app).link(incident_id, kind=kind, ref=ref or "", by=who(by))
    _incident_out(app, fmt, found, f"{found.id}: linked to {kind} {ref}")


@incident.command("list")
@click.option("--status", "status", type=click.Choice([*_INCIDENT_STATUSES, "all"]), default="all",
              show_default=True)
@click.option("--year", type=int, help="Only incidents registered in this year.")
@format_option("table", "json", "csv")
@pass_app
def incident_list(app: App, status: str, year: int | None, fmt: str) -> None:
    """List incidents: those not closed first (overdue, then the nearest deadline), with the time left."""
    from compliance.incidents.export import CSV_COLUMNS, LIST_COLUMNS, as_json, csv_row, list_row

    found = _register(app).incidents(status=None if status == "all" else status, year=year)
    zone = app.settings.zone
    if fmt == "json":
        emit_json([as_json(i, zone) for i in found])
    elif fmt == "csv":
        emit_csv(CSV_COLUMNS, [csv_row(i, zone) for i in found])
    else:
        emit_table(LIST_COLUMNS, [list_row(i, zone) for i in found])
        if not found:
            click.echo("no incidents" + (f" with status {status}" if status != "all" else "")
                       + (f" in {year}" if year else ""))


@incident.command("show")
@click.argument("incident_id", metavar="ID")
@click.option("--history", is_flag=True, help="With --format json: add the audit trail as `events`.")
@click.option("--lang", type=click.Choice(["en", "nl"]), default="en", show_default=True,
              help="The language of the assessment's advice and reasons.")
@format_option("text", "json", default="text")
@pass_app
def incident_show(app: App, incident_id: str, history: bool, lang: str, fmt: str) -> None:
    """Show one incident: facts, clock, assessment, decision, notifications and its audit trail."""
    from compliance.incidents.export import as_json, local_iso, show_text

    register = _register(app)
    found = register.get(incident_id)
    events = register.events(found.id)
    zone = app.settings.zone
    if fmt == "json":
        data = as_json(found, zone, lang=lang)
        if history:
            data["events"] = [{"seq": e.seq, "at": local_iso(e.at, zone), "by": e.by, "action": e.action,
                               "field": e.field, "old": e.old, "new": e.new, "hash": e.hash} for e in events]
        emit_json(data)
    else:
        emit_text(show_text(found, zone, events=events, lang=lang), nl=False)


@incident.command("export")
@click.argument("incident_id", metavar="[ID]", required=False)
@click.option("--all", "export_all", is_flag=True, help="Every incident (for the annual audit).")
@click.option("--year", type=int, help="With --all: only incidents registered in this year.")
@click.option("--format", "fmt", type=click.Choice(["ap", "json", "csv"]),
              help="ap: the answers for the AP notification form (one incident) [default for ID]; "
                   "csv [default for --all]; json.")
@click.option("--supplement", is_flag=True,
              help="With --format ap: the answers for a supplement (aanvulling) to the earlier notification, "
                   "with the AP's reference number (art. 33(4)).")
@pass_app
def incident_export(app: App, incident_id: str | None, export_all: bool, year: int | None, fmt: str | None,
                    supplement: bool) -> None:
    """Export one incident (ID) or the whole register (--all).

    `--format ap` prints the answers to the Autoriteit Persoonsgegevens' notification form
    (Meldformulier datalekken) in Dutch, in the form's order, ready to copy into the portal.
    """
    from compliance.incidents.export import CSV_COLUMNS, ap_form, as_json, csv_row

    if export_all == (incident_id is not None):
        error("give an incident ID or --all")
    if year is not None and not export_all:
        error("--year goes with --all")
    register = _register(app)
    zone = app.settings.zone
    found = register.incidents(year=year) if export_all else [register.get(incident_id or "")]
    fmt = fmt or ("csv" if export_all else "ap")
    if supplement and fmt != "ap":
        error("--supplement goes with --format ap (the answers for an aanvulling to the AP)")
    if fmt == "ap":
        if export_all:
            error("--format ap is for one incident: give its ID")
        if not found[0].personal_data:
            error(f"{found[0].id} involves no personal data: there is no notification to the AP to export "
                  "(see its CSIRT deadlines in `compliance incident show`)")
        if supplement:
            initial = found[0].authority_notification
            if initial is None or not initial.reference:
                error(f"{found[0].id} has no notification to the AP with a reference number, so there is nothing to "
                      "supplement; export the answers for a new notification without --supplement, and record it "
                      f"with `compliance incident notify {found[0].id} --authority --reference MELDNUMMER`")
            if found[0].withdrawn:
                error(f"the notification of {found[0].id} to the AP was withdrawn; a supplement cannot follow")
        s = app.settings.incidents
        emit_text(ap_form(found[0], zone=zone, organisation=s.organisation, reporter=s.reporter,
                          contact=s.contact, supplement=supplement), nl=False)
    elif fmt == "csv":
        emit_csv(CSV_COLUMNS, [csv_row(i, zone) for i in found])
    else:
        emit_json([as_json(i, zone) for i in found] if export_all else as_json(found[0], zone))


@incident.command("verify")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="An earlier checkpoint: also prove that no event before it was removed or changed, and that "
                   "the newest events were not removed.")
@click.option("--save-checkpoint", "save_to", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the new checkpoint to FILE (mode 0600) when the trail is intact.")
@click.option("--anchor", is_flag=True,
              help="Once, right after introducing the audit key: append a keyed event that anchors the events "
                   "written before it, then verify.")
@format_option("text", "json", default="text")
@pass_app
def incident_verify(app: App, checkpoint_file: Path | None, save_to: Path | None, anchor: bool, fmt: str) -> None:
    """Check the audit trail: recompute the keyed chain and compare every incident with its events.

    Exit 0 when intact; 1 when an event or an incident was altered, removed or added outside the tool
    (the first broken event is named). When intact it prints a checkpoint: the event count and the
    head hash with the time, signed with the audit key. Keep it outside the database (the privacy
    officer's files, a mail to the FG): `--checkpoint FILE` later proves that nothing before it was
    removed or changed, which is the only way to see the newest events deleted. See docs/security.md.
    """
    from compliance.incidents.chain import read_checkpoint

    register = _register(app)
    earlier = read_checkpoint(checkpoint_file) if checkpoint_file is not None else None
    anchored = None
    if anchor:
        anchored = register.anchor(by=who(None))
        if fmt != "json":
            click.echo(f"anchored events 1-{anchored} (written before the audit key) with keyed event {anchored + 1}")
    result = register.verify(earlier)
    key = register.audit_key
    made = result.checkpoint if result.intact else None
    if made is not None and save_to is not None:
        _write_private(save_to, made.text() + "\n")
    if fmt == "json":
        emit_json({"intact": result.intact, "events": result.events, "incidents": result.incidents,
                   "head_hash": result.head_hash, "first_broken_event": result.first_broken_event,
                   "problems": list(result.problems), "key_id": key.id if key else None,
                   "unkeyed_events": result.unkeyed, "checkpoint": made.as_json() if made else None,
                   "compared_with": earlier.as_json() if earlier else None, "anchored_events": anchored})
    elif result.intact:
        click.echo(f"audit trail intact: {result.events} event{'s' if result.events != 1 else ''}, "
                   f"{result.incidents} incident{'s' if result.incidents != 1 else ''}; head hash {result.head_hash}")
        for line in _keying_lines(key, result.events, result.unkeyed):
            click.echo(line)
        if earlier is not None:
            click.echo(f"matches the checkpoint of {_when(app, earlier.at)} ({earlier.events} events): nothing "
                       "before it was removed or changed" + ("" if earlier.signature else
                                                             " (an unsigned checkpoint: as good as its custody)"))
        assert made is not None
        click.echo("checkpoint (keep it outside the database, e.g. mail it to the FG; check later with "
                   "`compliance incident verify --checkpoint FILE`)" + (f", saved to {save_to}" if save_to else "")
                   + ":")
        click.echo(made.text())
    else:
        if result.first_broken_event is not None:
            click.echo(f"audit trail BROKEN at event {result.first_broken_event}")
        elif result.unanchored and len(result.problems) == 1:
            click.echo("audit trail NOT ANCHORED")
        else:
            click.echo("register differs from its audit trail")
        for problem in result.problems:
            click.echo(f"  {problem}")
    if not result.intact:
        sys.exit(EXIT_FAILING)


def _keying_lines(key: Any, events: int, unkeyed: int) -> list[str]:
    """How far the chain is keyed, for `verify`: what an unkeyed part does not protect against."""
    if key is None:
        return ["not keyed: no audit key is configured, so whoever can write the database can rewrite the whole "
                "trail and recompute its hashes unnoticed; set COMPLIANCE_AUDIT_KEY or incidents.audit_key_file "
                "(see docs/security.md)"] if events else []
    lines = [f"keyed with audit key {key.id} (HMAC-SHA256)"]
    if unkeyed and unkeyed < events:
        lines.append(f"events 1-{unkeyed} are unkeyed (written before the key was introduced); event {unkeyed + 1}, "
                     "the first keyed one, anchors them")
    elif unkeyed:
        lines.append(f"events 1-{unkeyed} are unkeyed (written before the key was introduced); the next change "
                     "anchors them, and so does the checkpoint below once kept")
    return lines


def _write_private(path: Path, text: str) -> None:
    import os

    from compliance.errors import ComplianceError, display_path

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when the file existed
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise ComplianceError(f"{display_path(path)}: the checkpoint cannot be written ({exc.strerror}). Choose "
                              "a writable path for --save-checkpoint") from None
