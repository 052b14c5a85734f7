"""The breach register's operations: register, update, assess, decide, notify, close, link; read; verify.

Every operation runs in one transaction that also appends its events to the hash-chained audit trail;
when anything is wrong (bad input, a skipped step, personal data in free text) nothing is stored.
Writers are serialised (a PostgreSQL advisory lock, or SQLite's write lock taken at the start), so ids
(a sequence per year) and the chain stay unique when several people work at once; unique constraints
on both back this up.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from compliance.errors import did_you_mean
from compliance.incidents import chain, enisa, pii
from compliance.incidents.categories import DATA_CATEGORIES, NATURES, PEOPLE, basic_dpc, checked_names
from compliance.incidents.counts import Counted, tally
from compliance.incidents.counts import Figures as Figures  # the package's `Figures`, defined beside the counts
from compliance.incidents.errors import IncidentNotFound, InvalidInput, PersonalDataFound, StepSkipped
from compliance.incidents.model import (
    CHANNELS,
    CSIRT_STAGES,
    FOUND_BY,
    LINK_KINDS,
    MESSAGE_LANGS,
    MESSAGE_PARTS,
    NOTIFICATION_KINDS,
    RECIPIENTS,
    Assessment,
    Closure,
    Decision,
    Incident,
    Link,
    Notification,
    deadline_for,
    utc_now,
)
from compliance.incidents.recommendation import (
    EXCEPTIONS,
    LARGE_SCALE,
    dpc_reasons,
    exception_contradiction,
    recommend,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from compliance.db import Database
    from compliance.db.models import IncidentRow

#: The key of the PostgreSQL advisory lock that serialises writes to the register ("DLrg"), with the hash of
#: the connection's schema: each organisation's register (a schema each, issue 20) has its own lock.
_LOCK_KEY = int.from_bytes(b"DLrg", "big", signed=True)


@dataclass(frozen=True, slots=True)
class Draft:
    """The facts of a new breach (art. 33(3), 33(5)). Times are aware datetimes."""

    title: str
    description: str
    occurred_at: datetime
    aware_at: datetime
    nature: Sequence[str]
    data_categories: Sequence[str]
    subjects: int
    discovered_at: datetime | None = None
    ended_at: datetime | None = None
    how_discovered: str = ""
    cause: str = ""
    subjects_max: int | None = None
    records: int | None = None
    people: Sequence[str] = ()
    processor: str = ""
    consequences: str = ""
    measures_taken: str = ""
    measures_planned: str = ""
    protection: str = ""
    cross_border: bool = False
    significant: bool = False
    found_by: str = ""
    processor_discovered_at: datetime | None = None
    processor_told_at: datetime | None = None
    ap_instruction: str = ""


FACT_FIELDS = tuple(Draft.__dataclass_fields__)
#: What `compliance incident new` needs; it asks for what is missing on a terminal.
REQUIRED = ("title", "aware_at", "occurred_at", "nature", "data_categories", "subjects", "description")
TEXT_FIELDS = ("title", "description", "how_discovered", "cause", "processor", "consequences", "measures_taken",
               "measures_planned", "protection", "ap_instruction")
TIME_FIELDS = ("occurred_at", "ended_at", "discovered_at", "aware_at", "processor_discovered_at", "processor_told_at")
#: The facts added after the first release of the register, with the value of an incident created before.
LATER_FACTS = {"significant": False, "found_by": "", "processor_discovered_at": None, "processor_told_at": None,
               "ap_instruction": ""}
_LIST_FACTS = ("nature", "data_categories", "people")
#: The action of the keyed event that anchors the unkeyed events written before the audit key existed.
ANCHOR = "anchor"
#: Trail fields that grow: an event on them appends its `new` value.
APPENDED = ("notifications", "links")


def option(name: str) -> str:
    """The command-line option of a field, for messages: aware_at -> --aware-at."""
    return "--" + {"data_categories": "data-category", "nature": "nature", "people": "people"}.get(
        name, name.replace("_", "-"))


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the audit trail, values decoded."""

    seq: int
    incident_id: str
    at: datetime
    by: str
    action: str
    field: str | None
    old: Any
    new: Any
    hash: str


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of checking the audit trail and the register against it."""

    events: int
    incidents: int
    head_hash: str
    problems: tuple[str, ...]
    first_broken_event: int | None
    #: events with plain SHA-256, written before the audit key existed (or without one)
    unkeyed: int = 0
    #: the count and head, signed with the audit key when one is configured; kept outside the database
    checkpoint: chain.Checkpoint | None = None
    #: the earlier checkpoint this verification was compared with, if any
    compared_with: chain.Checkpoint | None = None
    #: a key is configured but every event is unkeyed: nothing keyed anchors them (yet)
    unanchored: bool = False

    @property
    def intact(self) -> bool:
        return not self.problems


class Register:
    """The breach register in a database; ids are `<id_prefix>-<year>-<number>`, year in `zone`.

    Above `large_scale` people an assessment's band rises one step (`incidents.large_scale`).
    """

    def __init__(self, database: Database, *, zone: tzinfo = UTC, id_prefix: str = "DL",
                 large_scale: int = LARGE_SCALE, audit_key: chain.AuditKey | None = None) -> None:
        self.db = database
        self.audit_key = audit_key
        self.zone = zone
        self.id_prefix = id_prefix
        self.large_scale = large_scale

    # writing ------------------------------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """A transaction holding the register's write lock from its first statement."""
        from sqlalchemy import text

        with self.db.transaction() as session:
            connection = session.connection()
            if self.db.dialect == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))"),
                                   {"key": _LOCK_KEY})
            elif self.db.dialect == "sqlite":
                # pysqlite opens its transaction lazily, at the first write; take the write lock now so
                # reading the last id and the chain's head cannot race another writer
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            session.info["audit_key"] = self.audit_key
            yield session

    def register(self, draft: Draft, *, by: str, personal_data: bool = True, force_reason: str | None = None,
                 now: datetime | None = None) -> Incident:
        """Record a new incident with status `open`; return it with its id and deadline.

        With `personal_data=False` it is a security incident without personal data (no data categories,
        no people): the GDPR duties do not apply, the Cbw track does when it is significant.
        """
        from sqlalchemy import func, select

        from compliance.db.models import IncidentRow

        now = now or utc_now()
        check_by(by)  # before the row that records it is flushed
        facts = validated_facts({**asdict(draft), "personal_data": personal_data}, now, self.zone)
        overrides = _guard({name: facts[name] for name in TEXT_FIELDS}, force_reason, "the incident was not registered")
        with self._writing() as session:
            year = now.astimezone(self.zone).year
            number = (session.scalar(select(func.max(IncidentRow.number)).where(IncidentRow.year == year)) or 0) + 1
            incident_id = f"{self.id_prefix}-{year}-{number:04d}"
            row = IncidentRow(id=incident_id, year=year, number=number, status="open",
                              deadline=deadline_for(facts["aware_at"]), assessment=None, decision=None, closure=None,
                              created_at=now, created_by=by, updated_at=now, **facts)
            session.add(row)
            session.flush()
            trail = _Trail(session, by, now)
            trail.add(incident_id, "create", None, None, snapshot(row, [], []))
            trail.overrides(incident_id, overrides, force_reason)
            return _view(row, [], [])

    def update(self, incident_id: str, changes: Mapping[str, Any], *, by: str, force_reason: str | None = None,
               now: datetime | None = None) -> Incident:
        """Change facts of an incident (not closed); each changed field becomes an event."""
        unknown = set(changes) - set(FACT_FIELDS)
        if unknown:
            raise InvalidInput(f"these fields cannot be changed: {', '.join(sorted(unknown))}")
        now = now or utc_now()
        with self._writing() as session:
            row = self._row(session, incident_id)
            _not_closed(row, "changed")
            current = {name: getattr(row, name) for name in FACT_FIELDS}
            if current["significant"] and changes.get("significant") is False and self._view_of(
                    session, row).notifications_to("csirt"):
                raise StepSkipped(f"{row.id} was already reported to the CSIRT; it stays a significant incident")
            personal_data = bool(changes.get("data_categories", current["data_categories"]))
            merged = validated_facts({**current, **changes, "personal_data": personal_data}, now, self.zone)
            changed = [name for name in FACT_FIELDS if name in changes and merged[name] != current[name]]
            if not changed:
                raise InvalidInput(f"nothing to change: the values given are what {row.id} already holds")
            overrides = _guard({n: merged[n] for n in changed if n in TEXT_FIELDS}, force_reason,
                               f"{row.id} was not changed")
            trail = _Trail(session, by, now)
            for name in changed:
                trail.add(row.id, "update", name, fact_value(name, current[name]), fact_value(name, merged[name]))
                setattr(row, name, merged[name])
            if "aware_at" in changed:
                row.deadline = deadline_for(merged["aware_at"])
            row.updated_at = now
            trail.overrides(row.id, overrides, force_reason)
            return self._view_of(session, row)

    def assess(self, incident_id: str, *, ei: str, confidentiality: str, integrity: str, availability: str,
               malicious: bool = False, unintelligible: bool = False, contained: bool = False,
               risk_removed: bool = False, disproportionate_effort: bool = False, dpc: int | None = None,
               dpc_reason: str = "", by: str, force_reason: str | None = None,
               now: datetime | None = None) -> Incident:
        """Score the breach with ENISA, weigh likelihood, containment and scale, and record the
        recommendation; `open` becomes `assessed`.

        The DPC defaults to the highest basic score of the incident's data categories; another DPC
        needs a reason (ENISA's contextual adjustment, never silent). A product default that departs
        from ENISA's basic score (the BSN) is named in the reasons.
        """
        now = now or utc_now()
        dpc_reason = dpc_reason.strip()
        with self._writing() as session:
            row = self._row(session, incident_id)
            _not_closed(row, "assessed")
            _personal_data(row, "assess")
            basic = basic_dpc(row.data_categories)
            categories = ", ".join(f"{c} {DATA_CATEGORIES[c].basic_dpc}" for c in row.data_categories)
            if dpc is None:
                dpc = basic
            elif dpc != basic and not dpc_reason:
                raise InvalidInput(f"--dpc {dpc} differs from {basic}, the highest basic score of the data categories "
                                   f"of {row.id} ({categories}); give the reason for the adjustment with --dpc-reason "
                                   "(ENISA: volume, the controller, vulnerable people, public availability...)")
            severity = enisa.severity(dpc=dpc, ei=ei, confidentiality=confidentiality, integrity=integrity,
                                      availability=availability, malicious=malicious, unintelligible=unintelligible)
            _check_circumstances(row, {"confidentiality": confidentiality, "integrity": integrity,
                                       "availability": availability})
            people = max(row.subjects, row.subjects_max or 0)
            advice = recommend(severity, integrity=integrity, availability=availability,
                               unintelligible=unintelligible, contained=contained, risk_removed=risk_removed,
                               disproportionate_effort=disproportionate_effort, people=people,
                               large_scale=self.large_scale)
            about_dpc, about_dpc_nl = dpc_reasons(dpc, basic, row.data_categories, dpc_reason)
            reasons, reasons_nl = advice.reasons + about_dpc, advice.reasons_nl + about_dpc_nl
            overrides = _guard({"dpc_reason": dpc_reason}, force_reason, f"{row.id} was not assessed")
            assessment = Assessment(
                dpc=dpc, dpc_basic=basic, dpc_reason=dpc_reason, ei=ei, confidentiality=confidentiality,
                integrity=integrity, availability=availability, malicious=malicious, unintelligible=unintelligible,
                risk_removed=risk_removed, disproportionate_effort=disproportionate_effort, score=severity.score,
                band=severity.band, formula=severity.formula(), notify_authority=advice.notify_authority,
                notify_subjects=advice.notify_subjects, public_communication=advice.public_communication,
                rule=advice.rule, summary=advice.summary, reasons=reasons, assessed_at=now, assessed_by=by,
                contained=contained, people=people, large_scale=self.large_scale, risk_band=advice.risk_band,
                summary_nl=advice.summary_nl, reasons_nl=reasons_nl,
            )
            trail = _Trail(session, by, now)
            record = assessment.record()
            trail.add(row.id, "assess", "assessment", row.assessment, record)
            row.assessment, row.score, row.band = record, record["score"], assessment.band
            if row.status == "open":
                trail.add(row.id, "assess", "status", row.status, "assessed")
                row.status = "assessed"
            row.updated_at = now
            trail.overrides(row.id, overrides, force_reason)
            return self._view_of(session, row)

    def decide(self, incident_id: str, *, notify_authority: bool, notify_subjects: bool, reason: str,
               subjects_exception: str = "", by: str, force_reason: str | None = None,
               now: datetime | None = None) -> Incident:
        """Record the decision on notifying the authority and informing the people, with its reason."""
        now = now or utc_now()
        reason = reason.strip()
        if not reason:
            raise InvalidInput("a decision needs its justification: give --reason (art. 33(5) documentation)")
        if subjects_exception and subjects_exception not in EXCEPTIONS:
            hint = did_you_mean(subjects_exception, EXCEPTIONS)
            raise InvalidInput(f"unknown --subjects-exception '{subjects_exception}'" + (f"; {hint}" if hint else "") +
                               f" (choose from: {', '.join(EXCEPTIONS)})")
        if subjects_exception and notify_subjects:
            raise InvalidInput("--subjects-exception says why the people concerned are not informed (art. 34(3)); "
                               "it cannot go with --notify-subjects yes")
        with self._writing() as session:
            row = self._row(session, incident_id)
            _not_closed(row, "decided on")
            _personal_data(row, "decide")
            if row.assessment is None:
                raise StepSkipped(f"{row.id} has no assessment yet: run `compliance incident assess {row.id} --ei ... "
                                  "--confidentiality ... --integrity ... --availability ...` first; the decision "
                                  "follows the assessment")
            incident = self._view_of(session, row)
            initial = incident.authority_notification
            if initial is not None and not incident.withdrawn and not notify_authority:
                raise StepSkipped(f"the authority was already notified about {row.id} ({self._when(initial.at)}, "
                                  f"reference {initial.reference}); record a withdrawal first: `compliance incident "
                                  f"notify {row.id} --authority --withdraw --note REASON`")
            informed = incident.subjects_informed_at
            if informed is not None and not notify_subjects and subjects_exception != "disproportionate-effort":
                raise StepSkipped(f"the people concerned in {row.id} were already informed ({self._when(informed)}); "
                                  "a decision not to inform them cannot follow")
            advice = incident.assessment
            assert advice is not None
            contradiction = exception_contradiction(subjects_exception, unintelligible=advice.unintelligible,
                                                    integrity=advice.integrity, availability=advice.availability)
            if contradiction:
                raise InvalidInput(f"--subjects-exception {subjects_exception} contradicts the assessment of {row.id}: "
                                   f"{contradiction}")
            decision = Decision(
                notify_authority=notify_authority, notify_subjects=notify_subjects,
                subjects_exception=subjects_exception, reason=reason,
                follows_recommendation=(notify_authority, notify_subjects, subjects_exception ==
                                        "disproportionate-effort") ==
                                       (advice.notify_authority, advice.notify_subjects, advice.public_communication),
                decided_at=now, decided_by=by,
            )
            overrides = _guard({"reason": reason}, force_reason, f"no decision was recorded for {row.id}")
            trail = _Trail(session, by, now)
            record = decision.record()
            trail.add(row.id, "decide", "decision", row.decision, record)
            row.decision, row.updated_at = record, now
            trail.overrides(row.id, overrides, force_reason)
            return self._view_of(session, row)

    def notify(self, incident_id: str, *, recipient: str, kind: str = "initial", at: datetime | None = None,
               reference: str = "", channel: str = "", delay_reason: str = "", note: str = "", by: str,
               open_items: str = "", follow_up_due: datetime | None = None,
               message: Mapping[str, str] | None = None, force_reason: str | None = None,
               now: datetime | None = None) -> Incident:
        """Record a notification to the authority (initial, follow-up, withdrawal) or to the people concerned.

        An initial notification to the authority after the deadline needs the reasons for the delay
        (art. 33(1)). The first notification moves the incident to `notified`. A notification to the
        authority may leave items open (`open_items`) with the date the follow-up is due (art. 33(4));
        a communication to the people may record what they were told (`message`, art. 34(2)).
        """
        if recipient not in RECIPIENTS:
            raise InvalidInput(f"unknown recipient '{recipient}'; choose from: {', '.join(RECIPIENTS)}")
        if kind not in NOTIFICATION_KINDS:
            raise InvalidInput(f"unknown kind of notification '{kind}'; choose from: {', '.join(NOTIFICATION_KINDS)}")
        now = now or utc_now()
        at = at or now
        reference, channel, delay_reason, note = reference.strip(), channel.strip(), delay_reason.strip(), note.strip()
        open_items = open_items.strip()
        if at > now:
            raise InvalidInput(f"--at {self._when(at)} lies in the future; record a notification once it has been made")
        _check_phase(recipient, kind, at, open_items, follow_up_due, self.zone)
        message = checked_message(message, recipient)
        with self._writing() as session:
            row = self._row(session, incident_id)
            _not_closed(row, "notified")
            incident = self._view_of(session, row)
            if at < incident.aware_at:
                raise InvalidInput(f"--at {self._when(at)} lies before the moment of becoming aware of {row.id} "
                                   f"({self._when(incident.aware_at)})")
            decision = incident.decision
            if decision is None:
                step = "assess and then decide" if incident.assessment is None else "decide"
                raise StepSkipped(f"{row.id} has no decision to notify yet: {step} first (`compliance incident "
                                  f"decide {row.id} --notify-authority yes|no --notify-subjects yes|no --reason ...`)")
            if recipient == "authority":
                reference = self._check_authority(incident, kind, at, reference, channel, delay_reason, note)
            else:
                self._check_subjects(incident, kind, channel)
            # the contact is the controller's (the FG's), not someone concerned: it may hold an e-mail address
            overrides = _guard({"reference": reference, "delay_reason": delay_reason, "note": note,
                                "open_items": open_items,
                                **{f"message_{part}": text for part, text in (message or {}).items()
                                   if part in ("nature", "consequences", "measures")}},
                               force_reason, f"no notification was recorded for {row.id}")
            from compliance.db.models import IncidentNotification

            notification = IncidentNotification(
                incident_id=row.id, recipient=recipient, kind=kind, at=at, reference=reference, channel=channel,
                delay_reason=delay_reason, note=note, recorded_at=now, recorded_by=by, open_items=open_items,
                follow_up_due=follow_up_due, message=message)
            session.add(notification)
            trail = _Trail(session, by, now)
            trail.add(row.id, "notify", "notifications", None, notification_of(notification).record())
            # `notified` once the authority has been notified, or the people where the authority is not
            if row.status == "assessed" and (recipient == "authority" or not decision.notify_authority):
                trail.add(row.id, "notify", "status", row.status, "notified")
                row.status = "notified"
            row.updated_at = now
            trail.overrides(row.id, overrides, force_reason)
            session.flush()
            return self._view_of(session, row)

    def notify_csirt(self, incident_id: str, *, stage: str, reference: str, at: datetime | None = None,
                     note: str = "", by: str, force_reason: str | None = None,
                     now: datetime | None = None) -> Incident:
        """Record a report of a significant incident to the CSIRT (Cbw, NIS2 art. 23(4)): the early warning,
        the incident notification or the final report, each once and in that order."""
        if stage not in CSIRT_STAGES:
            hint = did_you_mean(stage, tuple(CSIRT_STAGES))
            raise InvalidInput(f"unknown --stage '{stage}'" + (f"; {hint}" if hint else "") +
                               f" (choose from: {', '.join(CSIRT_STAGES)})")
        now = now or utc_now()
        at = at or now
        reference, note = reference.strip(), note.strip()
        if not reference:
            raise InvalidInput("give the CSIRT's reference for the report with --reference")
        if at > now:
            raise InvalidInput(f"--at {self._when(at)} lies in the future; record a report once it has been made")
        with self._writing() as session:
            row = self._row(session, incident_id)
            _not_closed(row, "reported")
            incident = self._view_of(session, row)
            if not incident.significant:
                raise StepSkipped(f"{row.id} is not marked as a significant incident (Cbw); mark it first: "
                                  f"`compliance incident update {row.id} --significant`")
            if at < incident.aware_at:
                raise InvalidInput(f"--at {self._when(at)} lies before the moment of becoming aware of {row.id} "
                                   f"({self._when(incident.aware_at)})")
            stages = list(CSIRT_STAGES)
            done = incident.csirt_notification(stage)
            if done is not None:
                raise StepSkipped(f"the {stage} of {row.id} to the CSIRT was already recorded "
                                  f"({self._when(done.at)}, reference {done.reference})")
            for earlier in stages[:stages.index(stage)]:
                before = incident.csirt_notification(earlier)
                if before is None:
                    raise StepSkipped(f"no {earlier} of {row.id} to the CSIRT is recorded yet; record it first "
                                      f"(`compliance incident notify {row.id} --csirt --stage {earlier} "
                                      "--reference ...`)")
                if at < before.at:
                    raise InvalidInput(f"--at {self._when(at)} lies before the {earlier} ({self._when(before.at)})")
            overrides = _guard({"reference": reference, "note": note}, force_reason,
                               f"no report to the CSIRT was recorded for {row.id}")
            from compliance.db.models import IncidentNotification

            notification = IncidentNotification(
                incident_id=row.id, recipient="csirt", kind=CSIRT_STAGES[stage], at=at, reference=reference,
                channel="", delay_reason="", note=note, recorded_at=now, recorded_by=by)
            session.add(notification)
            trail = _Trail(session, by, now)
            trail.add(row.id, "notify", "notifications", None, notification_of(notification).record())
            row.updated_at = now
            trail.overrides(row.id, overrides, force_reason)
            session.flush()
            return self._view_of(session, row)

    def _when(self, moment: datetime) -> str:
        return _when(moment, self.zone)

    def _check_authority(self, incident: Incident, kind: str, at: datetime, reference: str, channel: str,
                         delay_reason: str, note: str) -> str:
        assert incident.decision is not None
        if channel:
            raise InvalidInput("--channel is for the communication to the people concerned (--subjects); the "
                               "authority is notified through its notification form")
        if not incident.decision.notify_authority:
            raise StepSkipped(f"the decision for {incident.id} is not to notify the authority; record a new "
                              f"decision first: `compliance incident decide {incident.id} --notify-authority yes ...`")
        initial = incident.authority_notification
        if kind == "initial":
            if initial is not None:
                raise StepSkipped(f"the authority was already notified about {incident.id} ({self._when(initial.at)}, "
                                  f"reference {initial.reference}); use --follow-up to add information or --withdraw")
            if not reference:
                raise InvalidInput("give the authority's reference for the notification (the AP meldnummer) with "
                                   "--reference")
            if at > incident.deadline and not delay_reason:
                late = (at - incident.deadline).total_seconds() / 3600
                raise InvalidInput(f"the notification of {self._when(at)} came {late:.1f} hours after the "
                                   f"deadline {self._when(incident.deadline)} (72 hours after becoming aware); "
                                   "art. 33(1) requires the reasons for the delay: give --delay-reason")
            return reference
        if initial is None:
            raise StepSkipped(f"no notification of {incident.id} to the authority is recorded yet; record it first "
                              f"(`compliance incident notify {incident.id} --authority --reference ...`), then a "
                              f"{kind}")
        if incident.withdrawn:
            raise StepSkipped(f"the notification of {incident.id} to the authority was withdrawn; no {kind} can follow")
        if at < initial.at:
            raise InvalidInput(f"--at {self._when(at)} lies before the notification it follows "
                               f"({self._when(initial.at)})")
        if kind == "withdrawal" and not note:
            raise InvalidInput("say why the notification is withdrawn with --note (e.g. it turned out not to be a "
                               "personal-data breach)")
        return reference or initial.reference

    def _check_subjects(self, incident: Incident, kind: str, channel: str) -> None:
        assert incident.decision is not None
        decision = incident.decision
        if kind == "withdrawal":
            raise InvalidInput("a communication to the people concerned cannot be withdrawn; record a follow-up "
                               "with --follow-up --note instead")
        if not decision.notify_subjects and not decision.public_communication:
            raise StepSkipped(f"the decision for {incident.id} is not to inform the people concerned; record a new "
                              f"decision first: `compliance incident decide {incident.id} --notify-subjects yes ...`")
        if channel not in CHANNELS:
            raise InvalidInput(f"give how the people concerned were informed with --channel ({', '.join(CHANNELS)})"
                               if not channel else f"unknown --channel '{channel}'; choose from: {', '.join(CHANNELS)}")
        if decision.public_communication and not decision.notify_subjects and channel != "public":
            raise InvalidInput("the decision is a public communication instead of informing each person "
                               "(art. 34(3)(c)); record it with --channel public")

    def close(self, incident_id: str, *, note: str = "", ongoing: bool = False, by: str,
              force_reason: str | None = None, now: datetime | None = None) -> Incident:
        """Close an incident whose record is complete (art. 33(5)) and whose duties are all done.

        Needs the facts, the consequences, the remedial action taken, and an end time or `ongoing`;
        for a breach also the assessment, the decision and the notifications decided on; for a
        significant incident the CSIRT's final report.
        """
        now = now or utc_now()
        note = note.strip()
        with self._writing() as session:
            row = self._row(session, incident_id)
            if row.status == "closed":
                raise StepSkipped(f"{row.id} is already closed")
            incident = self._view_of(session, row)
            missing = []
            for name, what in (("description", "the facts"), ("consequences", "the consequences"),
                               ("measures_taken", "the remedial action taken")):
                if not getattr(incident, name).strip():
                    missing.append(f"{what} (art. 33(5): `compliance incident update {row.id} {option(name)} TEXT`)")
            if incident.ended_at is None and not ongoing:
                missing.append(f"when it ended (`compliance incident update {row.id} --ended-at TIME`), or say it "
                               "goes on with --ongoing")
            elif incident.ended_at is not None and ongoing:
                raise InvalidInput(f"{row.id} ended {self._when(incident.ended_at)}; --ongoing is for an incident "
                                   "without an end time")
            if incident.significant and incident.csirt_notification("final") is None:
                missing.append("the final report to the CSIRT (`compliance incident notify "
                               f"{row.id} --csirt --stage final --reference ...`)")
            if incident.personal_data and incident.assessment is None:
                missing.append(f"an assessment (`compliance incident assess {row.id} ...`)")
            if incident.personal_data and incident.decision is None:
                missing.append(f"a decision (`compliance incident decide {row.id} ...`)")
            elif incident.decision is not None:
                if incident.decision.notify_authority and incident.authority_notification is None:
                    missing.append("the notification to the authority, which was decided (`compliance incident "
                                   f"notify {row.id} --authority --reference ...`)")
                if incident.decision.notify_subjects and not incident.notifications_to("subjects"):
                    missing.append("the communication to the people concerned, which was decided (`compliance "
                                   f"incident notify {row.id} --subjects --channel ...`)")
                if incident.decision.public_communication and not any(
                        n.channel == "public" for n in incident.notifications_to("subjects")):
                    missing.append("the public communication, which was decided (`compliance incident notify "
                                   f"{row.id} --subjects --channel public`)")
                follow_up = incident.follow_up_duty(now)
                if follow_up.state in ("due", "overdue"):
                    missing.append("the follow-up to the authority of what was still open (art. 33(4): `compliance "
                                   f"incident notify {row.id} --authority --follow-up --note ...`)")
                if (incident.ap_instruction and not incident.decision.notify_subjects
                        and not incident.notifications_to("subjects")):
                    missing.append("a decision that follows the authority's instruction on informing the people "
                                   f"concerned (art. 34(4): `compliance incident decide {row.id} --notify-subjects "
                                   "yes ...`)")
            if missing:
                raise StepSkipped(f"{row.id} cannot be closed yet; it still needs " + "; ".join(missing))
            overrides = _guard({"note": note}, force_reason, f"{row.id} was not closed")
            trail = _Trail(session, by, now)
            record = Closure(now, by, note, ongoing).record()
            trail.add(row.id, "close", "closure", row.closure, record)
            trail.add(row.id, "close", "status", row.status, "closed")
            row.closure, row.status, row.updated_at = record, "closed", now
            trail.overrides(row.id, overrides, force_reason)
            return self._view_of(session, row)

    def link(self, incident_id: str, *, kind: str, ref: str, by: str, now: datetime | None = None) -> Incident:
        """Link the incident to a control or a finding of the monitor."""
        from sqlalchemy import select

        from compliance.db.models import ControlRow, Finding, IncidentLink

        check_by(by)
        if kind not in LINK_KINDS:
            raise InvalidInput(f"unknown link kind '{kind}'; choose from: {', '.join(LINK_KINDS)}")
        now = now or utc_now()
        ref = ref.strip()
        with self._writing() as session:
            row = self._row(session, incident_id)
            _not_closed(row, "linked")
            if kind == "control":
                if session.get(ControlRow, ref) is None:
                    hint = did_you_mean(ref, list(session.scalars(select(ControlRow.id))))
                    raise InvalidInput(f"no control '{ref}' in the database" + (f"; {hint}" if hint else "") +
                                       " (controls are stored by `compliance scan`)")
            elif not ref.isdigit() or session.get(Finding, int(ref)) is None:
                raise InvalidInput(f"no finding with id '{ref}' (see `compliance findings --status all --format json`)")
            exists = session.scalar(select(IncidentLink.id).where(
                IncidentLink.incident_id == row.id, IncidentLink.kind == kind, IncidentLink.ref == ref))
            if exists is not None:
                raise InvalidInput(f"{row.id} is already linked to {kind} {ref}")
            link = IncidentLink(incident_id=row.id, kind=kind, ref=ref, linked_at=now, linked_by=by)
            session.add(link)
            _Trail(session, by, now).add(row.id, "link", "links", None, _link(link).record())
            row.updated_at = now
            session.flush()
            return self._view_of(session, row)

    # reading ------------------------------------------------------------------------------------------

    def get(self, incident_id: str) -> Incident:
        with self.db.sessions() as session:
            return self._view_of(session, self._row(session, incident_id))

    def incidents(self, *, status: str | None = None, year: int | None = None,
                  now: datetime | None = None) -> list[Incident]:
        """Incidents not closed first (the most urgent first), then closed ones, newest first."""
        return load_incidents(self.db, status=status, year=year, now=now)

    def events(self, incident_id: str | None = None) -> list[Event]:
        """The audit trail, of one incident or of the whole register, in order."""
        from sqlalchemy import select

        from compliance.db.models import IncidentEvent

        with self.db.sessions() as session:
            stmt = select(IncidentEvent).order_by(IncidentEvent.seq)
            if incident_id is not None:
                stmt = stmt.where(IncidentEvent.incident_id == self._row(session, incident_id).id)
            return [Event(e.seq, e.incident_id, e.at, e.by, e.action, e.field, chain.decode(e.old),
                          chain.decode(e.new), e.hash) for e in session.scalars(stmt)]

    def anchor(self, *, by: str, now: datetime | None = None) -> int:
        """Append a keyed event that anchors the unkeyed events written before the audit key was introduced;
        return how many it anchors. Once, right after introducing the key (see docs/security.md)."""
        from sqlalchemy import select

        from compliance.db.models import IncidentEvent

        if self.audit_key is None:
            raise chain.AuditKeyError(f"anchoring needs the audit key: set {chain.KEY_VARIABLE} or "
                                      "incidents.audit_key_file (see docs/security.md)")
        now = now or utc_now()
        with self._writing() as session:
            last = session.scalars(select(IncidentEvent).order_by(IncidentEvent.seq.desc()).limit(1)).first()
            if last is None:
                raise InvalidInput("the audit trail is empty: there is nothing to anchor; every event from now on "
                                   "is keyed")
            if last.key_id is not None:
                raise InvalidInput(f"the audit trail is keyed since before event {last.seq}: there is nothing to "
                                   "anchor (anchoring is for events written before the key was introduced)")
            anchored = last.seq
            _Trail(session, by, now).add(last.incident_id, ANCHOR, None, None,
                                         {"events": anchored, "head": last.hash})
        return anchored

    def verify(self, checkpoint: chain.Checkpoint | None = None) -> Verification:
        """Recompute the chain (with the audit key), check every incident against its trail, and compare
        with an earlier checkpoint if given."""
        return verify(self.db, self.audit_key, checkpoint)

    def _row(self, session: Session, incident_id: str) -> IncidentRow:
        from sqlalchemy import select

        from compliance.db.models import IncidentRow

        wanted = incident_id.strip().upper()
        row = session.get(IncidentRow, wanted)
        if row is None:
            hint = did_you_mean(wanted, list(session.scalars(select(IncidentRow.id))))
            raise IncidentNotFound(f"no incident '{incident_id}'" + (f"; {hint}" if hint else "") +
                                   " (see `compliance incident list`)")
        return row

    def _view_of(self, session: Session, row: IncidentRow) -> Incident:
        from sqlalchemy import select

        from compliance.db.models import IncidentLink, IncidentNotification

        session.flush()
        notifications = session.scalars(select(IncidentNotification).where(
            IncidentNotification.incident_id == row.id).order_by(IncidentNotification.id)).all()
        links = session.scalars(select(IncidentLink).where(IncidentLink.incident_id == row.id)
                                .order_by(IncidentLink.id)).all()
        return _view(row, notifications, links)


