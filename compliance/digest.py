"""The weekly digest for management, by e-mail and Slack, in Dutch or English.

The digest is about the last complete ISO week before the moment it is made (Monday to Sunday, in
the configured time zone), so the Monday-morning digest covers the week just ended and a digest made
later that week covers the same week. Its key is the week's label (2026-W09): a digest that went out
on a channel for a week never goes out there again (`compliance.notify.deliveries`).

Every figure comes from the risk overview's query layer (`compliance.report.build_overview`): the
headline score and its change since the week before, the five top risks, breach counts, checks that
could not run, controls not evaluated in time, and the trend chart. The ids of new and overdue
breaches come from the breach register's own `incidents.figures`, the same call the overview counts
with; no personal data and no free text from the register appear. Failed deliveries of the week (of
digests and alerts) are listed, so a digest that did not arrive is reported in the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache
from typing import TYPE_CHECKING, Any

from compliance.errors import ComplianceError
from compliance.notify import CHANNELS, NotConfigured, email_configured, gettext, ngettext, slack_configured

if TYPE_CHECKING:
    from email.message import EmailMessage

    from jinja2 import Environment

    from compliance.db import Database
    from compliance.notify import Sent
    from compliance.notify.deliveries import DeliveryProblem, Outcome
    from compliance.report import Overview, Period
    from compliance.settings import Settings

#: How many of the top risks the digest names.
TOP_RISKS = 5
#: How many controls whose checks could not run the digest names before "and N more".
LISTED = 10
CHART_FILENAME = "trend.png"


# -- which week, which channels ---------------------------------------------------------------------


def digest_week(now: datetime, zone: tzinfo) -> Period:
    """The last complete ISO week before now (in zone): the week the digest is about."""
    from compliance.report.periods import period_containing

    today = now.astimezone(zone).date()
    return period_containing("week", today - timedelta(days=today.weekday() + 1))


def week_of(key: str) -> Period:
    """The week a digest key such as 2026-W09 names."""
    from compliance.report.periods import period_containing

    try:
        year, week = key.split("-W")
        day = date.fromisocalendar(int(year), int(week), 1)
    except ValueError:
        raise ComplianceError(f"'{key}' is not a week; write it as 2026-W09") from None
    return period_containing("week", day)


def digest_channels(settings: Settings) -> list[str]:
    """The channels the digest can go out on with these settings."""
    return [c for c in CHANNELS if channel_problem(settings, c) is None]


def channel_problem(settings: Settings, channel: str) -> str | None:
    """Why the digest cannot go out on channel, or None when it can."""
    if channel == "email":
        problem = email_configured(settings)
        if problem is None and not settings.digest.to:
            problem = "digest.to, the recipients, is not set (or COMPLIANCE_DIGEST_TO)"
        return problem
    problem = slack_configured(settings)
    if problem is None and settings.slack.effective_mode == "token" and not settings.slack.channel:
        problem = "slack.channel is not set (or COMPLIANCE_SLACK_CHANNEL)"
    return problem


def digest_off(settings: Settings) -> str | None:
    """Why the digest cannot go out on any channel, or None when one can take it."""
    if digest_channels(settings):
        return None
    reasons = "; ".join(f"{c}: {channel_problem(settings, c)}" for c in CHANNELS)
    return f"no channel is configured for the digest ({reasons})"


def chosen_channels(settings: Settings, channel: str) -> list[str]:
    """The channels for `--channel email|slack|all`; raises NotConfigured when none can be used."""
    if channel == "all":
        off = digest_off(settings)
        if off:
            raise NotConfigured(off)
        return digest_channels(settings)
    if channel not in CHANNELS:
        raise ComplianceError(f"unknown channel '{channel}'; use email, slack or all")
    problem = channel_problem(settings, channel)
    if problem:
        raise NotConfigured(f"cannot send the digest by {channel}: {problem}")
    return [channel]


# -- content ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    """What one digest holds: the overview of a week plus breach ids and the week's delivery problems."""

    week: Period
    lang: str
    overview: Overview
    new_breaches: tuple[str, ...]
    overdue_breaches: tuple[str, ...]
    delivery_problems: tuple[DeliveryProblem, ...]
    report_url: str | None
    organisation: str = ""

    @property
    def key(self) -> str:
        return self.week.label

    @property
    def top_risks(self) -> tuple[Any, ...]:
        return self.overview.risks[:TOP_RISKS]


