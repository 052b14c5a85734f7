"""History with a retention policy: daily rollups of old check results, then pruning them (issue 18).

A year of hourly scans stores tens of millions of raw results, but the report and the ENSIA export need
only findings, their changes and each day's state. `prune` rolls up every local day (in the configured
time zone) older than `history.raw_days` into `history_days` — per control, check and target: the worst
status, the counts per status, the newest result and the newest failing result with their message and
message template, and the scan of the newest result — and then deletes that day's raw results in
batches. The rollup of a day is written in one transaction, once (a unique key per day, control, check
and target; a day already rolled up is not rolled up again), before any of its raw results is deleted,
so an interrupted prune resumes where it stopped.

Readers take the raw results from `raw_from` on (the end of the newest rolled-up day) and the rollups
before it (`last_scans`, `newest_failure`). At the end of a local day, which is where the report's
trend moments and the ENSIA year fall, the two give the same answers: the last evaluation of a control
is the newest results of its last scan, one per check and target. Within a pruned day only its end
state is known.

Never pruned: the newest result of every control and target (what a control stopped being checked on
still shows its last result), and the newest failing result of every open finding (the report's "last
failing message"). Exceptions and attestations refer to controls and target patterns, not to results,
so the controls they cover keep their newest results by the first rule.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from compliance.status import MESSAGE_KEY

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from compliance.db import Database

    #: What the readers read through: a Core connection (the report's, without the ORM) or an ORM session.
    Reader = Connection | Session

__all__ = ["BATCH", "PruneReport", "RolledResult", "RolledScan", "last_scans", "newest_failure", "prune", "raw_from",
           "scan_tail"]

#: Raw results deleted per transaction: bounded so that a prune never holds long locks.
BATCH = 5_000
#: The worst status first, as the store combines the results of a control (`combine: all`).
WORST_FIRST = ("fail", "error", "pass", "skipped")


@dataclass(frozen=True, slots=True)
class RolledResult:
    """The newest result of a day of one check of a control on one target, as rolled up."""

    control_id: str
    check_index: int
    target: str
    status: str
    at: datetime
    scan_id: int
    message: str
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RolledScan:
    """A control's last scan as rolled up: when the scan started, and its newest results (oldest first)."""

    started_at: datetime
    results: tuple[RolledResult, ...]


@dataclass
class PruneReport:
    """What a prune removed (or, with dry_run, would remove)."""

    dry_run: bool
    cutoff: datetime  # raw results before this moment (the start of a local day, in UTC) are pruned
    raw_days: int | None
    keep: int | None
    days_rolled_up: list[date] = field(default_factory=list)
    rollups_written: int = 0
    results_removed: int = 0
    results_kept: int = 0  # older than the cutoff, kept because an open finding or a last result needs them
    rollup_days_removed: list[date] = field(default_factory=list)
    rollups_removed: int = 0
    bytes_before: int | None = None  # SQLite: the bytes the database file uses (free pages not counted)
    bytes_after: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run, "cutoff": self.cutoff, "raw_days": self.raw_days, "keep": self.keep,
            "days": len(self.days_rolled_up),
            "first_day": min(self.days_rolled_up, default=None), "last_day": max(self.days_rolled_up, default=None),
            "rollups_written": self.rollups_written, "results_removed": self.results_removed,
            "results_kept": self.results_kept, "rollup_days_removed": len(self.rollup_days_removed),
            "rollups_removed": self.rollups_removed, "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
        }


def _day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    return start, end


def raw_from(reader: Reader) -> datetime | None:
    """The moment raw results count from: the end of the newest rolled-up day (None: nothing pruned).

    Before it the rollups hold the history; the raw results kept there (see the module) are not read.
    """
    from sqlalchemy import func, select

    from compliance.db.schema import history_days

    newest: datetime | None = reader.execute(select(func.max(history_days.c.day_end))).scalar()
    return newest


def _template_only(evidence: Any) -> dict[str, Any]:
    """The part of a result's evidence that its message needs: the template it was made from."""
    if isinstance(evidence, dict) and MESSAGE_KEY in evidence:
        return {MESSAGE_KEY: evidence[MESSAGE_KEY]}
    return {}


# -- reading --------------------------------------------------------------------------------------------


def _rolled(row: Any) -> RolledResult:
    """A row of `history_days` as the newest result of its day."""
    return RolledResult(row.control_id, row.check_index, row.target, row.last_status, row.last_at, row.last_scan_id,
                        row.last_message, row.last_evidence or {})


