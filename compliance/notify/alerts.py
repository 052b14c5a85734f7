"""Breach deadline alerts: 24 hours and 6 hours before a breach's 72-hour deadline, and when it passed.

A breach needs an alert while its clock runs (`incidents.Incident.clock`): it is not closed, the
authority was not notified, and no decision not to notify was recorded. The daemon calls
`check_deadlines` every `schedule.alert_interval`: it raises the stage the clock is in (`24h`, `6h`,
`passed`) once per breach in `alerts`, and sends each raised alert to the privacy officer
(`alerts.email`, `alerts.slack_channel`) once per channel, retrying failures with back-off. A stage
reached while the daemon was down is raised when it is back; stages already passed by then are not
sent late, and an alert whose breach was notified or decided meanwhile is not sent any more.

An alert names the breach's id, the hours left and its status: no title, description or anything
else typed into the register.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from compliance.notify import Sent, email_configured, gettext, slack_configured

if TYPE_CHECKING:
    from compliance.db import Database
    from compliance.notify.deliveries import Outcome
    from compliance.settings import Settings

log = logging.getLogger("compliance.notify")

#: The stages, most urgent first, and the hours left at which each begins.
STAGES = (("passed", 0.0), ("6h", 6.0), ("24h", 24.0))
URGENCY = {name: rank for rank, (name, _) in enumerate(STAGES)}
#: The CSIRT stages of a significant incident (Cbw) and the prefix of their alerts' stage, e.g. `cn-6h`.
CSIRT_ALERTS = {"ew": "early-warning", "cn": "notification", "fr": "final"}
#: Alerts raised longer ago than this are not (re)sent any more.
ALERT_LOOKBACK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    incident_id: str
    stage: str
    deadline: datetime
    raised_at: datetime

    @property
    def key(self) -> str:
        return f"{self.incident_id}/{self.stage}"

    @property
    def track(self) -> str:
        """`authority` for the 72-hour clock, or the CSIRT prefix (ew, cn, fr)."""
        return self.stage.split("-", 1)[0] if "-" in self.stage else "authority"

    @property
    def step(self) -> str:
        """The stage within its track: 24h, 6h or passed."""
        return self.stage.split("-", 1)[1] if "-" in self.stage else self.stage


def stage_for(hours_left: float) -> str | None:
    """The alert stage a running clock is in, or None while more than 24 hours are left."""
    for name, hours in STAGES:
        if hours_left <= hours:
            return name
    return None


def alert_channels(settings: Settings) -> list[str]:
    """The channels alerts go out on: e-mail to alerts.email, Slack when alerts.slack_channel is set."""
    return [c for c in ("email", "slack") if alert_channel_problem(settings, c) is None]


def alert_channel_problem(settings: Settings, channel: str) -> str | None:
    """Why alerts cannot go out on channel, or None when they can."""
    if channel == "email":
        return "alerts.email is not set" if not settings.alerts.email else email_configured(settings)
    return "alerts.slack_channel is not set" if not settings.alerts.slack_channel else slack_configured(settings)


def alerts_off(settings: Settings) -> str | None:
    """Why no breach deadline alert can go out at all, or None when one channel can take them."""
    if alert_channels(settings):
        return None
    reasons = "; ".join(f"{c}: {alert_channel_problem(settings, c)}" for c in ("email", "slack"))
    return f"no channel is configured for breach deadline alerts ({reasons})"


def raise_alerts(database: Database, now: datetime | None = None) -> list[RaisedAlert]:
    """Record the stage each breach with a running clock is in, once; returns the alerts newly raised."""
    import sqlalchemy
    from sqlalchemy import select

    from compliance.db.models import Alert
    from compliance.incidents import open_incidents

    now = (now or datetime.now(UTC)).astimezone(UTC)
    raised = []
    for incident in open_incidents(database, now):
        clock = incident.clock(now)
        if clock.state not in ("running", "overdue") or clock.hours_left is None:
            continue
        stage = stage_for(clock.hours_left)
        if stage is None:
            continue
        with database.sessions() as session:
            known = set(session.scalars(select(Alert.stage).where(Alert.incident_id == incident.id)))
        if any(URGENCY[k] <= URGENCY[stage] for k in known if k in URGENCY):
            continue  # this stage, or a more urgent one, was raised before
        try:
            with database.transaction() as session:
                session.add(Alert(incident_id=incident.id, stage=stage, deadline=clock.deadline, raised_at=now))
        except sqlalchemy.exc.IntegrityError:
            continue  # raised by another process just now
        log.info("breach %s: deadline alert %s raised (%.1f h left)", incident.id, stage, clock.hours_left)
        raised.append(RaisedAlert(incident.id, stage, clock.deadline, now))
    for incident in open_incidents(database, now):
        if incident.significant:
            raised += _raise_csirt(database, incident, now)
    return raised


def _raise_csirt(database: Database, incident: Any, now: datetime) -> list[RaisedAlert]:
    """Raise the alert stage of each CSIRT report still due or overdue, once per stage as for the 72 hours."""
    import sqlalchemy
    from sqlalchemy import select

    from compliance.db.models import Alert

    raised = []
    duties = incident.csirt_duties(now)
    with database.sessions() as session:
        known = set(session.scalars(select(Alert.stage).where(Alert.incident_id == incident.id)))
    for prefix, csirt_stage in CSIRT_ALERTS.items():
        duty = duties[csirt_stage]
        if duty.state not in ("due", "overdue") or duty.deadline is None:
            continue
        hours_left = (duty.deadline - now).total_seconds() / 3600
        step = stage_for(hours_left)
        if step is None:
            continue
        if any(k.startswith(prefix + "-") and URGENCY[k[len(prefix) + 1:]] <= URGENCY[step] for k in known):
            continue  # this stage, or a more urgent one, was raised before
        stage = f"{prefix}-{step}"
        try:
            with database.transaction() as session:
                session.add(Alert(incident_id=incident.id, stage=stage, deadline=duty.deadline, raised_at=now))
        except sqlalchemy.exc.IntegrityError:
            continue  # raised by another process just now
        log.info("incident %s: CSIRT deadline alert %s raised (%.1f h left)", incident.id, stage, hours_left)
        raised.append(RaisedAlert(incident.id, stage, duty.deadline, now))
    return raised


def send_alerts(database: Database, settings: Settings, now: datetime | None = None) -> list[Outcome]:
    """Send every raised alert not yet delivered on each alert channel, when its (next) attempt is due."""
    from sqlalchemy import select

    from compliance.db.models import Alert
    from compliance.incidents import open_incidents
    from compliance.notify.deliveries import Deliveries

    now = (now or datetime.now(UTC)).astimezone(UTC)
    channels = alert_channels(settings)
    if not channels:
        return []
    with database.sessions() as session:
        rows = [RaisedAlert(a.incident_id, a.stage, a.deadline, a.raised_at) for a in
                session.scalars(select(Alert).where(Alert.raised_at >= now - ALERT_LOOKBACK).order_by(Alert.id))]
    if not rows:
        return []
    most_urgent: dict[tuple[str, str], int] = {}
    for alert in rows:
        track = (alert.incident_id, alert.track)
        most_urgent[track] = min(most_urgent.get(track, 99), URGENCY[alert.step])
    incidents = {i.id: i for i in open_incidents(database, now) if i.id in {k[0] for k in most_urgent}}
    deliveries = Deliveries.for_settings(database, settings)
    outcomes = []
    for alert in rows:
        incident = incidents.get(alert.incident_id)
        if incident is None or URGENCY[alert.step] > most_urgent[(alert.incident_id, alert.track)]:
            continue  # closed, or overtaken by a more urgent stage
        if alert.track == "authority":
            clock = incident.clock(now)
            if clock.state not in ("running", "overdue") or clock.hours_left is None:
                continue  # notified or decided meanwhile: nothing to warn about any more
            hours_left, deadline, duty = clock.hours_left, clock.deadline, "authority"
        else:
            duty = CSIRT_ALERTS[alert.track]
            csirt = incident.csirt_duties(now)[duty]
            if csirt.state not in ("due", "overdue") or csirt.deadline is None:
                continue  # reported meanwhile
            hours_left, deadline = round((csirt.deadline - now).total_seconds() / 3600, 1), csirt.deadline
        for channel in channels:
            if deliveries.may_try("alert", alert.key, channel, now):
                message = AlertMessage(alert.incident_id, alert.step, hours_left, incident.status,
                                       deadline, settings.alerts.lang, settings.timezone, duty)
                outcomes.append(deliveries.deliver("alert", alert.key, channel, _sender(channel, message, settings,
                                                                                        now), now=now))
    return outcomes


def check_deadlines(database: Database, settings: Settings, now: datetime | None = None) -> list[Outcome]:
    """Raise the alerts that are due and send what is pending: the daemon's periodic job."""
    if not alert_channels(settings):
        return []
    raise_alerts(database, now)
    return send_alerts(database, settings, now)


