"""The report's reads from the database: each function answers one question "as of a moment".

Everything is computed from the current rows (controls, findings, exceptions) and from the state
changes of findings, never by reading the whole result history: a finding's state at a moment is the
`to_state` of its last change before that moment, and a control's last evaluation before a moment is
a few seeks on the covering index `check_results (control_id, started_at, status, scan_id)`, which
never reads the result rows themselves. So the cost of a report grows with the number of controls and
findings, not with the number of stored results.

Moments are aware UTC datetimes; "at a moment" means "just before it" (upper bounds are exclusive).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from compliance.report.language import check_message, control_text
from compliance.status import MESSAGE_KEY, Status
from compliance.store import combine

if TYPE_CHECKING:
    from compliance.db import Database
    from compliance.history import Reader, RolledResult
    from compliance.soa import Decision
    from compliance.store import ExceptionView


# The records below are named tuples, not frozen dataclasses: the report defines them on every start and
# creates them per row and per moment, and a named tuple costs a fraction of a dataclass in both.


class ControlFacts(NamedTuple):
    """What the report needs to know about a control, as stored now (title and owner with their translations)."""

    id: str
    title: str
    theme: str
    severity: str
    owner: str | None
    schedule: str | None
    references: Mapping[str, tuple[str, ...]]
    last_status: str | None
    last_evaluated_at: datetime | None


class Evaluation(NamedTuple):
    """A control's last evaluation before a moment: when, and its control-level status."""

    at: datetime
    status: str  # pass | fail | error | skipped


class OpenFinding(NamedTuple):
    """A finding that was open at a moment, and since when (its last change to open)."""

    id: int
    control_id: str
    target: str
    since: datetime
    message: str | None  # the newest failure's message, when known without a look-up


class ErrorResult(NamedTuple):
    """A check result with status error in a control's last evaluation: a check that could not run."""

    control_id: str
    target: str
    message: str
    at: datetime


class Resolution(NamedTuple):
    """A finding resolved at `resolved_at` that had been open since `opened_at`."""

    finding_id: int
    opened_at: datetime
    resolved_at: datetime