# validation -------------------------------------------------------------------------------------------


def validated_facts(facts: Mapping[str, Any], now: datetime, zone: tzinfo = UTC) -> dict[str, Any]:
    """The facts cleaned up (trimmed text, known names, discovered_at filled in), or InvalidInput with
    every problem at once."""
    problems: list[str] = []
    out: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        out[name] = (facts.get(name) or "").strip()
    for name in ("title", "description"):
        if not out[name]:
            problems.append(f"{option(name)} must not be empty")
    for name, limit in (("title", 200), ("processor", 200)):
        if len(out[name]) > limit:
            problems.append(f"{option(name)} is {len(out[name])} characters long; the most is {limit}")
    personal_data = facts.get("personal_data", True)
    for name, choices in (("nature", NATURES), ("data_categories", tuple(DATA_CATEGORIES)), ("people", PEOPLE)):
        try:
            out[name] = checked_names(facts.get(name) or (), choices, option(name))
        except InvalidInput as exc:
            problems.append(str(exc))
            out[name] = []
        if not personal_data and name != "nature":
            if out[name]:
                problems.append(f"{option(name)} goes with personal data; leave it out with --no-personal-data")
        elif not out[name] and name != "people" and not any(option(name) in p for p in problems):
            problems.append(f"give at least one {option(name)} ({', '.join(choices)})")
    if not personal_data:
        for name in ("subjects", "subjects_max", "records"):
            if facts.get(name):
                problems.append(f"{option(name)} counts people or records of personal data; leave it out with "
                                "--no-personal-data")
        facts = {**facts, "subjects": facts.get("subjects") or 0}
    for name in ("subjects", "subjects_max", "records"):
        value = facts.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"{option(name)} must be a whole number, not '{value}'")
            value = None
        elif value is not None and value < 0:
            problems.append(f"{option(name)} cannot be negative ({value}); give the approximate number")
        elif value is not None and value > COUNT_LIMIT:
            problems.append(f"{option(name)} {value} is more than the register can hold ({COUNT_LIMIT}); give the "
                            "approximate number")
        out[name] = value
    if out["subjects"] is None:
        problems.append("give the approximate number of people concerned with --subjects")
    elif out["subjects_max"] is not None and out["subjects_max"] < out["subjects"]:
        problems.append(f"--subjects-max {out['subjects_max']} is below --subjects {out['subjects']}")
    out["cross_border"] = bool(facts.get("cross_border"))
    out["significant"] = bool(facts.get("significant"))

    times: dict[str, datetime | None] = {}
    for name in TIME_FIELDS:
        value = facts.get(name)
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{name} must be an aware datetime")
        times[name] = value.astimezone(UTC) if value is not None else None
    for name in ("occurred_at", "aware_at"):
        if times[name] is None:
            problems.append(f"give {option(name)}")
    if times["discovered_at"] is None:
        # found by a processor, the breach was discovered when the processor discovered it
        times["discovered_at"] = times["processor_discovered_at"] or times["aware_at"]
    for name, value in times.items():
        if value is not None and value > now:
            problems.append(f"{option(name)} {_when(value, zone)} lies in the future")
    occurred, ended, discovered, aware = (times[n] for n in ("occurred_at", "ended_at", "discovered_at", "aware_at"))
    if occurred and discovered and discovered < occurred:
        problems.append(f"--discovered-at {_when(discovered, zone)} lies before --occurred-at "
                        f"{_when(occurred, zone)}: a breach cannot be discovered before it happened")
    if occurred and aware and aware < occurred:
        problems.append(f"--aware-at {_when(aware, zone)} lies before --occurred-at {_when(occurred, zone)}")
    if discovered and aware and aware < discovered:
        problems.append(f"--aware-at {_when(aware, zone)} lies before --discovered-at {_when(discovered, zone)}: the "
                        "municipality becomes aware when or after the breach is discovered")
    if occurred and ended and ended < occurred:
        problems.append(f"--ended-at {_when(ended, zone)} lies before --occurred-at {_when(occurred, zone)}")
    problems += _processor_problems(facts.get("found_by") or "", out["processor"], times, zone)
    out["found_by"] = (facts.get("found_by") or "").strip()
    if problems:
        raise InvalidInput("; ".join(problems))
    out.update(times)
    return out