def last_scans(reader: Reader, control_ids: Collection[str], before: datetime,
               after: datetime | None = None) -> dict[str, RolledScan]:
    """Each control's last scan before `before` as rolled up: the newest results of its checks and
    targets from the start of the scan of its newest rolled-up result up to that result, oldest first.

    Controls without a rolled-up result before `before` (or from `after` on) are absent. Two statements
    whatever the number of controls, each a seek per control on (control_id, last_at).
    """
    from sqlalchemy import and_, select

    from compliance.db.schema import controls, history_days, scans

    if not control_ids:
        return {}
    newest = history_days.alias()

    def newest_before(column: Any) -> Any:
        stmt = select(column).where(newest.c.control_id == controls.c.id, newest.c.last_at < before)
        if after is not None:
            stmt = stmt.where(newest.c.last_at >= after)
        return (stmt.order_by(newest.c.last_at.desc(), newest.c.id.desc()).limit(1).correlate(controls)
                .scalar_subquery())

    last = (select(controls.c.id.label("control_id"), newest_before(newest.c.last_at).label("at"),
                   newest_before(newest.c.last_scan_id).label("scan_id"))
            .where(controls.c.id.in_(sorted(control_ids))).subquery())
    scan_start = select(scans.c.started_at).where(scans.c.id == last.c.scan_id).correlate(last).scalar_subquery()
    window = (select(last.c.control_id, last.c.at, scan_start.label("start")).where(last.c.at.is_not(None))
              .subquery())
    row = history_days.alias()
    stmt = (select(row, window.c.start)
            .join(window, and_(row.c.control_id == window.c.control_id, row.c.last_at <= window.c.at,
                               row.c.last_at >= window.c.start))
            .order_by(row.c.control_id, row.c.last_at, row.c.check_index, row.c.target))
    if after is not None:
        stmt = stmt.where(row.c.last_at >= after)
    found: dict[str, tuple[datetime, list[RolledResult]]] = {}
    for r in reader.execute(stmt).all():
        found.setdefault(r.control_id, (r.start, []))[1].append(_rolled(r))
    return {cid: RolledScan(started_at, tuple(rows)) for cid, (started_at, rows) in found.items()}


def scan_tail(reader: Reader, control_id: str, scan_started_at: datetime, before: datetime) -> list[RolledResult]:
    """The rolled-up newest results of a control from a scan's start up to `before`: the part of a scan
    that ran over the end of the newest rolled-up day, on its rolled-up side."""
    from sqlalchemy import select

    from compliance.db.schema import history_days

    h = history_days.c
    rows = reader.execute(select(history_days).where(
        h.control_id == control_id, h.last_at >= scan_started_at, h.last_at < before)
        .order_by(h.last_at, h.check_index, h.target))
    return [_rolled(r) for r in rows]


def newest_failure(reader: Reader, control_id: str, target: str,
                   before: datetime) -> tuple[str, dict[str, Any]] | None:
    """The message and message template of the newest rolled-up failing result before `before`."""
    from sqlalchemy import select

    from compliance.db.schema import history_days

    h = history_days.c
    row = reader.execute(
        select(h.fail_message, h.fail_evidence)
        .where(h.control_id == control_id, h.target == target, h.fail_at < before)
        .order_by(h.fail_at.desc(), h.id.desc()).limit(1)).first()
    if row is None or row.fail_message is None:
        return None
    return row.fail_message, row.fail_evidence or {}


# -- pruning --------------------------------------------------------------------------------------------


def _used_bytes(database: Database) -> int | None:
    """The bytes an SQLite database uses (its pages less the free ones); None on other databases."""
    from sqlalchemy import text

    if database.dialect != "sqlite":
        return None
    with database.engine.connect() as connection:
        pages = connection.execute(text("PRAGMA page_count")).scalar_one()
        free = connection.execute(text("PRAGMA freelist_count")).scalar_one()
        size = connection.execute(text("PRAGMA page_size")).scalar_one()
    return int((pages - free) * size)


def _in_day(start: datetime, end: datetime) -> Any:
    """The raw results of a day: by the scans that ran in it (indexed), then by their own time."""
    from sqlalchemy import and_, or_, select

    from compliance.db.models import CheckResultRow, Scan

    scans = select(Scan.id).where(Scan.started_at < end, or_(Scan.finished_at.is_(None), Scan.finished_at >= start))
    return and_(CheckResultRow.scan_id.in_(scans), CheckResultRow.started_at >= start, CheckResultRow.started_at < end)


