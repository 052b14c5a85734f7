"""The clocks of the register: the 72-hour deadline of art. 33(1) and the CSIRT stages of the Cbw, at a moment.

Apart from the model (`compliance.incidents.model`, which re-exports all of it) so that the report can count
the register's clocks from a few columns without importing the model of a whole incident (issue 18).
Times are aware datetimes in UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar


class Notice(Protocol):
    """What the clocks read of a notification (`compliance.incidents.model.Notification` has it all)."""

    @property
    def recipient(self) -> str: ...  # authority | subjects | csirt

    @property
    def kind(self) -> str: ...  # initial | follow-up | withdrawal; for the CSIRT: warning | notification | final

    @property
    def at(self) -> datetime: ...

    @property
    def reference(self) -> str: ...


N = TypeVar("N", bound=Notice)

#: Art. 33(1): notify the authority "not later than 72 hours after having become aware".
NOTIFICATION_WINDOW = timedelta(hours=72)

#: Cbw (NIS2 art. 23(4)): a significant incident goes to the CSIRT in three stages, counted here from aware_at.
EARLY_WARNING_WINDOW = timedelta(hours=24)
CSIRT_NOTIFICATION_WINDOW = timedelta(hours=72)
#: The CSIRT stages on the command line and the `kind` each is stored as (the column holds 12 characters).
CSIRT_STAGES = {"early-warning": "warning", "notification": "notification", "final": "final"}


def utc_now() -> datetime:
    return datetime.now(UTC)


def deadline_for(aware_at: datetime) -> datetime:
    """The art. 33(1) deadline: 72 elapsed hours after the controller became aware (in UTC, so DST-proof)."""
    return aware_at.astimezone(UTC) + NOTIFICATION_WINDOW


def one_month_after(moment: datetime) -> datetime:
    """The same time one calendar month later (in UTC); the 31st becomes the last day of a shorter month."""
    utc = moment.astimezone(UTC)
    year, month = (utc.year + 1, 1) if utc.month == 12 else (utc.year, utc.month + 1)
    last = (datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC) - timedelta(days=1)).day
    return utc.replace(year=year, month=month, day=min(utc.day, last))


def csirt_deadlines(aware_at: datetime) -> dict[str, datetime]:
    """The Cbw deadlines of a significant incident by stage: 24 hours, 72 hours and one month after aware_at."""
    aware = aware_at.astimezone(UTC)
    return {"early-warning": aware + EARLY_WARNING_WINDOW, "notification": aware + CSIRT_NOTIFICATION_WINDOW,
            "final": one_month_after(aware)}


@dataclass(frozen=True, slots=True)
class Clock:
    """Where an incident stands against the 72-hour deadline of art. 33(1).

    state: `running` (time left), `overdue` (deadline passed, no notification), `notified` (the
    authority was notified; `within_deadline` says whether in time), or `not-required` (the decision
    is not to notify the authority).
    """

    deadline: datetime
    state: str
    hours_left: float | None  # negative when overdue; None once notified or not required
    notified_at: datetime | None = None
    within_deadline: bool | None = None

    @property
    def overdue(self) -> bool:
        return self.state == "overdue"

    def describe(self) -> str:
        """A few words for a table: "31.5 h left", "5.2 h overdue", "notified in time"."""
        if self.state == "running":
            return f"{self.hours_left:.1f} h left"
        if self.state == "overdue":
            return f"{-(self.hours_left or 0):.1f} h overdue"
        if self.state == "notified":
            if self.within_deadline:
                return "notified in time"
            late = ((self.notified_at or self.deadline) - self.deadline).total_seconds() / 3600
            return f"notified {late:.1f} h late"
        if self.state == "not-applicable":
            return "no personal data: no notification to the AP"
        return "no notification needed (decision)"


@dataclass(frozen=True, slots=True)
class Duty:
    """One reporting duty of an incident: to the authority (art. 33), the people (art. 34), or a CSIRT stage.

    state: `not-applicable` (no personal data, or not significant), `to-decide` (no decision yet),
    `not-required` (decided not to), `due` (still to do, deadline not passed), `overdue`, `done`.
    """

    state: str
    deadline: datetime | None = None
    done_at: datetime | None = None
    reference: str = ""
    within_deadline: bool | None = None


def duty_at(deadline: datetime | None, done: Notice | None, now: datetime) -> Duty:
    """A duty with this deadline at now: `done` by this notification, else `due` or `overdue`."""
    if done is not None:
        return Duty("done", deadline, done.at, done.reference, None if deadline is None else done.at <= deadline)
    if deadline is not None and now > deadline:
        return Duty("overdue", deadline)
    return Duty("due", deadline)


def first_notification(notifications: Sequence[N], recipient: str, kind: str | None = None) -> N | None:
    """The first of notifications (in the order recorded) to recipient, of kind when given."""
    return next((n for n in notifications if n.recipient == recipient and (kind is None or n.kind == kind)), None)


def authority_clock(deadline: datetime, notifications: Sequence[Notice], personal_data: bool,
                    notify_authority: bool | None, now: datetime) -> Clock:
    """The 72-hour clock at now of an incident with these notifications; `notify_authority` is the
    decision's, None before a decision. `Incident.clock` and the register's figures both read it here."""
    initial = first_notification(notifications, "authority", "initial")
    if initial is not None:
        return Clock(deadline, "notified", None, initial.at, initial.at <= deadline)
    if not personal_data:
        return Clock(deadline, "not-applicable", None)
    if notify_authority is not None and not notify_authority:
        return Clock(deadline, "not-required", None)
    left = deadline - now
    return Clock(deadline, "running" if left > timedelta(0) else "overdue", round(left.total_seconds() / 3600, 1))


def csirt_duties_at(aware_at: datetime, significant: bool, notifications: Sequence[Notice],
                    now: datetime | None) -> dict[str, Duty]:
    """The three CSIRT stages of an incident with these notifications, with their deadlines and state at now;
    `not-applicable` unless significant. `Incident.csirt_duties` and the register's figures both read it here."""
    if not significant:
        return {stage: Duty("not-applicable") for stage in CSIRT_STAGES}
    deadlines = csirt_deadlines(aware_at)
    moment = now or utc_now()
    return {stage: duty_at(deadlines[stage], first_notification(notifications, "csirt", kind), moment)
            for stage, kind in CSIRT_STAGES.items()}