def _processor_problems(found_by: str, processor: str, times: Mapping[str, datetime | None],
                        zone: tzinfo) -> list[str]:
    """Who found the breach and the processor's times (art. 33(2)) must fit together and the timeline."""
    problems: list[str] = []
    found_by = found_by.strip()
    if found_by and found_by not in FOUND_BY:
        hint = did_you_mean(found_by, FOUND_BY)
        problems.append(f"unknown --found-by '{found_by}'" + (f"; {hint}" if hint else "") +
                        f" (choose from: {', '.join(FOUND_BY)})")
    if found_by == "processor" and not processor:
        problems.append("--found-by processor needs the processor's name: give --processor ORGANISATION")
    found, told = times.get("processor_discovered_at"), times.get("processor_told_at")
    if (found or told) and found_by not in ("processor", "joint-controller"):
        given = "--processor-discovered-at" if found else "--processor-told-at"
        problems.append(f"{given} is for a breach found by a processor or a joint controller; give --found-by "
                        "processor (or joint-controller)")
    occurred, discovered, aware = (times.get(n) for n in ("occurred_at", "discovered_at", "aware_at"))
    if found and occurred and found < occurred:
        problems.append(f"--processor-discovered-at {_when(found, zone)} lies before --occurred-at "
                        f"{_when(occurred, zone)}: a breach cannot be discovered before it happened")
    if found and told and told < found:
        problems.append(f"--processor-told-at {_when(told, zone)} lies before --processor-discovered-at "
                        f"{_when(found, zone)}: the processor cannot tell the municipality before it discovered "
                        "the breach")
    if found and discovered and discovered < found:
        problems.append(f"--discovered-at {_when(discovered, zone)} lies before --processor-discovered-at "
                        f"{_when(found, zone)}; when a processor found the breach, --discovered-at is when it did")
    if told and aware and aware < told:
        problems.append(f"--aware-at {_when(aware, zone)} lies before --processor-told-at {_when(told, zone)}: the "
                        "municipality becomes aware when its processor tells it, or later")
    return problems