def _check_kinds(settings: Settings) -> dict[str, str] | None:
    """Per control id `automated`, `evidence` or `unconfigured`, from the catalog and the configured target
    groups (as the report command does); None when the catalog does not load (the overview then leaves the
    automated/evidence split out)."""
    from compliance.catalog import load_catalog
    from compliance.errors import ComplianceError
    from compliance.soa import control_kind

    try:
        catalog = load_catalog(settings.control_paths, settings.targets, bundled=settings.controls.bundled)
    except ComplianceError:
        return None
    return {control.id: control_kind(control, settings.targets) for control in catalog}


def build_digest(database: Database, settings: Settings, *, week: Period | None = None, now: datetime | None = None,
                 lang: str | None = None) -> Digest:
    """The digest for week (default: the last complete week before now), from the risk overview."""
    from compliance.incidents import figures
    from compliance.notify.deliveries import Deliveries
    from compliance.report import build_overview
    from compliance.report.periods import end_of_day, start_of_day

    now = (now or datetime.now(UTC)).astimezone(UTC)
    zone = settings.zone
    week = week or digest_week(now, zone)
    # a week not over yet (`digest send --week` of this week) is reported up to today
    overview = build_overview(database, "week", min(week.end, now.astimezone(zone).date()), zone, now=now,
                              default_schedule=settings.schedule.default_cron, kinds=_check_kinds(settings))
    # the moments the overview counted breaches between (see compliance.report.breaches)
    start, moment = start_of_day(week.start, zone), min(end_of_day(week.end, zone), now)
    new = figures(database, since=start, until=moment, now=moment).incidents
    known = figures(database, until=moment, now=moment).incidents
    problems = Deliveries.for_settings(database, settings).problems(start, moment)
    url = settings.digest.report_url
    return Digest(
        week=week,
        lang=lang or settings.digest.lang,
        overview=overview,
        new_breaches=tuple(sorted(i.id for i in new)),
        overdue_breaches=tuple(sorted(i.id for i in known if i.clock(moment).overdue)),
        delivery_problems=tuple(problems),
        report_url=url.replace("{period}", week.label) if url else None,
        organisation=settings.incidents.organisation,
    )


@dataclass(frozen=True, slots=True)
class Line:
    """One entry of a section: a short label (a control id, a count), a text and a detail."""

    label: str
    text: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    lines: tuple[Line, ...]
    note: str = ""  # "and 3 more", or what an empty section means


@dataclass(frozen=True, slots=True)
class View:
    """The digest's texts in its language, laid out by the e-mail templates and the Slack blocks alike."""

    lang: str
    subject: str
    title: str
    span: str
    score: str
    change: str
    counts: str
    chart_alt: str
    sections: tuple[Section, ...]
    report_url: str | None
    report_link: str
    footer: str