# -- the message --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """What an alert says: the breach's id, the stage, the hours left, the status; nothing else."""

    incident_id: str
    stage: str
    hours_left: float
    status: str
    deadline: datetime
    lang: str
    timezone: str
    duty: str = "authority"  # or a CSIRT stage: early-warning | notification | final

    def texts(self) -> tuple[str, str]:
        """The subject (or first line) and the body, in the alert's language."""
        from compliance.report.language import Formatter

        _ = gettext(self.lang)
        f = Formatter(self.lang, self.timezone)
        values = {"id": self.incident_id, "hours": f.number(abs(self.hours_left), 1),
                  "deadline": f.time(self.deadline), "status": _status(self.status, _)}
        if self.duty != "authority":
            return self._csirt_texts(values)
        if self.stage == "passed":
            subject = _("Breach %(id)s: the 72-hour deadline to notify the authority has passed") % values
            first = _("The 72-hour deadline of breach %(id)s passed %(hours)s hours ago (%(deadline)s).") % values
        else:
            subject = _("Breach %(id)s: %(hours)s hours left to notify the authority") % values
            first = _("Breach %(id)s has %(hours)s hours left until its 72-hour deadline to notify the authority "
                      "(%(deadline)s).") % values
        body = "\n".join([
            first,
            _("Status: %(status)s. The authority has not been notified, and no decision not to notify has been "
              "recorded.") % values,
            _("Record the decision with `compliance incident decide %(id)s`, or the notification with "
              "`compliance incident notify %(id)s --authority`.") % values,
        ])
        return subject, body


    def _csirt_texts(self, values: dict[str, Any]) -> tuple[str, str]:
        nl = self.lang == "nl"
        report = (_CSIRT_NL if nl else _CSIRT_EN)[self.duty]
        values = {**values, "report": report, "stage": self.duty}
        if self.stage == "passed":
            subject = ("Incident %(id)s: de termijn voor de %(report)s aan het CSIRT is verstreken" if nl else
                       "Incident %(id)s: the deadline for the %(report)s to the CSIRT has passed") % values
            first = ("De termijn voor de %(report)s van incident %(id)s aan het CSIRT is %(hours)s uur geleden "
                     "verstreken (%(deadline)s)." if nl else "The deadline for the %(report)s of incident %(id)s to "
                     "the CSIRT passed %(hours)s hours ago (%(deadline)s).") % values
        else:
            subject = ("Incident %(id)s: nog %(hours)s uur voor de %(report)s aan het CSIRT" if nl else
                       "Incident %(id)s: %(hours)s hours left for the %(report)s to the CSIRT") % values
            first = ("Incident %(id)s is een significant incident (Cbw); de %(report)s aan het CSIRT moet uiterlijk "
                     "%(deadline)s binnen zijn." if nl else "Incident %(id)s is a significant incident (Cbw); the "
                     "%(report)s to the CSIRT is due by %(deadline)s.") % values
        body = "\n".join([first, ("Leg de melding vast met `compliance incident notify %(id)s --csirt --stage "
                                  "%(stage)s --reference ...`." if nl else "Record the report with `compliance "
                                  "incident notify %(id)s --csirt --stage %(stage)s --reference ...`.") % values])
        return subject, body


_CSIRT_EN = {"early-warning": "early warning", "notification": "incident notification", "final": "final report"}
_CSIRT_NL = {"early-warning": "vroegtijdige waarschuwing", "notification": "incidentmelding",
             "final": "eindrapport"}


def _status(status: str, _: Any) -> str:
    names = {"open": _("open"), "assessed": _("assessed"), "notified": _("notified"), "closed": _("closed")}
    return str(names.get(status, status))


def _sender(channel: str, message: AlertMessage, settings: Settings, now: datetime) -> Callable[[], int | Sent]:
    from compliance.notify import email, slack

    subject, body = message.texts()
    if channel == "email":
        sender = settings.digest.sender or ""
        recipients = settings.alerts.email
        mail = email.compose(subject=subject, sender=sender, recipients=recipients, text=body + "\n",
                             lang=message.lang, now=now)
        return lambda: email.send(settings, mail, recipients)
    blocks = [slack.section(f":warning: *{slack.escape(subject)}*\n{slack.escape(body)}")]
    return lambda: slack.post(settings, subject, blocks, channel=settings.alerts.slack_channel)