def _check_phase(recipient: str, kind: str, at: datetime, open_items: str, follow_up_due: datetime | None,
                 zone: tzinfo) -> None:
    """A notification in phases (art. 33(4)): what is still open and when the follow-up is due go together,
    on a notification to the authority, with the follow-up due after the notification."""
    if not open_items and follow_up_due is None:
        return
    if recipient != "authority" or kind == "withdrawal":
        raise InvalidInput("--open-items and --follow-up-due are for a notification to the authority in phases "
                           "(art. 33(4)): use them with --authority (the first notification or a follow-up)")
    if not open_items:
        raise InvalidInput("--follow-up-due needs --open-items: say what is still open and will follow")
    if follow_up_due is None:
        raise InvalidInput("--open-items needs --follow-up-due: when will the rest follow (art. 33(4): without "
                           "undue further delay)")
    if follow_up_due <= at:
        raise InvalidInput(f"--follow-up-due {_when(follow_up_due, zone)} is not after the notification "
                           f"({_when(at, zone)})")


def checked_message(message: Mapping[str, str] | None, recipient: str) -> dict[str, str] | None:
    """What the people concerned were told (art. 34(2)): all four parts, trimmed, with its language."""
    if not message:
        return None
    if recipient != "subjects":
        raise InvalidInput("the --message-* options record what the people concerned were told: use them with "
                           "--subjects")
    unknown = set(message) - {*MESSAGE_PARTS, "lang"}
    if unknown:
        raise ValueError(f"unknown message parts: {', '.join(sorted(unknown))}")
    parts = {part: (message.get(part) or "").strip() for part in MESSAGE_PARTS}
    missing = [f"--message-{part}" for part, text in parts.items() if not text]
    if missing:
        raise InvalidInput("art. 34(2) asks the message to the people concerned to describe the nature of the "
                           "breach, name a contact (the FG), and describe the likely consequences and the measures; "
                           f"missing: {', '.join(missing)} (or fill them in from the template with "
                           "--message-from-template)")
    lang = message.get("lang") or "nl"
    if lang not in MESSAGE_LANGS:
        raise InvalidInput(f"unknown --message-lang '{lang}'; choose from: {', '.join(MESSAGE_LANGS)}")
    return {**parts, "lang": lang}