def _references(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        return {}
    return {str(k): tuple(str(x) for x in v) if isinstance(v, list) else (str(v),) for k, v in value.items()}


def counted_controls(database: Database, moment: datetime) -> dict[str, ControlFacts]:
    """The controls that count in the report at a moment, by id: the one place that decides.

    Every control in the catalog (`active`) except those not applicable by the decisions made before
    the moment (`compliance controls applicability`; a control drops out when it is marked not
    applicable itself or when every ISO control it refers to is, see `compliance.soa`). Which of
    these enter the score at the moment further depends on their evaluation (see `ControlState`).
    """
    return counted_controls_at(database, [moment])[0]


def counted_controls_at(database: Database, moments: Sequence[datetime],
                        decisions: Sequence[Decision] | None = None) -> list[dict[str, ControlFacts]]:
    """`counted_controls` at each of several moments, from one read of the controls and one of the
    applicability decisions (`decisions`: `compliance.soa.history`, read here when not given)."""
    from sqlalchemy import select

    from compliance.db.schema import controls
    from compliance.soa import history, not_applicable_reason

    made = history(database) if decisions is None else decisions
    c = controls.c
    with database.engine.connect() as connection:
        rows = connection.execute(select(
            c.id, c.title, c.theme, c.severity, c.owner, c.schedule, c.references, c.last_status, c.last_evaluated_at,
            c.translations,
        ).where(c.active.is_(True)).order_by(c.id)).all()
    facts = [(r, ControlFacts(r.id, control_text(r.title, r.translations, "title"), r.theme, r.severity,
                              None if r.owner is None else control_text(r.owner, r.translations, "owner"),
                              r.schedule, _references(r.references), r.last_status, r.last_evaluated_at))
             for r in rows]
    found = []
    for moment in moments:
        decided = decisions_in_force(made, moment)
        found.append({f.id: f for r, f in facts
                      if not (decided and not_applicable_reason(r.id, r.references or {}, decided))})
    return found


def decisions_at(database: Database, moment: datetime) -> dict[str, Decision]:
    """The applicability decisions in force at a moment: the newest per subject made before it."""
    from compliance.soa import history

    return decisions_in_force(history(database), moment)


def decisions_in_force(decisions: Iterable[Decision], moment: datetime) -> dict[str, Decision]:
    """Of the decisions (oldest first, as `compliance.soa.history` gives them), those in force at moment."""
    return {d.subject: d for d in decisions if d.decided_at < moment}


class LastEvaluation(NamedTuple):
    """What a control's last evaluation before a moment found: when, and which statuses occurred.

    Its results are those from the start of the scan of its newest result up to that result.
    """

    at: datetime
    scan_started_at: datetime
    failed: bool
    errored: bool
    passed: bool
    #: the part of the evaluation read from the daily rollups of pruned days (see compliance.history)
    rolled: tuple[RolledResult, ...] = ()

    @property
    def status(self) -> str:
        """The control-level status by the store's rule for `combine: all` (fail, error, pass, skipped)."""
        seen = [Status.FAIL] * self.failed + [Status.ERROR] * self.errored + [Status.PASS] * self.passed
        return combine(seen or [Status.SKIPPED], "all").value


#: Statements built once per process and run with bound parameters: building SQLAlchemy expressions
#: costs more than running them, and the report runs the same ones for each of its moments.
_STATEMENTS: dict[tuple[str, bool], Any] = {}


class Unread:
    """The type of `UNREAD`: `raw_from` not read yet."""


#: Passed as `since` where the caller has not read `compliance.history.raw_from` (the default).
UNREAD = Unread()


def _raw_from(reader: Reader, since: datetime | Unread | None) -> datetime | None:
    if isinstance(since, Unread):
        from compliance.history import raw_from

        return raw_from(reader)
    return since


def _last_evaluations_statement(pruned: bool) -> Any:
    """The statement of `last_evaluations`, with parameters moment, ids (expanding) and since (when pruned).

    Per control one seek for its newest result before the moment (its time and scan), then per status a
    range scan over the results from that scan's start up to it, stopping at the first match. Every part
    reads only the covering index `ix_check_results_control_at_status` (control_id, started_at, status,
    scan_id), never the result rows with their messages and evidence: on a cold file cache those would be
    read from disk page by page.
    """
    key = ("last_evaluations", pruned)
    if key in _STATEMENTS:
        return _STATEMENTS[key]
    from sqlalchemy import bindparam, select

    from compliance.db.schema import check_results, controls, scans

    newest = check_results.alias().c

    def newest_before(column: Any) -> Any:
        stmt = select(column).where(newest.control_id == controls.c.id, newest.started_at < bindparam("moment"))
        if pruned:
            stmt = stmt.where(newest.started_at >= bindparam("since"))
        return stmt.order_by(newest.started_at.desc()).limit(1).correlate(controls).scalar_subquery()

    last = (select(controls.c.id.label("control_id"), newest_before(newest.started_at).label("at"),
                   newest_before(newest.scan_id).label("scan_id"))
            .where(controls.c.id.in_(bindparam("ids", expanding=True))).subquery())
    scan_start = select(scans.c.started_at).where(scans.c.id == last.c.scan_id).correlate(last).scalar_subquery()

    def occurred(status: Status) -> Any:
        # EXISTS over the id (in every index), not `*`: SQLite then reads the covering index only
        result = check_results.alias().c
        seen = select(result.id).where(result.control_id == last.c.control_id, result.started_at >= scan_start,
                                       result.started_at <= last.c.at, result.status == status.value)
        return (seen.where(result.started_at >= bindparam("since")) if pruned else seen).correlate(last).exists()

    stmt = select(last.c.control_id, last.c.at, scan_start.label("scan_started_at"), occurred(Status.FAIL),
                  occurred(Status.ERROR), occurred(Status.PASS)).where(last.c.at.is_not(None))
    _STATEMENTS[key] = stmt
    return stmt


def last_evaluations(reader: Reader, control_ids: Collection[str], moment: datetime,
                     since: datetime | Unread | None = UNREAD) -> dict[str, LastEvaluation]:
    """Each control's last evaluation before moment (controls without a result by then are absent).

    Every part is a correlated look-up on the (control_id, started_at) index, evaluated per control,
    so the cost is a few seeks per control whatever the number of stored results. `reader` is a Core
    connection or an ORM session; `since` is `compliance.history.raw_from(reader)` when the caller has
    read it already.
    """
    if not control_ids:
        return {}
    # raw results count from the end of the newest pruned day; the rollups hold the days before it
    since = _raw_from(reader, since)
    stmt = _last_evaluations_statement(since is not None)
    params: dict[str, Any] = {"moment": moment, "ids": sorted(control_ids)}
    if since is not None:
        params["since"] = since
    found = {cid: LastEvaluation(at, started, bool(failed), bool(errored), bool(passed))
             for cid, at, started, failed, errored, passed in reader.execute(stmt, params).all()}
    if since is not None:
        found = _with_rollups(reader, control_ids, moment, since, found)
    return found


def _with_rollups(reader: Reader, control_ids: Collection[str], moment: datetime, since: datetime,
                  raw: dict[str, LastEvaluation]) -> dict[str, LastEvaluation]:
    """The last evaluations with the pruned days read from the daily rollups: controls without a raw
    result before moment from their rolled-up last scan, and a scan that ran over the end of the newest
    pruned day with its rolled-up part."""
    from compliance.history import last_scans, scan_tail

    def statuses(rolled: Iterable[RolledResult]) -> set[str]:
        return {r.status for r in rolled}

    found = dict(raw)
    for cid, last in raw.items():
        if last.scan_started_at < since and (tail := tuple(scan_tail(reader, cid, last.scan_started_at, since))):
            seen = statuses(tail)
            found[cid] = last._replace(failed=last.failed or "fail" in seen,
                                       errored=last.errored or "error" in seen,
                                       passed=last.passed or "pass" in seen, rolled=tail)
    missing = [cid for cid in control_ids if cid not in raw]
    for cid, scan in last_scans(reader, missing, min(moment, since)).items():
        seen = statuses(scan.results)
        found[cid] = LastEvaluation(scan.results[-1].at, scan.started_at, "fail" in seen, "error" in seen,
                                    "pass" in seen, scan.results)
    return found


def evaluations_at(reader: Reader, controls: Mapping[str, ControlFacts], moment: datetime,
                   since: datetime | Unread | None = UNREAD) -> dict[str, Evaluation]:
    """Each control's last evaluation before moment; controls never evaluated by then are absent.

    A control last evaluated before the moment is read from its row (exact, as the store decided).
    For an earlier moment the status is combined from the results of its last scan before then with
    the store's `combine(..., "all")` rule; for a control with `combine: any` that is an approximation.
    """
    found: dict[str, Evaluation] = {}
    earlier: list[str] = []
    for c in controls.values():
        if c.last_evaluated_at is not None and c.last_status is not None and c.last_evaluated_at < moment:
            found[c.id] = Evaluation(c.last_evaluated_at, c.last_status)
        else:
            earlier.append(c.id)
    for control_id, last in last_evaluations(reader, earlier, moment, since).items():
        found[control_id] = Evaluation(last.at, last.status)
    return found


def _errors_statement(pruned: bool) -> Any:
    """The statement of `errors_at`, with the parameters of `last_evaluations`: the results with status
    error in each control's last evaluation (the range of `last_evaluations` per control: a range seek on
    the (control_id, started_at) index), with their message template only, not the whole evidence."""
    key = ("errors", pruned)
    if key in _STATEMENTS:
        return _STATEMENTS[key]
    from sqlalchemy import and_, bindparam, select

    from compliance.db.schema import check_results

    last, r = _last_evaluations_statement(pruned).subquery(), check_results.c
    stmt = (select(r.control_id, r.target, r.message, r.evidence[MESSAGE_KEY], r.started_at)
            .join_from(check_results, last, and_(r.control_id == last.c.control_id,
                                                 r.started_at >= last.c.scan_started_at, r.started_at <= last.c.at))
            .where(r.status == Status.ERROR.value))
    if pruned:  # before it the rollups of the pruned days hold the results (`LastEvaluation.rolled`)
        stmt = stmt.where(r.started_at >= bindparam("since"))
    _STATEMENTS[key] = stmt
    return stmt


def errors_at(reader: Reader, control_ids: Collection[str], moment: datetime,
              since: datetime | Unread | None = UNREAD) -> list[ErrorResult]:
    """The results with status error in each control's last evaluation before moment.

    One statement for all the controls whose last evaluation had errors: per control a range seek on
    the (control_id, started_at) index.
    """
    since = _raw_from(reader, since)
    errored = {cid: last for cid, last in last_evaluations(reader, control_ids, moment, since).items()
               if last.errored}
    found: dict[str, list[tuple[str, datetime, str]]] = {cid: [] for cid in errored}
    if errored:
        params: dict[str, Any] = {"moment": moment, "ids": sorted(errored)}
        if since is not None:
            params["since"] = since
        for cid, target, message, template, at in reader.execute(_errors_statement(since is not None), params).all():
            found[cid].append((target, at, check_message(message, {MESSAGE_KEY: template})))
    errors: list[ErrorResult] = []
    for control_id, last in sorted(errored.items()):
        results = found[control_id] + [(r.target, r.at, check_message(r.message, r.evidence)) for r in last.rolled
                                       if r.status == Status.ERROR.value]
        errors.extend(ErrorResult(control_id, target, message, at) for target, at, message in
                      sorted(results, key=lambda e: (e[0], e[1])))
    return errors


def _open_findings_statements() -> tuple[Any, Any]:
    """The statements of `open_findings_over`, with the parameters first and last (the earliest and the
    latest moment): the candidate findings with their last change before first, and their changes from
    first up to last."""
    key = ("open_findings", False)
    if key in _STATEMENTS:
        built: tuple[Any, Any] = _STATEMENTS[key]
        return built
    from sqlalchemy import and_, bindparam, or_, select

    from compliance.db import schema

    finding_changes = schema.finding_changes
    f, fc = schema.findings.c, finding_changes.c
    # a finding not seen before the last moment, or resolved before the first and not reopened since,
    # was not open at any of the moments
    candidate = and_(f.first_seen < bindparam("last"), or_(f.state == "open", f.resolved_at >= bindparam("first")))
    change, then = finding_changes.alias(), finding_changes.alias()
    # per finding one seek on finding_changes (finding_id, at) for its last change before the first moment
    base = (select(change.c.id).where(change.c.finding_id == f.id, change.c.at < bindparam("first"))
            .order_by(change.c.at.desc(), change.c.id.desc()).limit(1).correlate(schema.findings).scalar_subquery())
    candidates = (select(f.id, f.control_id, f.target, f.message, f.state, f.last_seen, f.first_seen, f.resolved_at,
                         base.label("base_id"))
                  .where(candidate).subquery())
    findings = (select(candidates.c.id, candidates.c.control_id, candidates.c.target, candidates.c.message,
                       candidates.c.state, candidates.c.last_seen, candidates.c.first_seen, candidates.c.resolved_at,
                       then.c.at, then.c.to_state)
                .join_from(candidates, then, then.c.id == candidates.c.base_id, isouter=True)
                .order_by(candidates.c.control_id, candidates.c.target))
    changes = (select(fc.finding_id, fc.at, fc.to_state)
               .where(fc.at >= bindparam("first"), fc.at < bindparam("last"),
                      fc.finding_id.in_(select(f.id).where(candidate)))
               .order_by(fc.finding_id, fc.at, fc.id))
    _STATEMENTS[key] = (findings, changes)
    return findings, changes


def open_findings_at(reader: Reader, moment: datetime) -> list[OpenFinding]:
    """The findings open at moment (accepted or not), each with the time of its last change to open."""
    return open_findings_over(reader, [moment])[0]


def open_findings_over(reader: Reader, moments: Sequence[datetime]) -> list[list[OpenFinding]]:
    """`open_findings_at` each of several moments, from two statements: the findings that may have been
    open at one of them with their last change before the earliest (one seek per finding on
    finding_changes (finding_id, at)), and their changes between the earliest and the latest moment.

    A finding is open at a moment when its last change before the moment is to open; the stored message
    is the newest failure's while the finding is open (else None here: it is looked up).
    """
    from bisect import bisect_left, bisect_right

    if not moments:
        return []
    findings_stmt, changes_stmt = _open_findings_statements()
    params = {"first": min(moments), "last": max(moments)}
    rows = reader.execute(findings_stmt, params).all()
    history: dict[int, tuple[list[datetime], list[str]]] = {}
    for fid, *_, at, to_state in rows:
        history[fid] = ([at], [to_state]) if at is not None else ([], [])
    for fid, at, to_state in reader.execute(changes_stmt, params).all():
        if fid in history:
            history[fid][0].append(at)
            history[fid][1].append(to_state)
    found: list[list[OpenFinding]] = [[] for _ in moments]
    # the moments in time order with their lists: the moments at which a finding may have been open are a
    # range of them, found by bisection, and only those are looked at
    ordered = sorted(range(len(moments)), key=moments.__getitem__)
    in_order, lists = [moments[i] for i in ordered], [found[i] for i in ordered]
    for fid, control_id, target, message, state, last_seen, first_seen, resolved_at, *_ in rows:
        times, states = history[fid]
        still_open = state == "open"
        # after it was first seen and, if resolved now, not after its resolution
        start = bisect_right(in_order, first_seen)
        stop = len(in_order) if still_open else 0 if resolved_at is None else bisect_right(in_order, resolved_at)
        # a finding open at several moments is mostly the same there: one (immutable) object for all of them
        same: OpenFinding | None = None
        for i in range(start, stop):
            moment = in_order[i]
            last = bisect_left(times, moment) - 1  # the last change before the moment
            if last >= 0 and states[last] == "open":
                known = message if still_open and last_seen < moment else None
                if same is None or same.since != times[last] or same.message != known:
                    same = OpenFinding(fid, control_id, target, times[last], known)
                lists[i].append(same)
    return found


def failure_messages(reader: Reader, findings: Iterable[OpenFinding], moment: datetime,
                     since: datetime | Unread | None = UNREAD) -> dict[int, str]:
    """The message of the newest failing result before moment for each finding, with its template.

    One statement whatever the number of findings: one index seek per finding for its newest failing
    result, joined to that result by id for its message and template (kept in its evidence: only the
    template is read, not the whole evidence); the text is the finding row's while it is open. A finding
    of a `combine: any` control (target `*`) has no result of its own target: it gets the finding row's
    message, or an empty one.
    """
    from sqlalchemy import select

    from compliance.db import schema
    from compliance.history import newest_failure

    since = _raw_from(reader, since)
    wanted = list(findings)
    if not wanted:
        return {}
    r, finding = schema.check_results.c, schema.findings.c
    newest_id = (select(r.id)
                 .where(r.control_id == finding.control_id, r.target == finding.target, r.started_at < moment,
                        r.status == Status.FAIL.value))
    if since is not None:  # before it the rollups of the pruned days hold the newest failure of each day
        newest_id = newest_id.where(r.started_at >= since)
    newest_id = newest_id.order_by(r.started_at.desc()).limit(1).correlate(schema.findings)
    newest = (select(finding.id, newest_id.scalar_subquery().label("result_id"))
              .where(finding.id.in_(sorted({f.id for f in wanted}))).subquery())
    result = schema.check_results.alias()
    texts: dict[int, tuple[str, dict[str, Any]] | None] = {
        fid: None if rid is None else (message, {MESSAGE_KEY: template})
        for fid, rid, message, template in reader.execute(
            select(newest.c.id, result.c.id, result.c.message, result.c.evidence[MESSAGE_KEY])
            .outerjoin_from(newest, result, result.c.id == newest.c.result_id)).all()}
    messages = {}
    for f in wanted:
        newest_text = texts.get(f.id)
        if newest_text is None and since is not None:
            newest_text = newest_failure(reader, f.control_id, f.target, min(moment, since))
        if newest_text is not None and f.message in (None, newest_text[0]):
            messages[f.id] = check_message(*newest_text)
        else:
            messages[f.id] = f.message if f.message is not None else ""
    return messages


def change_counts(reader: Reader, start: datetime, end: datetime) -> dict[str, int]:
    """How many findings changed to each state (open, resolved) between start and end."""
    from sqlalchemy import func, select

    from compliance.db.schema import finding_changes

    fc = finding_changes.c
    rows = reader.execute(select(fc.to_state, func.count()).where(fc.at >= start, fc.at < end).group_by(fc.to_state))
    counts = {"open": 0, "resolved": 0}
    counts.update({state: n for state, n in rows})
    return counts


def resolutions(reader: Reader, start: datetime, end: datetime) -> list[Resolution]:
    """The findings resolved between start and end, each with when it had (last) been opened."""
    from sqlalchemy import func, select

    from compliance.db.schema import finding_changes

    fc, opening = finding_changes.c, finding_changes.alias().c
    opened_at = (select(func.max(opening.at))
                 .where(opening.finding_id == fc.finding_id, opening.to_state == "open", opening.at <= fc.at)
                 .correlate(finding_changes).scalar_subquery())
    stmt = (select(fc.finding_id, opened_at, fc.at)
            .where(fc.to_state == "resolved", fc.at >= start, fc.at < end)
            .order_by(fc.at, fc.id))
    return [Resolution(fid, opened, resolved) for fid, opened, resolved in reader.execute(stmt).all()
            if opened is not None]


def exception_in_force(exception: ExceptionView, moment: datetime, day: date) -> bool:
    """Whether an exception was in force at moment (on day in the configured zone): already made,
    not yet revoked, and its last day not passed. For the present this is `ExceptionView.in_force`."""
    return (exception.created_at < moment and (exception.revoked_at is None or exception.revoked_at >= moment)
            and day <= exception.until)


def covering_exception(exceptions: Sequence[ExceptionView], control_id: str, target: str) -> ExceptionView | None:
    """The first (oldest) of the exceptions that covers a finding, as `Store.findings` picks it."""
    return next((e for e in exceptions if e.covers(control_id, target)), None)
