"""What the register holds, as read by the CLI, reports and the digest: incidents, their clock and parts.

Times are aware datetimes in UTC; show them in the configured zone (Europe/Amsterdam by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any

from compliance.incidents.chain import iso
from compliance.incidents.clocks import CSIRT_NOTIFICATION_WINDOW as CSIRT_NOTIFICATION_WINDOW
from compliance.incidents.clocks import CSIRT_STAGES as CSIRT_STAGES
from compliance.incidents.clocks import EARLY_WARNING_WINDOW as EARLY_WARNING_WINDOW
from compliance.incidents.clocks import NOTIFICATION_WINDOW as NOTIFICATION_WINDOW
from compliance.incidents.clocks import Clock as Clock
from compliance.incidents.clocks import Duty as Duty
from compliance.incidents.clocks import authority_clock as authority_clock
from compliance.incidents.clocks import csirt_deadlines as csirt_deadlines
from compliance.incidents.clocks import csirt_duties_at as csirt_duties_at
from compliance.incidents.clocks import deadline_for as deadline_for
from compliance.incidents.clocks import duty_at
from compliance.incidents.clocks import first_notification as first_notification
from compliance.incidents.clocks import one_month_after as one_month_after
from compliance.incidents.clocks import utc_now as utc_now
from compliance.incidents.errors import InvalidInput

STATUSES = ("open", "assessed", "notified", "closed")
RECIPIENTS = ("authority", "subjects")
NOTIFICATION_KINDS = ("initial", "follow-up", "withdrawal")
CHANNELS = ("letter", "e-mail", "public")
#: Who found the breach: the municipality itself, its processor (art. 33(2)), a joint controller, someone else.
FOUND_BY = ("municipality", "processor", "joint-controller", "other")
#: The parts of the communication to the people concerned that art. 34(2) (with art. 33(3)(b)-(d)) asks for.
MESSAGE_PARTS = ("nature", "contact", "consequences", "measures")
MESSAGE_LANGS = ("nl", "en")
LINK_KINDS = ("control", "finding")


#: The years a moment given on the command line may have: a year such as 0001 or 9999 is a typo.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999


def parse_time(text: str, zone: tzinfo, option: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 moment from the command line, in UTC. Without an offset it is local time in zone.

    Accepts `2026-11-27T16:40`, `2026-11-27 16:40`, `2026-11-27T15:40:00Z`, `...+01:00`, or `now`.
    A local time that does not exist (the hour skipped when clocks go forward) is refused.
    """
    value = text.strip()
    if value.lower() == "now":
        return (now or utc_now()).astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{option} '{text}' is not a date and time; write e.g. 2026-11-27T16:40 (local time) "
                           "or 2026-11-27T15:40:00Z") from None
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        # also keeps the time-zone arithmetic below (and the 72-hour deadline) inside datetime's range
        raise InvalidInput(f"{option} '{text}' has the year {parsed.year}, outside {EARLIEST_YEAR}-{LATEST_YEAR}. "
                           "Write the date with its whole year, e.g. 2026-11-27T16:40")
    if parsed.tzinfo is None:
        if len(value) <= 10:
            raise InvalidInput(f"{option} '{text}' has no time of day; the 72-hour clock needs one, e.g. "
                               f"{value}T16:40")
        local = parsed.replace(tzinfo=zone)
        if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != parsed:
            raise InvalidInput(f"{option} '{text}' does not exist in time zone {zone} (the clocks skip that hour); "
                               "give the time with its offset, e.g. +01:00")
        parsed = local
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Assessment:
    """An ENISA assessment with its inputs and the recommendation it led to."""

    dpc: int
    dpc_basic: int
    dpc_reason: str
    ei: str
    confidentiality: str
    integrity: str
    availability: str
    malicious: bool
    unintelligible: bool
    risk_removed: bool
    disproportionate_effort: bool
    score: Decimal
    band: str
    formula: str
    notify_authority: bool
    notify_subjects: bool
    public_communication: bool
    rule: str
    summary: str
    reasons: tuple[str, ...]
    assessed_at: datetime
    assessed_by: str
    # the EDPB risk step (issue 14); an assessment recorded before it reads with these defaults
    contained: bool = False
    people: int = 0  # the number of people the scale step counted (the upper bound of a range)
    large_scale: int = 0  # incidents.large_scale when assessed
    risk_band: str = ""  # the band after the scale step ("" before: the ENISA band)
    summary_nl: str = ""
    reasons_nl: tuple[str, ...] = ()

    @property
    def advice_band(self) -> str:
        """The band the advice followed: ENISA's, one step higher above the large-scale threshold."""
        return self.risk_band or self.band

    @property
    def harms_integrity_or_availability(self) -> bool:
        return self.integrity in ("recoverable", "unrecoverable") or self.availability in ("temporary", "full")

    def reasons_in(self, lang: str) -> tuple[str, ...]:
        """The reasons in `lang` (en or nl); an assessment recorded before the Dutch reasons has none in nl."""
        return self.reasons_nl if lang == "nl" else self.reasons

    def summary_in(self, lang: str) -> str:
        return self.summary_nl if lang == "nl" else self.summary

    def record(self) -> dict[str, Any]:
        """The JSON stored in the incident row and in the audit trail (score as exact text)."""
        data = _plain(self)
        data["score"] = f"{self.score:.2f}"
        data["reasons"] = list(self.reasons)
        data["reasons_nl"] = list(self.reasons_nl)
        data["assessed_at"] = iso(self.assessed_at)
        return data

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Assessment:
        return cls(**{**data, "score": Decimal(data["score"]), "reasons": tuple(data["reasons"]),
                      "reasons_nl": tuple(data.get("reasons_nl", ())),
                      "assessed_at": _from_iso(data["assessed_at"])})