def _check_circumstances(row: IncidentRow, levels: Mapping[str, str]) -> None:
    """The ENISA circumstances must agree with the nature of the breach recorded for the incident."""
    problems = []
    for aspect, value in levels.items():
        affected = value != "none"
        if affected and aspect not in row.nature:
            problems.append(f"--{aspect} is '{value}' but the nature of {row.id} ({', '.join(row.nature)}) does not "
                            f"include {aspect}; use --{aspect} none, or first add it: `compliance incident update "
                            f"{row.id} " + " ".join(f"--nature {n}" for n in [*row.nature, aspect]) + "`")
        elif not affected and aspect in row.nature:
            choices = {"confidentiality": enisa.CONFIDENTIALITY, "integrity": enisa.INTEGRITY,
                       "availability": enisa.AVAILABILITY}[aspect]
            problems.append(f"the nature of {row.id} includes {aspect}, so --{aspect} cannot be 'none'; give one of "
                            f"{', '.join(c for c in choices if c != 'none')}")
    if problems:
        raise InvalidInput("; ".join(problems))


def _personal_data(row: IncidentRow, verb: str) -> None:
    if not row.data_categories:
        raise StepSkipped(f"{row.id} involves no personal data, so there is nothing to {verb} under the GDPR "
                          "(art. 33, 34); if personal data turn out to be involved, add them first: "
                          f"`compliance incident update {row.id} --data-category ... --subjects N`")


