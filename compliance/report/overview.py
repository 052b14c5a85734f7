"""The risk overview: every figure of the management report, as one typed object.

`build_overview(database, period="week", as_of=day, zone=zone)` reads the database once and returns an
`Overview`; the JSON form (`Overview.to_json()`), the HTML, PDF and Markdown templates and the weekly
digest all read that object and compute nothing themselves.

How the figures are defined (docs/report.md explains them for readers of the report):

- A control *counts* when `queries.counted_controls` says so (in the catalog and applicable).
  At a moment it is **failing** when it has an open finding that no exception in force covers,
  **accepted** when all its open findings are covered, **passing** when it has no open finding and
  its last evaluation ran, **unknown** when it has no open finding but its last evaluation could not
  run (`error`) or was skipped, and **not evaluated** before its first evaluation.
- **Compliance** is the share of passing controls among passing, failing and accepted ones, each
  weighted by severity (`SEVERITY_WEIGHTS`). An exception accepts a risk; it does not make the control
  comply, so accepted controls count against the score. Unknown and not evaluated controls are left
  out of the score and shown as blind spots instead.
- The **traffic light** of a theme is red below `AMBER_FROM` percent or with a failing critical control,
  amber below `GREEN_FROM` percent or with a failing high control, green otherwise, and `none` when no
  control of the theme counts. A theme most of whose applicable BIO2 measures are not monitored is at
  most amber: a score over a few controls says little about a theme it mostly does not see.
- **Coverage** counts the live BIO2 government measures: a measure applies unless marked not applicable
  (itself, or through its ISO control); it is *monitored* when a counted control that names it in its
  references is passing, failing or accepted (it has been evaluated and its checks ran). Applicable
  measures not monitored (no control, or none evaluated) are blind spots. Each applicable measure is
  `automated` when a counted control naming it has a check other than evidence, `evidence` when they
  only have evidence checks, `none` without a counted control or when none of their checks runs (the
  split needs the catalog's checks and the configured target groups, passed in as `kinds`: a check on
  a target group without targets does not run).
- **Top risks** are the failing and accepted controls ranked by severity weight x (days failing + 1).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache
from operator import attrgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from compliance.errors import ComplianceError
from compliance.report.breaches import IncidentFigures, incident_figures
from compliance.report.periods import Period, end_of_day, periods_back, report_period, start_of_day
from compliance.report.queries import (
    ControlFacts,
    ErrorResult,
    Evaluation,
    OpenFinding,
    Unread,
    change_counts,
    counted_controls_at,
    covering_exception,
    decisions_in_force,
    errors_at,
    evaluations_at,
    exception_in_force,
    failure_messages,
    open_findings_over,
    resolutions,
)

if TYPE_CHECKING:
    from compliance.db import Database
    from compliance.history import Reader
    from compliance.soa import Decision
    from compliance.store import ExceptionView

#: Weight of a control in the compliance score and in the risk ranking, by severity.
SEVERITY_WEIGHTS: Mapping[str, int] = {"low": 1, "medium": 2, "high": 4, "critical": 8}
#: Traffic-light thresholds on a theme's score, in percent.
GREEN_FROM = 90.0
AMBER_FROM = 70.0
#: How many periods the trend shows (the report's own period included).
TREND_PERIODS = 12
#: How many failing controls the report names as top risks.
TOP_RISKS = 10
#: How many failing targets of a control the report names (the oldest first).
TARGETS_SHOWN = 5
#: Exceptions ending within this many days of the report date are listed as expiring.
EXPIRY_DAYS = 30
#: A scheduled control is overdue once its next scheduled run is more than this far in the past.
SCHEDULE_GRACE = timedelta(hours=2)
#: A control without a schedule (and no default schedule given) is overdue after this long.
UNSCHEDULED_MAX_AGE = timedelta(days=7)

# The figures are named tuples, not frozen dataclasses: every report start defines these classes and the
# computing creates many of them, and a named tuple costs a fraction of a dataclass in both. Readers use
# their attributes only (no tuple comparisons or unpacking), so they behave as the dataclasses did.


class Score(NamedTuple):
    """Control counts at a moment and the severity-weighted share passing (None when nothing counts)."""

    percent: float | None
    passing: int
    failing: int
    accepted: int
    unknown: int
    not_evaluated: int

    @property
    def counted(self) -> int:
        """The controls in the score: passing, failing and accepted."""
        return self.passing + self.failing + self.accepted


class TrendPoint(NamedTuple):
    """The score at the end of one period (the report's own period: at the report date)."""

    period: Period
    score: Score


class ThemeFigures(NamedTuple):
    """One BIO2 / ISO 27002:2022 theme: its score now and at the end of the previous period."""

    theme: str
    clause: str
    score: Score
    previous: float | None
    light: str  # green | amber | red | none
    measures: int = 0  # the live BIO2 measures of the theme
    applicable: int = 0  # of which applicable
    monitored: int = 0  # of which monitored (see Coverage)

    @property
    def change(self) -> float | None:
        return _change(self.score.percent, self.previous)


class Coverage(NamedTuple):
    """How many BIO2 government measures the counted controls monitor (see the module docstring).

    `automated`, `evidence` and `none` split the applicable measures by how they are covered; the first
    two are None when the report was built without the catalog's check kinds.
    """

    measures: int
    applicable: int
    monitored: int
    automated: int | None
    evidence: int | None
    none: int
    unmonitored: tuple[str, ...]  # applicable measures not monitored: blind spots

    @property
    def not_applicable(self) -> int:
        return self.measures - self.applicable


class ExceptionRef(NamedTuple):
    """The exception that accepts (part of) a risk."""

    id: int
    until: date
    target_pattern: str
    approved_by: str


class FailingTarget(NamedTuple):
    target: str
    since: datetime
    message: str
    exception: ExceptionRef | None


class Risk(NamedTuple):
    """A failing (or accepted) control: how bad, how long, who owns it, what accepts it, where it comes from."""

    control: str
    title: str
    theme: str
    severity: str
    owner: str | None
    since: datetime
    age_days: int
    risk: int
    accepted: bool
    exception: ExceptionRef | None
    targets_failing: int
    targets: tuple[FailingTarget, ...]
    references: Mapping[str, tuple[str, ...]]


class ExpiringException(NamedTuple):
    id: int
    control: str
    title: str
    target_pattern: str
    until: date
    days_left: int
    approved_by: str
    reason: str
    findings_covered: int


class ControlChange(NamedTuple):
    """A control that started failing, or stopped failing, during the period; `at` is when."""

    control: str
    title: str
    theme: str
    severity: str
    at: datetime | None


class Changes(NamedTuple):
    """What changed since the end of the previous period."""

    newly_failing: tuple[ControlChange, ...]
    newly_resolved: tuple[ControlChange, ...]
    findings_opened: int
    findings_resolved: int
    mean_days_to_resolve: float | None


class CouldNotRun(NamedTuple):
    """A control whose last evaluation had checks that could not run (status error)."""

    control: str
    title: str
    severity: str
    owner: str | None
    at: datetime
    targets: tuple[tuple[str, str], ...]  # (target, message)


class NotEvaluated(NamedTuple):
    """A control not evaluated for longer than its schedule allows, or never evaluated."""

    control: str
    title: str
    severity: str
    owner: str | None
    schedule: str | None
    last_evaluated: datetime | None
    due: datetime | None


class Overview(NamedTuple):
    """Everything the risk overview shows, for one period as of one day."""

    generated_at: datetime
    as_of: date
    timezone: str
    period: Period
    previous_period: Period
    compliance: Score
    previous: Score
    themes: tuple[ThemeFigures, ...]
    trend: tuple[TrendPoint, ...]
    risks: tuple[Risk, ...]
    expiring_exceptions: tuple[ExpiringException, ...]
    changes: Changes
    could_not_run: tuple[CouldNotRun, ...]
    not_evaluated: tuple[NotEvaluated, ...]
    incidents: IncidentFigures
    coverage: Coverage = Coverage(0, 0, 0, None, None, 0, ())
    weights: Mapping[str, int] = MappingProxyType(dict(SEVERITY_WEIGHTS))  # read-only: shared by default
    top: int = TOP_RISKS

    @property
    def change(self) -> float | None:
        """Change of the compliance score since the end of the previous period, in percentage points."""
        return _change(self.compliance.percent, self.previous.percent)

    @property
    def top_risks(self) -> tuple[Risk, ...]:
        return self.risks[: self.top]

    def to_json(self) -> dict[str, Any]:
        """The JSON contract documented in docs/report.md (dates ISO 8601, times UTC with offset)."""
        from compliance.report.jsonform import overview_json

        return overview_json(self)


# -- computing ------------------------------------------------------------------------------------


class ControlState(NamedTuple):
    """A control at a moment: its status and the findings that were open then."""

    control: ControlFacts
    status: str
    evaluation: Evaluation | None
    findings: tuple[OpenFinding, ...] = ()
    covers: tuple[ExceptionView | None, ...] = ()  # per finding, the exception in force covering it


class _Moment(NamedTuple):
    """A point the report looks at: the end of a period's last day (or now, if that is earlier)."""

    period: Period
    at: datetime


def _change(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else round(now - before, 1)


#: The order of a control's open findings: the oldest first.
_SINCE_TARGET = attrgetter("since", "target")


def control_states(
    controls: Mapping[str, ControlFacts], evaluations: Mapping[str, Evaluation],
    findings: Iterable[OpenFinding], exceptions: Sequence[ExceptionView],
) -> dict[str, ControlState]:
    """Each counted control's status, from its evaluation, its open findings and the exceptions in force."""
    by_control: dict[str, list[OpenFinding]] = defaultdict(list)
    for f in findings:
        if f.control_id in controls:
            by_control[f.control_id].append(f)
    own: dict[str, list[ExceptionView]] = defaultdict(list)  # an exception covers its own control only
    for e in exceptions:
        own[e.control_id].append(e)
    states = {}
    for cid, control in controls.items():
        evaluation = evaluations.get(cid)
        open_ = sorted(by_control.get(cid, ()), key=_SINCE_TARGET)
        mine = own.get(cid)  # most controls have no exception: their findings need no pattern matching
        covers = tuple(covering_exception(mine, cid, f.target) for f in open_) if mine else (None,) * len(open_)
        if open_:
            status = "failing" if None in covers else "accepted"
        elif evaluation is None:
            status = "not_evaluated"
        elif evaluation.status in ("error", "skipped"):
            status = "unknown"
        else:
            status = "passing"
        states[cid] = ControlState(control, status, evaluation, tuple(open_), covers)
    return states


def score_of(states: Iterable[ControlState], weights: Mapping[str, int] = SEVERITY_WEIGHTS) -> Score:
    counts: Counter[str] = Counter()
    weight_passing = weight_counted = 0
    for s in states:
        counts[s.status] += 1
        if s.status in ("passing", "failing", "accepted"):
            weight = weights.get(s.control.severity, 1)
            weight_counted += weight
            weight_passing += weight if s.status == "passing" else 0
    percent = round(100 * weight_passing / weight_counted, 1) if weight_counted else None
    return Score(percent, counts["passing"], counts["failing"], counts["accepted"], counts["unknown"],
                 counts["not_evaluated"])


def traffic_light(score: Score, failing_severities: Iterable[str], applicable: int = 0, monitored: int = 0) -> str:
    """green, amber or red for a theme (see the module docstring); none when nothing counts.

    `applicable` and `monitored` count the theme's BIO2 measures: with most applicable measures not
    monitored the theme is at most amber.
    """
    if score.percent is None:
        return "none"
    severities = set(failing_severities)
    if score.percent < AMBER_FROM or "critical" in severities:
        return "red"
    if score.percent < GREEN_FROM or "high" in severities or 2 * (applicable - monitored) > applicable:
        return "amber"
    return "green"


#: The control states in which a control monitors the measures it names: evaluated, its checks ran.
MONITORING = ("passing", "failing", "accepted")


class MeasureState(NamedTuple):
    """One live BIO2 measure in the report: its theme, whether it applies, is monitored, how covered."""

    number: str
    theme: str
    applies: bool
    monitored: bool
    kind: str | None  # automated | evidence | none; None when the check kinds are not known


def measure_states(states: Mapping[str, ControlState], decided: Mapping[str, Decision],
                   kinds: Mapping[str, str] | None) -> list[MeasureState]:
    """Every live BIO2 measure, as seen through the counted controls' states at a moment."""
    from compliance.frameworks import load, measures_of
    from compliance.soa import measure_decision

    spec = load("bio2")
    themes = {r.number: r.group for r in spec.requirements}
    naming: dict[str, list[ControlState]] = defaultdict(list)
    for state in states.values():
        for number in measures_of(dict(state.control.references)):
            naming[number].append(state)
    found = []
    for measure in spec.measures:
        decision = measure_decision(measure.number, decided)
        covering = naming.get(measure.number, [])
        if not covering:
            kind: str | None = "none"
        elif kinds is None:
            kind = None
        else:  # a control stored but no longer in the catalog was synced with checks: count it automated
            covering_kinds = {kinds.get(s.control.id, "automated") for s in covering}
            # `unconfigured` controls (no check runs: their target groups are empty) cover nothing
            kind = ("automated" if "automated" in covering_kinds
                    else "evidence" if "evidence" in covering_kinds else "none")
        found.append(MeasureState(measure.number, themes.get(measure.control, ""),
                                  decision is None or decision.applies,
                                  any(s.status in MONITORING for s in covering), kind))
    return found


def coverage_of(measures: Sequence[MeasureState], kinds_known: bool = True) -> Coverage:
    applicable = [m for m in measures if m.applies]
    monitored = [m for m in applicable if m.monitored]
    return Coverage(
        len(measures), len(applicable), len(monitored),
        sum(m.kind == "automated" for m in applicable) if kinds_known else None,
        sum(m.kind == "evidence" for m in applicable) if kinds_known else None,
        sum(m.kind == "none" for m in applicable),
        tuple(m.number for m in applicable if not m.monitored))


def _states_at(reader: Reader, controls: Mapping[str, ControlFacts], moment: _Moment,
               exceptions: Sequence[ExceptionView], since: datetime | Unread | None,
               findings: Sequence[OpenFinding], *, every_evaluation: bool = True) -> dict[str, ControlState]:
    """The control states at a moment, given the findings open then. Without `every_evaluation` the
    evaluation of a control with an open finding is not read (its state's `evaluation` is None): its
    status, failing or accepted, does not depend on it, and reading it costs index seeks in the result
    history (for each trend moment)."""
    in_force = [e for e in exceptions if exception_in_force(e, moment.at, moment.period.end)]
    if every_evaluation:
        wanted = controls
    else:
        with_findings = {f.control_id for f in findings}
        wanted = {cid: c for cid, c in controls.items() if cid not in with_findings}
    return control_states(controls, evaluations_at(reader, wanted, moment.at, since), findings, in_force)


def _ref(exception: ExceptionView | None) -> ExceptionRef | None:
    if exception is None:
        return None
    return ExceptionRef(exception.id, exception.until, exception.target_pattern, exception.approved_by)


def _risks(reader: Reader, states: Mapping[str, ControlState], moment: _Moment, zone: tzinfo,
           weights: Mapping[str, int], since: datetime | Unread | None) -> list[Risk]:
    failing = [s for s in states.values() if s.status in ("failing", "accepted")]
    shown = {s.control.id: s.findings[:TARGETS_SHOWN] for s in failing}
    messages = failure_messages(reader, (f for fs in shown.values() for f in fs), moment.at, since)
    risks = []
    for s in failing:
        since = s.findings[0].since
        age = max(0, (moment.period.end - since.astimezone(zone).date()).days)
        weight = weights.get(s.control.severity, 1)
        covering = [c for c in s.covers if c is not None]
        # the acceptance that ends first is the one management must look at first
        exception = min(covering, key=lambda e: (e.until, e.id)) if covering else None
        targets = tuple(FailingTarget(f.target, f.since, messages[f.id], _ref(c))
                        for f, c in zip(s.findings[:TARGETS_SHOWN], s.covers, strict=False))
        risks.append(Risk(s.control.id, s.control.title, s.control.theme, s.control.severity, s.control.owner, since,
                          age, weight * (age + 1), s.status == "accepted", _ref(exception), len(s.findings), targets,
                          s.control.references))
    risks.sort(key=lambda r: (-r.risk, -weights.get(r.severity, 1), r.since, r.control))
    return risks


def iso_themes() -> dict[str, str]:
    """The themes of ISO/IEC 27002:2022 with their clauses ({"organizational": "5", ...}), in clause order:
    the groups of BIO2's controls and the clause each one's numbers start with (the catalog's `THEMES`,
    read from the framework's data so that the report need not import the catalog's models)."""
    from compliance.frameworks import load

    found: dict[str, str] = {}
    for requirement in load("bio2").requirements:
        found.setdefault(requirement.group, requirement.number.partition(".")[0])
    return dict(sorted(found.items(), key=lambda item: int(item[1])))


def _themes(now: Mapping[str, ControlState], before: Mapping[str, ControlState],
            weights: Mapping[str, int], measures: Sequence[MeasureState] = ()) -> tuple[ThemeFigures, ...]:
    themes = []
    for theme, clause in iso_themes().items():
        current = [s for s in now.values() if s.control.theme == theme]
        score = score_of(current, weights)
        previous = score_of((s for s in before.values() if s.control.theme == theme), weights)
        own = coverage_of([m for m in measures if m.theme == theme])
        light = traffic_light(score, (s.control.severity for s in current if s.status == "failing"),
                              own.applicable, own.monitored)
        themes.append(ThemeFigures(theme, clause, score, previous.percent, light, own.measures, own.applicable,
                                   own.monitored))
    return tuple(themes)


def _changes(reader: Reader, now: Mapping[str, ControlState], before: Mapping[str, ControlState],
             start: datetime, end: datetime) -> Changes:
    resolved = resolutions(reader, start, end)
    resolved_at: dict[int, datetime] = {}
    for r in resolved:
        resolved_at[r.finding_id] = r.resolved_at
    bad = ("failing", "accepted")
    newly_failing, newly_resolved = [], []
    for cid, state in now.items():
        earlier = before.get(cid)
        was_bad = earlier is not None and earlier.status in bad
        c = state.control
        if state.status in bad and not was_bad:
            newly_failing.append(ControlChange(cid, c.title, c.theme, c.severity, state.findings[0].since))
        elif state.status == "passing" and was_bad and earlier is not None:
            times = [resolved_at[f.id] for f in earlier.findings if f.id in resolved_at]
            newly_resolved.append(ControlChange(cid, c.title, c.theme, c.severity, max(times) if times else None))
    counts = change_counts(reader, start, end)
    seconds = [(r.resolved_at - r.opened_at).total_seconds() for r in resolved]
    mean_days = round(sum(seconds) / len(seconds) / 86400, 1) if seconds else None
    order = {s: i for i, s in enumerate(("critical", "high", "medium", "low"))}
    newly_failing.sort(key=lambda c: (order.get(c.severity, 9), c.control))
    newly_resolved.sort(key=lambda c: (order.get(c.severity, 9), c.control))
    return Changes(tuple(newly_failing), tuple(newly_resolved), counts["open"], counts["resolved"], mean_days)


def _could_not_run(errors: Iterable[ErrorResult], controls: Mapping[str, ControlFacts]) -> tuple[CouldNotRun, ...]:
    grouped: dict[str, list[ErrorResult]] = defaultdict(list)
    for e in errors:
        grouped[e.control_id].append(e)
    return tuple(
        CouldNotRun(cid, controls[cid].title, controls[cid].severity, controls[cid].owner, max(e.at for e in errs),
                    tuple((e.target, e.message) for e in errs))
        for cid, errs in sorted(grouped.items())
    )


def next_run(schedule: str | None, after: datetime, zone: tzinfo, default_schedule: str | None = None) -> datetime:
    """When a control last evaluated at `after` should have been evaluated again.

    Its cron schedule (in zone), else the default schedule, else `UNSCHEDULED_MAX_AGE` later.
    """
    expression = schedule or default_schedule
    if not expression:
        return after + UNSCHEDULED_MAX_AGE
    fire = _cron_trigger(expression, zone).get_next_fire_time(None, after + timedelta(seconds=1))
    return (fire or datetime.max.replace(tzinfo=UTC)).astimezone(UTC)


@cache
def _cron_trigger(expression: str, zone: tzinfo) -> Any:
    """The APScheduler trigger of a cron expression in zone, parsed once: most controls share one schedule."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(expression, timezone=zone)
    except ValueError as exc:
        raise ComplianceError(f"schedule '{expression}' is not a valid cron expression: {exc}") from None


def _not_evaluated(states: Mapping[str, ControlState], at: datetime, zone: tzinfo,
                   default_schedule: str | None) -> tuple[NotEvaluated, ...]:
    overdue = []
    for cid, s in states.items():
        c = s.control
        if s.evaluation is None:
            overdue.append(NotEvaluated(cid, c.title, c.severity, c.owner, c.schedule, None, None))
            continue
        due = next_run(c.schedule, s.evaluation.at, zone, default_schedule)
        if at > due + SCHEDULE_GRACE:
            overdue.append(NotEvaluated(cid, c.title, c.severity, c.owner, c.schedule, s.evaluation.at, due))
    # never evaluated first, then the longest overdue
    overdue.sort(key=lambda n: (n.last_evaluated is not None, n.due or n.last_evaluated or at, n.control))
    return tuple(overdue)


def _expiring(exceptions: Sequence[ExceptionView], states: Mapping[str, ControlState], moment: _Moment,
              controls: Mapping[str, ControlFacts]) -> tuple[ExpiringException, ...]:
    as_of = moment.period.end
    last_day = as_of + timedelta(days=EXPIRY_DAYS)
    items = []
    for e in exceptions:
        if not exception_in_force(e, moment.at, as_of) or e.until > last_day:
            continue
        state = states.get(e.control_id)
        covered = 0 if state is None else sum(1 for c in state.covers if c is not None and c.id == e.id)
        title = controls[e.control_id].title if e.control_id in controls else ""
        items.append(ExpiringException(e.id, e.control_id, title, e.target_pattern, e.until, (e.until - as_of).days,
                                       e.approved_by, e.reason, covered))
    items.sort(key=lambda x: (x.until, x.id))
    return tuple(items)


def build_overview(
    database: Database,
    period: str = "week",
    as_of: date | None = None,
    zone: tzinfo = UTC,
    *,
    now: datetime | None = None,
    default_schedule: str | None = None,
    kinds: Mapping[str, str] | None = None,
) -> Overview:
    """The risk overview for the calendar `period` (week, month, quarter, year) containing `as_of`.

    `as_of` defaults to today in `zone` and may not lie in the future; days end at midnight in
    `zone`. `default_schedule` is the cron expression for controls without a schedule of their own
    (without it, such a control is overdue after `UNSCHEDULED_MAX_AGE`). `kinds` gives per control id
    `automated`, `evidence` or `unconfigured` (`compliance.soa.control_kind` over the catalog and the
    configured target groups); without it the coverage does not split measures into automated and evidence.
    """
    from compliance.history import raw_from
    from compliance.soa import history
    from compliance.store import Store

    now = (now or datetime.now(UTC)).astimezone(UTC)
    today = now.astimezone(zone).date()
    as_of = as_of or today
    if as_of > today:
        raise ComplianceError(f"--as-of {as_of.isoformat()} lies in the future; give today ({today.isoformat()}) "
                              "or an earlier day")
    current = report_period(period, as_of)
    moments = [_Moment(p, min(end_of_day(p.end, zone), now)) for p in periods_back(current, TREND_PERIODS)]
    here, before = moments[-1], moments[-2]
    exceptions = Store(database, zone).exceptions()
    weights = dict(SEVERITY_WEIGHTS)
    decisions = history(database)
    counted = counted_controls_at(database, [m.at for m in moments], decisions)
    controls = counted[-1]
    # Core reads through one connection, as through a session before: no ORM objects, no import of the ORM
    with database.engine.connect() as connection:
        since = raw_from(connection)  # raw results count from here; before it the daily rollups (compliance.history)
        opened = open_findings_over(connection, [m.at for m in moments])
        # the evaluations themselves (not only the statuses) are shown for the report's own moment only
        trend_states = [_states_at(connection, c, m, exceptions, since, found, every_evaluation=m is here)
                        for c, m, found in zip(counted, moments, opened, strict=True)]
        states, previous_states = trend_states[-1], trend_states[-2]
        risks = _risks(connection, states, here, zone, weights, since)
        changes = _changes(connection, states, previous_states, start_of_day(current.start, zone), here.at)
        errors = errors_at(connection, [cid for cid, s in states.items() if s.evaluation is not None], here.at,
                           since)
    incidents = incident_figures(database, start_of_day(current.start, zone), here.at)
    measures = measure_states(states, decisions_in_force(decisions, here.at), kinds)
    return Overview(
        generated_at=now,
        as_of=as_of,
        timezone=getattr(zone, "key", str(zone)),
        period=current,
        previous_period=before.period,
        compliance=score_of(states.values(), weights),
        previous=score_of(previous_states.values(), weights),
        themes=_themes(states, previous_states, weights, measures),
        trend=tuple(TrendPoint(m.period, score_of(s.values(), weights)) for m, s in zip(moments, trend_states,
                                                                                         strict=True)),
        risks=tuple(risks),
        expiring_exceptions=_expiring(exceptions, states, here, controls),
        changes=changes,
        could_not_run=_could_not_run(errors, controls),
        not_evaluated=_not_evaluated(states, here.at, zone, default_schedule),
        incidents=incidents,
        coverage=coverage_of(measures, kinds is not None),
        weights=weights,
    )