def _prunable() -> Any:
    """Raw results that may go: not the newest of their control and target, and not the newest failing
    result of an open finding."""
    from sqlalchemy import and_, exists, not_
    from sqlalchemy.orm import aliased

    from compliance.db.models import CheckResultRow, Finding

    newer = aliased(CheckResultRow)
    newer_failure = aliased(CheckResultRow)
    has_newer = exists().where(newer.control_id == CheckResultRow.control_id, newer.target == CheckResultRow.target,
                               newer.started_at > CheckResultRow.started_at)
    open_finding = exists().where(Finding.control_id == CheckResultRow.control_id,
                                  Finding.target == CheckResultRow.target, Finding.state == "open")
    has_newer_failure = exists().where(
        newer_failure.control_id == CheckResultRow.control_id, newer_failure.target == CheckResultRow.target,
        newer_failure.status == "fail", newer_failure.started_at > CheckResultRow.started_at)
    finding_needs = and_(CheckResultRow.status == "fail", open_finding, not_(has_newer_failure))
    return and_(has_newer, not_(finding_needs))


def _rollup_rows(session: Session, day: date, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The rollup of one day from its raw results: one row per control, check and target."""
    from sqlalchemy import and_, case, func, or_, select

    from compliance.db.models import CheckResultRow as R

    def counted(status: str) -> Any:
        return func.sum(case((R.status == status, 1), else_=0))

    groups = (select(R.control_id, R.check_index, R.target, counted("pass").label("passed"),
                     counted("fail").label("failed"), counted("error").label("errored"),
                     counted("skipped").label("skipped"), func.max(R.started_at).label("last_at"),
                     func.max(case((R.status == "fail", R.started_at))).label("fail_at"))
              .where(_in_day(start, end)).group_by(R.control_id, R.check_index, R.target).subquery())
    stmt = (select(R.id, R.control_id, R.check_index, R.target, R.status, R.started_at, R.scan_id, R.message,
                   R.evidence, groups.c.passed, groups.c.failed, groups.c.errored, groups.c.skipped,
                   groups.c.last_at, groups.c.fail_at)
            .join(groups, and_(R.control_id == groups.c.control_id, R.check_index == groups.c.check_index,
                               R.target == groups.c.target,
                               or_(R.started_at == groups.c.last_at, R.started_at == groups.c.fail_at)))
            .where(_in_day(start, end)).order_by(R.id))
    rows: dict[tuple[str, int, str], dict[str, Any]] = {}
    for r in session.execute(stmt):
        key = (r.control_id, r.check_index, r.target)
        counts = {"pass": r.passed, "fail": r.failed, "error": r.errored, "skipped": r.skipped}
        row = rows.setdefault(key, {
            "day": day, "day_end": end, "control_id": r.control_id, "check_index": r.check_index,
            "target": r.target, "worst_status": next(s for s in WORST_FIRST if counts[s]),
            "passed": r.passed, "failed": r.failed, "errored": r.errored, "skipped": r.skipped,
            "fail_at": None, "fail_message": None, "fail_evidence": None,
        })
        # by id: of results at the same moment the one stored last counts, as in the raw reads
        if r.started_at == r.last_at:
            row.update(last_at=r.started_at, last_scan_id=r.scan_id, last_status=r.status, last_message=r.message,
                       last_evidence=_template_only(r.evidence))
        if r.status == "fail" and r.started_at == r.fail_at:
            row.update(fail_at=r.started_at, fail_message=r.message, fail_evidence=_template_only(r.evidence))
    return list(rows.values())


def _candidate_days(database: Database, cutoff: datetime, zone: tzinfo) -> list[date]:
    """The local days before the cutoff in which a scan ran, oldest first.

    The scans table is small (one row per scan) and indexed by start, so the days are found there.
    """
    from sqlalchemy import select

    from compliance.db.models import Scan

    stmt = select(Scan.started_at, Scan.finished_at).where(Scan.started_at < cutoff)
    cutoff_day = cutoff.astimezone(zone).date()
    days: set[date] = set()
    with database.sessions() as session:
        for started, finished in session.execute(stmt):
            first = started.astimezone(zone).date()
            last = (finished or started).astimezone(zone).date()
            days.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return sorted(d for d in days if d < cutoff_day)


def prune(database: Database, *, raw_days: int | None, keep: int | None, zone: tzinfo,
          now: datetime | None = None, dry_run: bool = False, batch: int = BATCH) -> PruneReport:
    """Roll up and delete the raw results of the local days older than `raw_days`; drop rollups older
    than `keep` days. Idempotent: a second run with the same settings on the same day changes nothing."""
    from sqlalchemy import delete, func, select

    from compliance.db.models import HistoryDay

    now = now or datetime.now(UTC)
    today = now.astimezone(zone).date()
    cutoff = _day_bounds(today - timedelta(days=raw_days), zone)[0] if raw_days is not None else now
    report = PruneReport(dry_run, cutoff, raw_days, keep, bytes_before=_used_bytes(database))
    if raw_days is not None:
        # every day, also those rolled up before: what an open finding kept may have become free since, and
        # an interrupted prune left the rest of its last day (the scans table is small; a day is a few seeks)
        for day in _candidate_days(database, cutoff, zone):
            # a day past `keep` gets no rollup (it would be dropped at once); its raw results go all the same
            past_keep = keep is not None and day < today - timedelta(days=keep)
            _prune_day(database, day, zone, report, dry_run, batch, roll_up=not past_keep)
    if keep is not None:
        oldest_kept = today - timedelta(days=keep)
        with database.sessions() as session:
            days = list(session.scalars(select(HistoryDay.day).where(HistoryDay.day < oldest_kept).distinct()
                                        .order_by(HistoryDay.day)))
        for day in days:
            with database.transaction() as session:
                if dry_run:
                    n = session.execute(select(func.count()).select_from(HistoryDay)
                                        .where(HistoryDay.day == day)).scalar_one()
                else:
                    n = len(session.scalars(delete(HistoryDay).where(HistoryDay.day == day)
                                            .returning(HistoryDay.id)).all())
            report.rollup_days_removed.append(day)
            report.rollups_removed += n
    report.bytes_after = report.bytes_before if dry_run else _used_bytes(database)
    return report


def _delete_batches(database: Database, where: Any, report: PruneReport, dry_run: bool, batch: int) -> None:
    """Delete the prunable raw results matching `where`, `batch` per transaction (or count them)."""
    from sqlalchemy import delete, func, select

    from compliance.db.models import CheckResultRow

    if dry_run:
        with database.sessions() as session:
            report.results_removed += session.execute(select(func.count()).select_from(CheckResultRow)
                                                      .where(where, _prunable())).scalar_one()
        return
    while True:
        with database.transaction() as session:
            ids = list(session.scalars(select(CheckResultRow.id).where(where, _prunable())
                                       .order_by(CheckResultRow.id).limit(batch)))
            if ids:
                session.execute(delete(CheckResultRow).where(CheckResultRow.id.in_(ids)))
        report.results_removed += len(ids)
        if len(ids) < batch:
            return


def _prune_day(database: Database, day: date, zone: tzinfo, report: PruneReport, dry_run: bool, batch: int, *,
               roll_up: bool = True) -> None:
    """Roll up one day (once: in one transaction, unless it is rolled up already), then delete its raw results."""
    from sqlalchemy import exists, func, insert, select
    from sqlalchemy.exc import IntegrityError

    from compliance.db.models import CheckResultRow, HistoryDay

    start, end = _day_bounds(day, zone)
    try:
        with database.transaction() as session:
            if roll_up and not session.execute(select(exists().where(HistoryDay.day == day))).scalar():
                rows = _rollup_rows(session, day, start, end)
                if not rows:
                    return
                if not dry_run:
                    session.execute(insert(HistoryDay), rows)
                report.rollups_written += len(rows)
                report.days_rolled_up.append(day)
    except IntegrityError:
        # a prune running at the same time (the daemon's, or another by hand) rolled the day up first:
        # its rollup stands, whole; this one wrote nothing of it and goes on deleting
        pass
    before = report.results_removed
    _delete_batches(database, _in_day(start, end), report, dry_run, batch)
    with database.sessions() as session:
        total = session.execute(select(func.count()).select_from(CheckResultRow)
                                .where(_in_day(start, end))).scalar_one()
    report.results_kept += total - (report.results_removed - before if dry_run else 0)