def _not_closed(row: IncidentRow, verb: str) -> None:
    if row.status == "closed":
        raise StepSkipped(f"{row.id} is closed and cannot be {verb}; the register keeps it as it was closed")


#: The largest count of people or records (the columns are 32-bit integers on PostgreSQL).
COUNT_LIMIT = 2**31 - 1
#: Fields of one line: a line break there is refused (it would also break tables and CSV rows).
SINGLE_LINE = ("title", "processor", "reference", "by")
#: The longest `--by` (the width of the columns that record who did something).
BY_LIMIT = 200
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def control_problems(texts: Mapping[str, str | None]) -> list[str]:
    """Control characters in text fields (keyed by field name): terminal escapes (ESC, OSC, BEL), carriage
    returns, bidirectional overrides, and line breaks in one-line fields. Tabs and line breaks are
    allowed in the other text."""
    problems = []
    for name, text in texts.items():
        if not text:
            continue
        flag = option(name)
        if name in SINGLE_LINE and any(ch in text for ch in "\n\u2028\u2029\u0085"):
            problems.append(f"{flag} contains a line break; it is one line. Put the details in --description or "
                            "--note")
        for position, ch in enumerate(text, 1):
            if ch in "\n\t" or (unicodedata.category(ch) != "Cc" and ch not in _BIDI_CONTROLS):
                continue  # a line break in a one-line field is reported above
            what = _CONTROL_NAMES.get(ch, "a control character")
            problems.append(f"{flag} contains {what} (U+{ord(ch):04X}) at character {position}. Remove it: type "
                            "or paste the text as plain text")
            break
    return problems


_CONTROL_NAMES = {"\x1b": "an escape character (ESC, terminal control)", "\x07": "a bell character (BEL)",
                  "\r": "a carriage return", "\x00": "a NUL character", "\x9b": "a terminal control (CSI)",
                  "\x9d": "a terminal control (OSC)", "\x08": "a backspace"}


def check_by(by: str) -> None:
    """`--by` names who did something: one line, at most BY_LIMIT characters, no control characters, and
    no personal data (it goes into the audit trail for good, where --force cannot take it out)."""
    problems = control_problems({"by": by})
    if len(by) > BY_LIMIT:
        problems.append(f"--by is {len(by)} characters long; the most is {BY_LIMIT}. Give a user name or a role")
    if not by.strip():
        problems.append("--by must not be empty. Give a user name or a role, or leave --by out for the "
                        "operating-system user")
    if problems:
        raise InvalidInput("; ".join(problems))
    findings = pii.scan("by", by)
    if findings:
        raise PersonalDataFound("; ".join(map(str, findings)) + ". --by names who in the municipality did it and "
                                "is kept in the audit trail for good: give a user name or a role (e.g. "
                                "privacy-officer)")


def _guard(texts: Mapping[str, str], force_reason: str | None, outcome: str) -> list[pii.Finding]:
    """Refuse control characters in text, and personal data unless forced with a reason; return what the
    force overrides."""
    problems = control_problems({**texts, "force_reason": force_reason})
    if problems:
        raise InvalidInput(f"{outcome}: " + "; ".join(problems))
    findings = pii.scan_fields({option(name)[2:]: text for name, text in texts.items()})
    if force_reason is not None:
        reason = force_reason.strip()
        if not reason:
            raise InvalidInput("--force needs --force-reason: say why the text holds no personal data of the people "
                               "concerned, or why it must be kept")
        in_reason = pii.scan("force-reason", reason)
        if in_reason:
            raise PersonalDataFound(f"{outcome}: " + "; ".join(map(str, in_reason)) + "; the reason itself must "
                                    "not hold personal data")
    if findings and force_reason is None:
        raise PersonalDataFound(
            f"{outcome}: " + "; ".join(map(str, findings)) + ". The register holds no personal data of the people "
            "concerned, only counts and categories: remove it (e.g. write 'a resident' or '1 account number'), or, if "
            "it is not personal data of someone concerned, repeat with --force --force-reason TEXT (recorded in the "
            "audit trail)")
    return findings


# the audit trail --------------------------------------------------------------------------------------