def view(digest: Digest) -> View:
    """Every text of the digest, translated and formatted for its language (control titles too)."""
    from compliance.report.language import Formatter, label, localized

    lang, o = digest.lang, digest.overview
    _, n_ = gettext(lang), ngettext(lang)
    f = Formatter(lang, o.timezone)
    score = f.percent(o.compliance.percent)
    if o.change is None:
        change = _("No comparison with the week before.")
    else:
        change = _("%(points)s percentage points since the week before (%(before)s).") % {
            "points": f.points(o.change), "before": f.percent(o.previous.percent)}
    c = o.compliance
    counts = _("Passing %(passing)d · failing %(failing)d · accepted %(accepted)d · unknown %(unknown)d · "
               "not evaluated %(not_evaluated)d") % {
        "passing": c.passing, "failing": c.failing, "accepted": c.accepted, "unknown": c.unknown,
        "not_evaluated": c.not_evaluated}

    risks = []
    for risk in digest.top_risks:
        days = n_("failing for %(num)d day", "failing for %(num)d days", risk.age_days) % {"num": risk.age_days}
        detail = f"{label('severity', risk.severity, lang)}, {days}"
        if risk.accepted and risk.exception is not None:
            detail += ", " + _("risk accepted until %(until)s") % {"until": f.day(risk.exception.until)}
        risks.append(Line(risk.control, localized(risk.title, lang), detail))

    breaches = o.incidents
    ids = ", ".join
    breach_lines = (
        Line(str(breaches.new), _("newly registered"), ids(digest.new_breaches)),
        Line(str(breaches.overdue), _("overdue (72 hours passed without a notification to the authority or a "
                                      "decision not to notify)"), ids(digest.overdue_breaches)),
        Line(str(breaches.open), _("open in all")),
    )

    failing_checks = []
    for item in o.could_not_run[:LISTED]:
        targets = n_("%(num)d target", "%(num)d targets", len(item.targets)) % {"num": len(item.targets)}
        failing_checks.append(Line(item.control, localized(item.title, lang),
                                   _("%(targets)s, last on %(day)s") % {"targets": targets, "day": f.day(item.at)}))
    more = len(o.could_not_run) - LISTED
    could_not_run_note = (_("and %(num)d more") % {"num": more}) if more > 0 else \
        ("" if failing_checks else _("Every check could run."))
    if o.not_evaluated:
        could_not_run_note = " ".join(filter(None, [could_not_run_note, _(
            "Controls not evaluated in time: %(num)d.") % {"num": len(o.not_evaluated)}]))

    problems = [Line(_problem_subject(p, _), _problem_channel(p.channel, _), _problem_detail(p, _, n_))
                for p in digest.delivery_problems]

    sections: tuple[Section, ...] = (
        Section(_("Top risks"), tuple(risks), "" if risks else _("No failing controls.")),
        Section(_("Personal-data breaches"), breach_lines),
        Section(_("Checks that could not run"), tuple(failing_checks), could_not_run_note),
    )
    if problems:
        sections += (Section(_("Delivery problems"), tuple(problems)),)
    title = _("Compliance digest, %(week)s") % {"week": f.period(digest.week)}
    moment = f.day(digest.week.end)
    footer = _("Figures at the end of %(day)s (%(zone)s). Sent by the compliance monitor.") % {
        "day": moment, "zone": o.timezone}
    if digest.organisation:
        footer = f"{digest.organisation}. {footer}"
    return View(
        lang=lang,
        subject=f"{title}: {score}" + (f" ({f.points(o.change)})" if o.change is not None else ""),
        title=title,
        span=f.span(digest.week),
        score=score,
        change=change,
        counts=counts,
        chart_alt=_("Compliance and failing controls over the last %(num)d weeks") % {"num": len(o.trend)},
        sections=sections,
        report_url=digest.report_url,
        report_link=_("The full report"),
        footer=footer,
    )


def _problem_subject(problem: DeliveryProblem, _: Any) -> str:
    if problem.kind == "digest":
        return str(_("digest %(week)s") % {"week": problem.key})
    return str(_("alert %(alert)s") % {"alert": problem.key})


def _problem_channel(channel: str, _: Any) -> str:
    return str(_("by e-mail") if channel == "email" else _("by Slack"))


def _problem_detail(problem: DeliveryProblem, _: Any, n_: Any) -> str:
    if problem.refused:
        partly = _("partly delivered; refused: %(addresses)s (not sent to them again)") % {
            "addresses": problem.refused}
        if not problem.failures:
            return str(partly)
        failed = n_("failed %(num)d time", "failed %(num)d times", problem.failures) % {"num": problem.failures}
        return f"{failed} ({problem.last_error}); {partly}"
    failed = n_("failed %(num)d time", "failed %(num)d times", problem.failures) % {"num": problem.failures}
    if problem.delivered:
        state = _("delivered later")
    elif problem.retrying:
        state = _("not delivered yet, will be retried")
    else:
        state = _("not delivered")
    return f"{failed} ({problem.last_error}); {state}"


