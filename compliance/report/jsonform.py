"""The JSON form of the risk overview: a contract for other tools, documented in docs/report.md.

Fields are only ever added, never renamed or removed, within a `version`. Dates are ISO 8601 days in
the configured time zone; times are ISO 8601 in UTC with offset; scores are percentages with one
decimal, or null when no control counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compliance.report.breaches import IncidentFigures
    from compliance.report.overview import (
        ControlChange,
        ExceptionRef,
        Overview,
        Risk,
        Score,
    )
    from compliance.report.periods import Period

VERSION = 1


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _period(p: Period) -> dict[str, Any]:
    return {"kind": p.kind, "label": p.label, "start": _day(p.start), "end": _day(p.end), "complete": p.complete}


def _counts(s: Score) -> dict[str, Any]:
    return {"passing": s.passing, "failing": s.failing, "accepted": s.accepted, "counted": s.counted,
            "unknown": s.unknown, "not_evaluated": s.not_evaluated}


def _exception(e: ExceptionRef | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {"id": e.id, "until": _day(e.until), "target_pattern": e.target_pattern, "approved_by": e.approved_by}


def _references(refs: Mapping[str, tuple[str, ...]]) -> dict[str, list[str]]:
    return {k: list(v) for k, v in refs.items()}


def _risk(rank: int, r: Risk) -> dict[str, Any]:
    return {
        "rank": rank, "control": r.control, "title": r.title, "theme": r.theme, "severity": r.severity,
        "owner": r.owner, "since": _time(r.since), "age_days": r.age_days, "risk": r.risk, "accepted": r.accepted,
        "exception": _exception(r.exception), "targets_failing": r.targets_failing,
        "targets": [{"target": t.target, "since": _time(t.since), "message": t.message,
                     "exception": _exception(t.exception)} for t in r.targets],
        "references": _references(r.references),
    }


def _change(c: ControlChange) -> dict[str, Any]:
    return {"control": c.control, "title": c.title, "theme": c.theme, "severity": c.severity, "at": _time(c.at)}


def _incidents(i: IncidentFigures) -> dict[str, Any]:
    return {"new": i.new, "open": i.open, "overdue": i.overdue, "notified_authority": i.notified_authority,
            "notified_within_72h": i.notified_within_72h, "notified_within_72h_percent": i.notified_share_within_72h,
            "by_nature": dict(i.by_nature), "by_band": dict(i.by_band),
            "significant": i.significant, "csirt_overdue": i.csirt_overdue}


def overview_json(o: Overview) -> dict[str, Any]:
    """The overview as one JSON-ready dict (see docs/report.md for every field)."""
    return {
        "report": "risk-overview",
        "version": VERSION,
        "generated_at": _time(o.generated_at),
        "as_of": _day(o.as_of),
        "timezone": o.timezone,
        "period": _period(o.period),
        "previous_period": _period(o.previous_period),
        "weights": dict(o.weights),
        "compliance": {"score": o.compliance.percent, "previous": o.previous.percent, "change": o.change,
                       **_counts(o.compliance)},
        "coverage": {"measures": o.coverage.measures, "applicable": o.coverage.applicable,
                     "not_applicable": o.coverage.not_applicable, "monitored": o.coverage.monitored,
                     "automated": o.coverage.automated, "evidence": o.coverage.evidence, "none": o.coverage.none,
                     "unmonitored": list(o.coverage.unmonitored)},
        "themes": [{"theme": t.theme, "clause": t.clause, "score": t.score.percent, "previous": t.previous,
                    "change": t.change, "light": t.light, **_counts(t.score), "measures": t.measures,
                    "measures_applicable": t.applicable, "monitored": t.monitored} for t in o.themes],
        "trend": [{"period": p.period.label, "start": _day(p.period.start), "end": _day(p.period.end),
                   "score": p.score.percent, **_counts(p.score)} for p in o.trend],
        "top_risks": [_risk(n, r) for n, r in enumerate(o.top_risks, start=1)],
        "failing_controls": [_risk(n, r) for n, r in enumerate(o.risks, start=1)],
        "expiring_exceptions": [
            {"id": e.id, "control": e.control, "title": e.title, "target_pattern": e.target_pattern,
             "until": _day(e.until), "days_left": e.days_left, "approved_by": e.approved_by, "reason": e.reason,
             "findings_covered": e.findings_covered} for e in o.expiring_exceptions],
        "changes": {
            "newly_failing": [_change(c) for c in o.changes.newly_failing],
            "newly_resolved": [_change(c) for c in o.changes.newly_resolved],
            "findings_opened": o.changes.findings_opened,
            "findings_resolved": o.changes.findings_resolved,
            "mean_days_to_resolve": o.changes.mean_days_to_resolve,
        },
        "could_not_run": [
            {"control": c.control, "title": c.title, "severity": c.severity, "owner": c.owner, "at": _time(c.at),
             "targets": [{"target": t, "message": m} for t, m in c.targets]} for c in o.could_not_run],
        "not_evaluated": [
            {"control": n.control, "title": n.title, "severity": n.severity, "owner": n.owner,
             "schedule": n.schedule, "last_evaluated": _time(n.last_evaluated), "due": _time(n.due)}
            for n in o.not_evaluated],
        "incidents": _incidents(o.incidents),
    }