class _Trail:
    """Appends events to the chain inside the caller's transaction (which holds the write lock).

    With the audit key (`Register(audit_key=...)`) events are keyed; once the chain is keyed, writing
    without that key is refused, so the chain never falls back to plain SHA-256.
    """

    def __init__(self, session: Session, by: str, at: datetime) -> None:
        from sqlalchemy import select

        from compliance.db.models import IncidentEvent

        check_by(by)
        self.session, self.by, self.at = session, by, at
        self.key: chain.AuditKey | None = session.info.get("audit_key")
        with session.no_autoflush:  # a refusal above or here comes before the caller's new rows are written
            last = session.execute(select(IncidentEvent.seq, IncidentEvent.hash, IncidentEvent.key_id)
                                   .order_by(IncidentEvent.seq.desc()).limit(1)).first()
        self.seq: int = last.seq if last else 0
        self.prev: str = last.hash if last else chain.GENESIS
        if last is not None and last.key_id is not None and (self.key is None or self.key.id != last.key_id):
            where = "no audit key is configured" if self.key is None else f"the configured key has id {self.key.id}"
            raise chain.AuditKeyError(
                f"the audit trail is keyed with the audit key {last.key_id} but {where}; nothing was stored. Set "
                f"{chain.KEY_VARIABLE} or incidents.audit_key_file to that key (see docs/security.md)")

    def add(self, incident_id: str, action: str, field: str | None, old: Any, new: Any) -> None:
        from compliance.db.models import IncidentEvent

        old_text, new_text = chain.encode(old), chain.encode(new)
        self.seq += 1
        fields: dict[str, Any] = dict(seq=self.seq, incident_id=incident_id, at=self.at, by=self.by, action=action,
                                      field=field, old=old_text, new=new_text, prev_hash=self.prev)
        digest = chain.keyed_hash(self.key, **fields) if self.key else chain.event_hash(**fields)
        self.session.add(IncidentEvent(**fields, hash=digest,
                                       alg=chain.HMAC_SHA256 if self.key else None,
                                       key_id=self.key.id if self.key else None))
        self.prev = digest

    def overrides(self, incident_id: str, findings: Sequence[pii.Finding], reason: str | None) -> None:
        by_field: dict[str, list[str]] = defaultdict(list)
        for finding in findings:
            by_field[finding.field].append(f"{finding.kind} {finding.masked}")
        for name, found in by_field.items():
            self.add(incident_id, "override", name, None, {"found": found, "reason": (reason or "").strip()})


def fact_value(name: str, value: Any) -> Any:
    """A fact as the trail stores it: times as ISO UTC text, lists as lists."""
    if name in TIME_FIELDS:
        return chain.iso(value)
    if name in _LIST_FACTS:
        return list(value)
    return value


def snapshot(row: IncidentRow, notifications: Sequence[Any], links: Sequence[Any]) -> dict[str, Any]:
    """The incident as the trail describes it: every fact plus status, assessment, decision, closure,
    notifications and links."""
    data = {name: fact_value(name, getattr(row, name)) for name in FACT_FIELDS}
    data.update(status=row.status, assessment=row.assessment, decision=row.decision, closure=row.closure,
                notifications=[notification_of(n).record() for n in notifications],
                links=[_link(link).record() for link in links])
    return data


def verify(database: Database, key: chain.AuditKey | None = None, checkpoint: chain.Checkpoint | None = None,
           now: datetime | None = None) -> Verification:
    """Check the chain of events, then that each incident's current state is what its events say, and
    against an earlier checkpoint if given; return the result with a new checkpoint.

    Catches events altered, removed or inserted in the database, and rows changed without an event.
    Only the key makes a rewritten chain visible (someone with write access can recompute plain
    SHA-256), and only a checkpoint kept outside the database shows the newest events removed, or
    all of them. Keyed events need the key: without it AuditKeyError (exit 2).
    """
    from sqlalchemy import select

    from compliance.db.models import IncidentEvent, IncidentLink, IncidentNotification, IncidentRow

    problems: list[str] = []
    first_broken: int | None = None
    state: dict[str, dict[str, Any]] = {}
    last_set: dict[tuple[str, str], int] = {}
    first_event: dict[str, Any] = {}
    last_at: dict[str, datetime] = {}
    with database.sessions() as session:
        events = list(session.scalars(select(IncidentEvent).order_by(IncidentEvent.seq)))
        keyed = [e for e in events if e.key_id is not None]
        if keyed and key is None:
            raise chain.AuditKeyError(
                f"the audit trail is keyed with the audit key {keyed[0].key_id} from event {keyed[0].seq}: checking "
                f"it needs that key. Set {chain.KEY_VARIABLE} or incidents.audit_key_file (see docs/security.md)")
        chain_problems = chain.check_chain(events, key)
        if chain_problems:
            first_broken = chain_problems[0].seq
            problems += [str(p) for p in chain_problems]
        for event in events:
            first_event.setdefault(event.incident_id, event)
            if event.action != ANCHOR:  # the register's own event, not a change of the incident
                last_at[event.incident_id] = max(event.at, last_at.get(event.incident_id, event.at))
            try:
                old, new = chain.decode(event.old), chain.decode(event.new)
            except ValueError:
                problems.append(f"event {event.seq} ({event.incident_id}): its value is not valid JSON")
                first_broken = first_broken or event.seq
                continue
            if event.action == "create":
                # incidents created before the Cbw track (0009) and the processor facts (0010) lack those
                state[event.incident_id] = {**LATER_FACTS, **(new or {})}
                continue
            current = state.get(event.incident_id)
            if current is None:
                problems.append(f"event {event.seq} ({event.incident_id}): no 'create' event comes before it")
                first_broken = first_broken or event.seq
                continue
            if event.action == "override" or event.field is None:
                continue
            if event.field in APPENDED:
                current.setdefault(event.field, []).append(new)
            else:
                if old != current.get(event.field):
                    problems.append(f"event {event.seq} ({event.incident_id}): its old value of {event.field} is not "
                                    "what the events before it recorded")
                    first_broken = first_broken or event.seq
                current[event.field] = new
            last_set[(event.incident_id, event.field)] = event.seq

        rows = list(session.scalars(select(IncidentRow).order_by(IncidentRow.year, IncidentRow.number)))
        notifications: dict[str, list[Any]] = defaultdict(list)
        for n in session.scalars(select(IncidentNotification).order_by(IncidentNotification.id)):
            notifications[n.incident_id].append(n)
        links: dict[str, list[Any]] = defaultdict(list)
        for link in session.scalars(select(IncidentLink).order_by(IncidentLink.id)):
            links[link.incident_id].append(link)
        for row in rows:
            expected = state.get(row.id)
            if expected is None:
                problems.append(f"incident {row.id} has no events: it was added outside the tool")
                continue
            actual = snapshot(row, notifications[row.id], links[row.id])
            for name, value in actual.items():
                if value != expected.get(name):
                    seq = last_set.get((row.id, name))
                    since = f"event {seq}" if seq else "its 'create' event"
                    problems.append(f"incident {row.id}: {name} differs from its audit trail (last recorded by "
                                    f"{since}): it was changed outside the tool")
            if row.deadline != deadline_for(row.aware_at):
                problems.append(f"incident {row.id}: deadline {chain.iso(row.deadline)} is not 72 hours after "
                                f"aware_at {chain.iso(row.aware_at)}: it was changed outside the tool")
            if (row.score, row.band) != ((row.assessment or {}).get("score"), (row.assessment or {}).get("band")):
                problems.append(f"incident {row.id}: score/band ({row.score}, {row.band}) differ from its assessment: "
                                "changed outside the tool")
            problems += _bookkeeping_problems(row, first_event[row.id], last_at[row.id])
    head = events[-1].hash if events else chain.GENESIS
    unanchored = key is not None and bool(events) and not keyed
    if unanchored:
        problems.append(f"events 1-{len(events)} were written without the audit key and no keyed event follows "
                        "them, so they could have been rewritten or the keyed events after them removed. If the key "
                        "was introduced just now, anchor them once: `compliance incident verify --anchor`; otherwise "
                        "compare with the last checkpoint: `compliance incident verify --checkpoint FILE`")
    if checkpoint is not None:
        problems += _checkpoint_problems(checkpoint, events, key)
    made = chain.make_checkpoint(len(events), head, now or utc_now(), key)
    return Verification(len(events), len(rows), head, tuple(problems), first_broken,
                        unkeyed=len(events) - len(keyed), checkpoint=made, compared_with=checkpoint,
                        unanchored=unanchored)