@dataclass(frozen=True, slots=True)
class Decision:
    """The privacy officer's decision on art. 33 and 34, which may differ from the recommendation."""

    notify_authority: bool
    notify_subjects: bool
    subjects_exception: str  # "" or unintelligible | risk-removed | disproportionate-effort (art. 34(3))
    reason: str
    follows_recommendation: bool
    decided_at: datetime
    decided_by: str

    @property
    def public_communication(self) -> bool:
        return self.subjects_exception == "disproportionate-effort"

    def record(self) -> dict[str, Any]:
        data = _plain(self)
        data["decided_at"] = iso(self.decided_at)
        return data

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Decision:
        return cls(**{**data, "decided_at": _from_iso(data["decided_at"])})


@dataclass(frozen=True, slots=True)
class Closure:
    closed_at: datetime
    closed_by: str
    note: str
    ongoing: bool = False  # closed while the incident itself goes on (no end time), said explicitly

    def record(self) -> dict[str, Any]:
        return {"closed_at": iso(self.closed_at), "closed_by": self.closed_by, "note": self.note,
                "ongoing": self.ongoing}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Closure:
        return cls(_from_iso(data["closed_at"]), data["closed_by"], data["note"], bool(data.get("ongoing")))


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification to the authority or a communication to the people concerned."""

    recipient: str  # authority | subjects | csirt
    kind: str  # initial | follow-up | withdrawal; for the CSIRT: warning | notification | final
    at: datetime
    reference: str
    channel: str
    delay_reason: str
    note: str
    recorded_at: datetime
    recorded_by: str
    # art. 33(4): what was still open when notifying the authority, and when the follow-up is due
    open_items: str = ""
    follow_up_due: datetime | None = None
    # art. 34(2): what the people concerned were told, by part (MESSAGE_PARTS) plus its `lang`
    message: dict[str, str] | None = None

    def record(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "recipient": self.recipient, "kind": self.kind, "at": iso(self.at), "reference": self.reference,
            "channel": self.channel, "delay_reason": self.delay_reason, "note": self.note,
            "recorded_at": iso(self.recorded_at), "recorded_by": self.recorded_by}
        # only when present, so notifications recorded before these fields keep their trail value
        if self.open_items or self.follow_up_due:
            data.update(open_items=self.open_items, follow_up_due=iso(self.follow_up_due) if self.follow_up_due
                        else None)
        if self.message:
            data["message"] = dict(self.message)
        return data


@dataclass(frozen=True, slots=True)
class Link:
    kind: str  # control | finding
    ref: str
    linked_at: datetime
    linked_by: str

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, "ref": self.ref, "linked_at": iso(self.linked_at), "linked_by": self.linked_by}


@dataclass(frozen=True, slots=True)
class Incident:
    """One breach as read from the register."""

    id: str
    title: str
    status: str
    description: str
    occurred_at: datetime
    ended_at: datetime | None
    discovered_at: datetime
    aware_at: datetime
    deadline: datetime
    how_discovered: str
    cause: str
    nature: tuple[str, ...]
    data_categories: tuple[str, ...]
    subjects: int
    subjects_max: int | None
    records: int | None
    people: tuple[str, ...]
    processor: str
    consequences: str
    measures_taken: str
    measures_planned: str
    protection: str
    cross_border: bool
    assessment: Assessment | None
    decision: Decision | None
    closure: Closure | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    notifications: tuple[Notification, ...] = field(default=())
    links: tuple[Link, ...] = field(default=())
    significant: bool = False  # a significant incident under the Cbw (NIS2 art. 23): reported to the CSIRT
    found_by: str = ""  # FOUND_BY, or "" when not recorded
    processor_discovered_at: datetime | None = None  # when the processor discovered it (art. 33(2))
    processor_told_at: datetime | None = None  # when the processor told the municipality
    ap_instruction: str = ""  # what the authority required about informing the people (art. 34(4))

    @property
    def personal_data(self) -> bool:
        """Whether personal data are involved: then it is a breach with the GDPR duties (art. 33, 34)."""
        return bool(self.data_categories)

    def csirt_notification(self, stage: str) -> Notification | None:
        return first_notification(self.notifications, "csirt", CSIRT_STAGES[stage])

    def csirt_duties(self, now: datetime | None = None) -> dict[str, Duty]:
        """The three CSIRT stages with their deadlines and state; `not-applicable` unless significant."""
        return csirt_duties_at(self.aware_at, self.significant, self.notifications, now)

    def duties(self, now: datetime | None = None) -> dict[str, Duty]:
        """Each duty with its own state: `authority` (72 hours), `people` (without undue delay), and the
        CSIRT stages as `csirt.early-warning`, `csirt.notification`, `csirt.final`."""
        moment = now or utc_now()
        if not self.personal_data:
            authority, people = Duty("not-applicable"), Duty("not-applicable")
        elif self.decision is None:
            initial = self.authority_notification
            authority = duty_at(self.deadline, initial, moment) if initial else Duty(
                "overdue" if moment > self.deadline else "to-decide", self.deadline)
            people = Duty("to-decide")
        else:
            d = self.decision
            authority = (duty_at(self.deadline, self.authority_notification, moment) if d.notify_authority
                         or self.authority_notification else Duty("not-required", self.deadline))
            informed = next(iter(self.notifications_to("subjects")), None)
            people = (duty_at(None, informed, moment) if d.notify_subjects or d.public_communication or informed
                      else Duty("not-required"))
        out = {"authority": authority, "follow-up": self.follow_up_duty(moment), "people": people}
        out.update({f"csirt.{stage}": duty for stage, duty in self.csirt_duties(moment).items()})
        return out

    def follow_up_duty(self, now: datetime | None = None) -> Duty:
        """The follow-up to the authority of a notification in phases (art. 33(4)).

        `not-applicable` unless a notification to the authority said what was still open; `due` or
        `overdue` against the last such notification's `follow_up_due` until a follow-up comes after it.
        """
        to_authority = [n for n in self.notifications_to("authority") if n.kind in ("initial", "follow-up")]
        phased = [i for i, n in enumerate(to_authority) if n.follow_up_due is not None]
        if not phased or self.withdrawn:
            return Duty("not-applicable")
        last = to_authority[phased[-1]]
        assert last.follow_up_due is not None
        answer = next(iter(to_authority[phased[-1] + 1:]), None)
        return duty_at(last.follow_up_due, answer, now or utc_now())

    @property
    def open_items(self) -> str:
        """What was still open at the last notification to the authority that left something open."""
        phased = [n for n in self.notifications_to("authority") if n.follow_up_due is not None]
        return phased[-1].open_items if phased else ""

    def notifications_to(self, recipient: str, kind: str | None = None) -> list[Notification]:
        return [n for n in self.notifications if n.recipient == recipient and (kind is None or n.kind == kind)]

    @property
    def authority_notification(self) -> Notification | None:
        """The initial notification to the authority, if recorded."""
        return first_notification(self.notifications, "authority", "initial")

    @property
    def withdrawn(self) -> bool:
        return bool(self.notifications_to("authority", "withdrawal"))

    @property
    def subjects_informed_at(self) -> datetime | None:
        first = first_notification(self.notifications, "subjects")
        return first.at if first else None

    def clock(self, now: datetime | None = None) -> Clock:
        """The 72-hour clock at now (default: the current time)."""
        return authority_clock(self.deadline, self.notifications, self.personal_data,
                               None if self.decision is None else self.decision.notify_authority, now or utc_now())


def _plain(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
