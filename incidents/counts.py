"""The register's figures: counts by status, band and nature, and the 72-hour and CSIRT clocks at a moment.

Counted from what the figures need of each incident (`Counted`), with the model's own clocks, so that a
report can count the register without the register module, its free text or its decoded assessments
(`load_counted`), and the figures of incidents already loaded (`register.figures_of`) are the same counts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from compliance.incidents.categories import NATURES
from compliance.incidents.clocks import Clock, Duty, Notice, authority_clock, csirt_duties_at, first_notification
from compliance.incidents.enisa import BANDS

if TYPE_CHECKING:
    from compliance.db import Database
    from compliance.incidents.model import Incident


@dataclass(frozen=True, slots=True)
class Figures:
    """Counts for reports and the digest over incidents that became known in a period."""

    total: int
    open: int
    by_status: dict[str, int]
    by_band: dict[str, int]
    by_nature: dict[str, int]
    authority_notified: int
    notified_within_72h: int
    notified_late: int
    overdue: int
    subjects_informed: int
    people_affected: int
    incidents: tuple[Incident, ...] = field(default=(), repr=False)
    significant: int = 0  # significant incidents under the Cbw (reported to the CSIRT)
    csirt_overdue: int = 0  # significant incidents with a CSIRT stage past its deadline and not reported
    without_personal_data: int = 0


class Counted(NamedTuple):
    """What the figures count of one incident: no title, description or other free text.

    A named tuple rather than a frozen dataclass: a report makes one per breach in the register."""

    aware_at: datetime
    deadline: datetime
    status: str
    significant: bool
    personal_data: bool
    nature: tuple[str, ...]
    band: str | None  # the ENISA band of its assessment; None when not assessed
    subjects: int
    notify_authority: bool | None  # the decision's; None before a decision
    notifications: tuple[Notice, ...]

    @classmethod
    def of(cls, incident: Incident) -> Counted:
        return cls(incident.aware_at, incident.deadline, incident.status, incident.significant,
                   incident.personal_data, incident.nature, incident.assessment.band if incident.assessment else None,
                   incident.subjects, None if incident.decision is None else incident.decision.notify_authority,
                   incident.notifications)

    def clock(self, now: datetime) -> Clock:
        return authority_clock(self.deadline, self.notifications, self.personal_data, self.notify_authority, now)

    def csirt_duties(self, now: datetime) -> dict[str, Duty]:
        return csirt_duties_at(self.aware_at, self.significant, self.notifications, now)


def tally(incidents: Sequence[Counted], now: datetime) -> Figures:
    """The figures of incidents at now (without the incidents themselves: `Figures.incidents` is empty)."""
    by_status = dict.fromkeys(("open", "assessed", "notified", "closed"), 0)
    by_band = dict.fromkeys((*BANDS, "unassessed"), 0)
    by_nature = dict.fromkeys(NATURES, 0)
    notified = within = overdue = informed = people = significant = csirt_overdue = no_personal_data = 0
    for incident in incidents:
        if incident.significant:  # the CSIRT stages of any other incident are `not-applicable`
            significant += 1
            csirt_overdue += any(d.state == "overdue" for d in incident.csirt_duties(now).values())
        no_personal_data += not incident.personal_data
        by_status[incident.status] += 1
        by_band[incident.band or "unassessed"] += 1
        for nature in incident.nature:
            by_nature[nature] += 1
        clock = incident.clock(now)
        if clock.state == "notified":
            notified += 1
            within += bool(clock.within_deadline)
        overdue += clock.state == "overdue"
        informed += first_notification(incident.notifications, "subjects") is not None
        people += incident.subjects
    return Figures(total=len(incidents), open=len(incidents) - by_status["closed"], by_status=by_status,
                   by_band=by_band, by_nature=by_nature, authority_notified=notified, notified_within_72h=within,
                   notified_late=notified - within, overdue=overdue, subjects_informed=informed,
                   people_affected=people, significant=significant, csirt_overdue=csirt_overdue,
                   without_personal_data=no_personal_data)


class Sent(NamedTuple):
    """What the clocks read of a notification (`clocks.Notice`), as `load_counted` reads it."""

    recipient: str
    kind: str
    at: datetime
    reference: str


def load_counted(database: Database, *, since: datetime | None = None,
                 until: datetime | None = None) -> list[Counted]:
    """What the figures count of the incidents whose aware_at lies in [since, until), in no particular order.

    Reads the columns the figures need and no JSON decoded per incident (issue 18): of the assessment and
    the decision only the band and whether to notify the authority, of the data categories only whether
    there is one (all extracted by the database), and the natures as text, decoded once per distinct list;
    of the notifications what the clocks read (`Sent`).
    """
    from sqlalchemy import Text, cast, select

    from compliance.db import schema

    incidents, sent = schema.incidents, schema.incident_notifications
    period = [*([incidents.c.aware_at >= since] if since is not None else []),
              *([incidents.c.aware_at < until] if until is not None else [])]
    stmt = select(incidents.c.id, incidents.c.aware_at, incidents.c.deadline, incidents.c.status,
                  incidents.c.significant, incidents.c.data_categories[0].as_string().label("first_category"),
                  cast(incidents.c.nature, Text).label("nature"),
                  incidents.c.assessment["band"].as_string().label("band"),
                  incidents.c.decision["notify_authority"].as_boolean().label("notify_authority"),
                  incidents.c.subjects).where(*period)
    counted = select(incidents.c.id).where(*period).scalar_subquery()
    with database.engine.connect() as connection:
        rows = connection.execute(stmt).all()
        notifications: dict[str, list[Sent]] = {}
        for incident_id, *notice in connection.execute(
                select(sent.c.incident_id, sent.c.recipient, sent.c.kind, sent.c.at, sent.c.reference)
                .where(sent.c.incident_id.in_(counted)).order_by(sent.c.id)).all():
            notifications.setdefault(incident_id, []).append(Sent(*notice))
    natures: dict[str, tuple[str, ...]] = {}
    for text in {row.nature for row in rows}:
        natures[text] = tuple(json.loads(text))
    return [Counted(aware_at, deadline, status, bool(significant), first_category is not None, natures[nature], band,
                    subjects, None if notify_authority is None else bool(notify_authority),
                    tuple(notifications.get(incident_id, ())))
            for (incident_id, aware_at, deadline, status, significant, first_category, nature, band, notify_authority,
                 subjects) in rows]