def _bookkeeping_problems(row: IncidentRow, create: Any, last_at: datetime) -> list[str]:
    """The row's own columns (id, created_*, updated_at) against its events: they are in the chain too."""
    problems = []
    if not row.id.endswith(f"-{row.year}-{row.number:04d}"):
        problems.append(f"incident {row.id}: year/number ({row.year}, {row.number}) do not match its id: changed "
                        "outside the tool")
    if (row.created_at, row.created_by) != (create.at, create.by):
        problems.append(f"incident {row.id}: created_at/created_by ({chain.iso(row.created_at)}, {row.created_by}) "
                        f"differ from its first event ({chain.iso(create.at)}, {create.by}): changed outside the tool")
    if row.updated_at != last_at:
        problems.append(f"incident {row.id}: updated_at {chain.iso(row.updated_at)} is not the time of its last "
                        f"event ({chain.iso(last_at)}): changed outside the tool")
    return problems


def _checkpoint_problems(checkpoint: chain.Checkpoint, events: Sequence[Any], key: chain.AuditKey | None) -> list[str]:
    """What an earlier checkpoint shows: events removed from the end (or all), or the chain up to it rewritten."""
    when = chain.iso(checkpoint.at)
    problems = []
    if checkpoint.signature is not None:
        if key is None or checkpoint.key_id != key.id:
            raise chain.AuditKeyError(
                f"the checkpoint of {when} is signed with the audit key {checkpoint.key_id}; "
                + ("no audit key is configured" if key is None else f"the configured key is {key.id}")
                + f". Set {chain.KEY_VARIABLE} or incidents.audit_key_file to that key")
        if not chain.signature_holds(checkpoint, key):
            problems.append(f"checkpoint of {when}: its signature does not match: the checkpoint file was altered; "
                            "compare with the copy the privacy officer or the FG keeps")
            return problems
    if len(events) < checkpoint.events:
        removed = ("all of them were" if not events else
                   f"events {len(events) + 1}-{checkpoint.events} were" if len(events) + 1 < checkpoint.events
                   else f"event {checkpoint.events} was")
        problems.append(f"checkpoint of {when}: the trail held {checkpoint.events} events then and holds "
                        f"{len(events)} now: {removed} removed")
    elif checkpoint.events and events[checkpoint.events - 1].hash != checkpoint.head:
        problems.append(f"checkpoint of {when}: event {checkpoint.events} is not the one recorded then (head "
                        f"{checkpoint.head[:16]}...): events up to it were rewritten")
    elif not checkpoint.events and checkpoint.head != chain.GENESIS:
        problems.append(f"checkpoint of {when}: an empty trail must have the head {chain.GENESIS[:16]}...: the "
                        "checkpoint is not valid")
    return problems


# reading ----------------------------------------------------------------------------------------------


def load_incidents(database: Database, *, status: str | None = None, year: int | None = None,
                   ids: Sequence[str] | None = None, aware_from: datetime | None = None,
                   aware_until: datetime | None = None, now: datetime | None = None) -> list[Incident]:
    """Incidents with their notifications and links, in the order of `urgency` at now: those not closed
    first, then closed ones (most recently aware first)."""
    from sqlalchemy import select

    from compliance.db import schema

    # Core rows, not ORM objects: the same column values by the same names, without an identity map and
    # instrumented attributes (about half the time of reading the register, which the report reads whole),
    # and without importing the ORM at all (`incident list` starts in about half the time; issue 18)
    incidents = schema.incidents
    stmt = select(incidents)
    if status is not None:
        stmt = stmt.where(incidents.c.status == status)
    if year is not None:
        stmt = stmt.where(incidents.c.year == year)
    if ids is not None:
        stmt = stmt.where(incidents.c.id.in_(list(ids)))
    if aware_from is not None:
        stmt = stmt.where(incidents.c.aware_at >= aware_from)
    if aware_until is not None:
        stmt = stmt.where(incidents.c.aware_at < aware_until)
    with database.engine.connect() as connection:
        rows = list(connection.execute(stmt))
        wanted = [r.id for r in rows]
        notifications: dict[str, list[Any]] = defaultdict(list)
        links: dict[str, list[Any]] = defaultdict(list)
        if wanted:
            sent, linked = schema.incident_notifications, schema.incident_links
            for n in connection.execute(select(sent).where(sent.c.incident_id.in_(wanted)).order_by(sent.c.id)):
                notifications[n.incident_id].append(n)
            for link in connection.execute(select(linked).where(linked.c.incident_id.in_(wanted))
                                           .order_by(linked.c.id)):
                links[link.incident_id].append(link)
        views = [_view(r, notifications[r.id], links[r.id]) for r in rows]
    now = now or utc_now()
    still_open = sorted((v for v in views if v.status != "closed"), key=lambda v: urgency(v, now))
    closed = sorted((v for v in views if v.status == "closed"), key=lambda v: (v.aware_at, v.id), reverse=True)
    return still_open + closed


_CLOCK_ORDER = {"overdue": 0, "running": 1, "notified": 2, "not-required": 2, "not-applicable": 2}


def urgency(incident: Incident, now: datetime) -> tuple[int, datetime, str]:
    """Sort key: overdue first, then the clock still running (earliest deadline first), then the rest."""
    return _CLOCK_ORDER[incident.clock(now).state], incident.deadline, incident.id


def open_incidents(database: Database, now: datetime | None = None) -> list[Incident]:
    """Incidents not yet closed, the most urgent first at now; `incident.clock(now)` gives the time left.

    For the weekly digest and reports: `[(i.id, i.clock(now).describe()) for i in open_incidents(db)]`.
    """
    return [i for i in load_incidents(database, now=now) if i.status != "closed"]


def figures(database: Database, *, since: datetime | None = None, until: datetime | None = None,
            now: datetime | None = None) -> Figures:
    """Counts over incidents whose aware_at lies in [since, until): by status, band and nature, how many
    were notified to the authority and how many of those within 72 hours, how many are overdue now."""
    now = now or utc_now()
    return figures_of(load_incidents(database, aware_from=since, aware_until=until, now=now), now)


def figures_of(incidents: Sequence[Incident], now: datetime) -> Figures:
    """`figures` over incidents already loaded (`load_incidents`), at now."""
    return replace(tally([Counted.of(i) for i in incidents], now), incidents=tuple(incidents))


def notification_of(row: Any) -> Notification:
    """A notification from its row in `incident_notifications`."""
    return Notification(row.recipient, row.kind, row.at, row.reference, row.channel, row.delay_reason, row.note,
                        row.recorded_at, row.recorded_by, row.open_items or "", row.follow_up_due,
                        row.message or None)


def _link(link: Any) -> Link:
    return Link(link.kind, link.ref, link.linked_at, link.linked_by)


def _view(row: Any, notifications: Sequence[Any], links: Sequence[Any]) -> Incident:
    return Incident(
        id=row.id, title=row.title, status=row.status, description=row.description, occurred_at=row.occurred_at,
        ended_at=row.ended_at, discovered_at=row.discovered_at, aware_at=row.aware_at, deadline=row.deadline,
        how_discovered=row.how_discovered, cause=row.cause, nature=tuple(row.nature),
        data_categories=tuple(row.data_categories), subjects=row.subjects, subjects_max=row.subjects_max,
        records=row.records, people=tuple(row.people), processor=row.processor, consequences=row.consequences,
        measures_taken=row.measures_taken, measures_planned=row.measures_planned, protection=row.protection,
        cross_border=row.cross_border,
        assessment=Assessment.from_record(row.assessment) if row.assessment else None,
        decision=Decision.from_record(row.decision) if row.decision else None,
        closure=Closure.from_record(row.closure) if row.closure else None,
        created_at=row.created_at, created_by=row.created_by, updated_at=row.updated_at,
        notifications=tuple(notification_of(n) for n in notifications), links=tuple(_link(x) for x in links),
        significant=bool(row.significant), found_by=row.found_by or "",
        processor_discovered_at=row.processor_discovered_at, processor_told_at=row.processor_told_at,
        ap_instruction=row.ap_instruction or "",
    )


def _when(moment: datetime, zone: tzinfo = UTC) -> str:
    """A moment for messages: local time in zone with the zone's name, e.g. 2026-11-30 16:40 Europe/Amsterdam."""
    return f"{moment.astimezone(zone).strftime('%Y-%m-%d %H:%M')} {zone}"