# -- rendering ----------------------------------------------------------------------------------------


@cache
def _environment(kind: str) -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(loader=PackageLoader("compliance.notify", "templates"), autoescape=kind == "html",
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_text(digest: Digest) -> str:
    """The digest as plain text (the e-mail's text part, and `digest send --dry-run`)."""
    return _environment("text").get_template("digest.txt.j2").render(v=view(digest))


def render_html(digest: Digest, chart_cid: str) -> str:
    """The digest as HTML with inline CSS, the trend chart as `<img src="cid:{chart_cid}">`."""
    return _environment("html").get_template("digest.html.j2").render(v=view(digest), chart_cid=chart_cid)


def email_message(digest: Digest, settings: Settings, *, now: datetime | None = None) -> EmailMessage:
    """The digest as a multipart e-mail to digest.to, with the trend chart inline."""
    from compliance.notify.email import InlineImage, compose, content_id
    from compliance.report import trend_png

    sender = settings.digest.sender or ""
    cid = content_id(sender)
    chart = InlineImage(cid, trend_png(digest.overview, digest.lang), CHART_FILENAME)
    return compose(subject=view(digest).subject, sender=sender, recipients=settings.digest.to,
                   text=render_text(digest), html=render_html(digest, cid), images=[chart], lang=digest.lang,
                   now=now)


def slack_message(digest: Digest) -> tuple[str, list[dict[str, Any]]]:
    """The digest as Slack's notification text and Block Kit blocks (within Slack's limits)."""
    from compliance.notify import slack

    v = view(digest)
    blocks = [slack.header(v.title), slack.section(f"*{slack.escape(v.score)}*  {slack.escape(v.change)}\n"
                                                   f"{slack.escape(v.counts)}")]
    for part in v.sections:
        lines = [f"*{slack.escape(part.title)}*"]
        for line in part.lines:
            text = f"• `{slack.escape(line.label)}` {slack.escape(line.text)}"
            lines.append(text + (f": {slack.escape(line.detail)}" if line.detail else ""))
        if part.note:
            lines.append(f"_{slack.escape(part.note)}_")
        blocks.append(slack.section(_within("\n".join(lines), slack.MAX_TEXT)))
    footer = slack.escape(v.footer)
    if v.report_url:
        footer = f"<{v.report_url.replace('|', '%7C').replace('>', '%3E')}|{slack.escape(v.report_link)}> · {footer}"
    blocks.append(slack.context(footer))
    return f"{v.title}: {v.score}", slack.fit(blocks)


def _within(text: str, limit: int) -> str:
    """text cut at a line end within limit, saying how many lines were left out."""
    if len(text) <= limit:
        return text
    lines = text.split("\n")
    while lines and len("\n".join(lines)) + 16 > limit:
        lines.pop()
    return "\n".join(lines) + "\n…"


# -- sending ------------------------------------------------------------------------------------------


def send_digest(database: Database, settings: Settings, *, channels: Sequence[str] | None = None,
                lang: str | None = None, week: Period | None = None, now: datetime | None = None) -> list[Outcome]:
    """Send the digest for week (default: the last complete one) on each channel it has not gone out on.

    The daemon's weekly job and `compliance digest send` both call this. Each attempt is recorded;
    a failure is retried later with back-off by `retry_digests`.
    """
    from compliance.notify.deliveries import Deliveries, Outcome

    now = (now or datetime.now(UTC)).astimezone(UTC)
    channels = list(channels) if channels is not None else chosen_channels(settings, "all")
    for channel in channels:
        problem = channel_problem(settings, channel)
        if problem:
            raise NotConfigured(f"cannot send the digest by {channel}: {problem}")
    week = week or digest_week(now, settings.zone)
    deliveries = Deliveries.for_settings(database, settings)
    pending = [c for c in channels if not deliveries.sent("digest", week.label, c)]
    outcomes = [Outcome("digest", week.label, c, "already-sent") for c in channels if c not in pending]
    if not pending:
        return outcomes
    digest = build_digest(database, settings, week=week, now=now, lang=lang)
    for channel in pending:
        outcomes.append(deliveries.deliver("digest", digest.key, channel, _sender(channel, digest, settings, now),
                                           now=now))
    return outcomes


def preview_digest(database: Database, settings: Settings, channels: Sequence[str], *,
                   week: Period | None = None, now: datetime | None = None) -> list[Outcome]:
    """What `send_digest` would do on each channel, sending and recording nothing.

    Each outcome is `would-send` (with the number of recipients), `already-sent`, or `not-configured`
    (its error says what is missing).
    """
    from compliance.notify.deliveries import Deliveries, Outcome

    now = (now or datetime.now(UTC)).astimezone(UTC)
    week = week or digest_week(now, settings.zone)
    deliveries = Deliveries.for_settings(database, settings)
    outcomes = []
    for channel in channels:
        problem = channel_problem(settings, channel)
        if problem:
            outcomes.append(Outcome("digest", week.label, channel, "not-configured", error=problem))
        elif deliveries.sent("digest", week.label, channel):
            outcomes.append(Outcome("digest", week.label, channel, "already-sent"))
        else:
            recipients = len(settings.digest.to) if channel == "email" else 1
            outcomes.append(Outcome("digest", week.label, channel, "would-send", recipients=recipients))
    return outcomes


def _sender(channel: str, digest: Digest, settings: Settings, now: datetime) -> Callable[[], int | Sent]:
    from compliance.notify import email, slack

    if channel == "email":
        return lambda: email.send(settings, email_message(digest, settings, now=now), settings.digest.to)
    text, blocks = slack_message(digest)
    return lambda: slack.post(settings, text, blocks)


@dataclass(frozen=True, slots=True)
class DigestDelivery:
    """How a week's digest went on a channel: its last attempt, and how many attempts there were."""

    week: str
    channel: str
    result: str  # sent | partial | failed | sending | interrupted
    attempts: int
    at: datetime
    finished_at: datetime | None
    recipients: int
    refused: dict[str, str]
    error: str | None
    retry_at: datetime | None


def digest_deliveries(database: Database, *, week: str | None = None, weeks: int = 10) -> list[DigestDelivery]:
    """The digests of week (default: the last `weeks` weeks with one) per channel, newest week first."""
    from compliance.notify.deliveries import Deliveries

    if week is not None:
        week = week_of(week).label  # refuses what is not a week
    groups: dict[tuple[str, str], list[Any]] = {}
    for attempt in Deliveries(database).attempts("digest", week):
        groups.setdefault((attempt.key, attempt.channel), []).append(attempt)
    keep = sorted({key for key, _ in groups}, reverse=True)[:weeks]
    found = []
    for (key, channel), attempts in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1])):
        if key not in keep:
            continue
        last = attempts[-1]
        found.append(DigestDelivery(key, channel, last.result, len(attempts), last.at, last.finished_at,
                                    last.recipients, dict(last.refused or {}), last.error, last.retry_at))
    return sorted(found, key=lambda d: d.week, reverse=True)


def retry_digests(database: Database, settings: Settings, *, now: datetime | None = None) -> list[Outcome]:
    """Retry every digest whose last attempt on a channel failed and whose retry time has come."""
    from compliance.notify.deliveries import Deliveries

    now = (now or datetime.now(UTC)).astimezone(UTC)
    outcomes: list[Outcome] = []
    for key, channel in Deliveries.for_settings(database, settings).due("digest", now):
        if channel_problem(settings, channel) is None:
            outcomes += send_digest(database, settings, channels=[channel], week=week_of(key), now=now)
    return outcomes
