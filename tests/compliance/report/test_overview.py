"""The report's figures from a known history, exactly, on SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from compliance.errors import ComplianceError
from compliance.report import build_overview
from tests.compliance.report.conftest import AMSTERDAM, AS_OF, NOW, Seeded, local, utc


def exception(ident: int, until: str, pattern: str, approved_by: str) -> dict[str, Any]:
    return {"id": ident, "until": until, "target_pattern": pattern, "approved_by": approved_by}


def counts(passing: int, failing: int, accepted: int, unknown: int, not_evaluated: int) -> dict[str, int]:
    return {"passing": passing, "failing": failing, "accepted": accepted, "counted": passing + failing + accepted,
            "unknown": unknown, "not_evaluated": not_evaluated}


def bio2_measures(theme: str | None = None) -> list[str]:
    """The live BIO2 measure numbers (of one theme), from the framework data."""
    from compliance.frameworks import load

    spec = load("bio2")
    themes = {r.number: r.group for r in spec.requirements}
    return [m.number for m in spec.measures if theme is None or themes[m.control] == theme]


def measures(theme: str, monitored: int = 0) -> dict[str, int]:
    total = len(bio2_measures(theme))
    return {"measures": total, "measures_applicable": total, "monitored": monitored}


def test_the_weekly_figures_of_a_known_history(database: Any, seeded: Seeded) -> None:
    report = build_overview(database, "week", AS_OF, AMSTERDAM, now=NOW).to_json()
    a_y = exception(seeded.exception_a_y, "2026-03-20", "y", "CISO")

    assert report.pop("generated_at") == utc(NOW)
    assert {k: report[k] for k in ("report", "version", "as_of", "timezone", "period", "previous_period", "weights")} \
        == {"report": "risk-overview", "version": 1, "as_of": "2026-03-08", "timezone": "Europe/Amsterdam",
            "period": {"kind": "week", "label": "2026-W10", "start": "2026-03-02", "end": "2026-03-08",
                       "complete": True},
            "previous_period": {"kind": "week", "label": "2026-W09", "start": "2026-02-23", "end": "2026-03-01",
                                "complete": True},
            "weights": {"low": 1, "medium": 2, "high": 4, "critical": 8}}
    # passing B (1) + C (2) + D (4) of A (8) + B + C + D + G (2): 7 / 17; a week earlier A, B and D were
    # accepted and C, E, G passed: 6 / 19
    assert report["compliance"] == {"score": 41.2, "previous": 31.6, "change": 9.6, **counts(3, 2, 0, 1, 1)}
    # organizational and people score 100 % but see none of their BIO2 measures: at most amber
    assert report["themes"] == [
        {"theme": "organizational", "clause": "5", "score": 100.0, "previous": 0.0, "change": 100.0,
         "light": "amber", **counts(1, 0, 0, 0, 1), **measures("organizational")},
        {"theme": "people", "clause": "6", "score": 100.0, "previous": 0.0, "change": 100.0, "light": "amber",
         **counts(1, 0, 0, 0, 0), **measures("people")},
        {"theme": "physical", "clause": "7", "score": None, "previous": 100.0, "change": None, "light": "none",
         **counts(0, 0, 0, 1, 0), **measures("physical")},
        {"theme": "technological", "clause": "8", "score": 16.7, "previous": 33.3, "change": -16.6, "light": "red",
         **counts(1, 2, 0, 0, 0), **measures("technological", monitored=1)},
    ]
    # only A names a measure (8.15.01), and A has been evaluated; without the catalog no automated/evidence split
    everything = bio2_measures()
    assert report["coverage"] == {"measures": len(everything), "applicable": len(everything), "not_applicable": 0,
                                  "monitored": 1, "automated": None, "evidence": None, "none": len(everything) - 1,
                                  "unmonitored": [n for n in everything if n != "8.15.01"]}
    assert [(p["period"], p["start"], p["score"]) for p in report["trend"]] == [
        ("2025-W51", "2025-12-15", None), ("2025-W52", "2025-12-22", None), ("2026-W01", "2025-12-29", None),
        ("2026-W02", "2026-01-05", None), ("2026-W03", "2026-01-12", None), ("2026-W04", "2026-01-19", None),
        ("2026-W05", "2026-01-26", None), ("2026-W06", "2026-02-02", None), ("2026-W07", "2026-02-09", None),
        ("2026-W08", "2026-02-16", 94.7), ("2026-W09", "2026-02-23", 31.6), ("2026-W10", "2026-03-02", 41.2),
    ]
    assert report["trend"][0] == {"period": "2025-W51", "start": "2025-12-15", "end": "2025-12-21", "score": None,
                                  **counts(0, 0, 0, 0, 7)}
    assert [{k: p[k] for k in ("passing", "failing", "accepted", "unknown")} for p in report["trend"][-3:]] == [
        {"passing": 5, "failing": 0, "accepted": 1, "unknown": 0},
        {"passing": 3, "failing": 0, "accepted": 3, "unknown": 0},
        {"passing": 3, "failing": 2, "accepted": 0, "unknown": 1},
    ]
    risk_a = {
        "rank": 1, "control": "A", "title": "Logging of security events", "theme": "technological",
        "severity": "critical", "owner": "CISO", "since": utc(local(23, 2)), "age_days": 13, "risk": 8 * 14,
        "accepted": False, "exception": a_y, "targets_failing": 2,
        "targets": [{"target": "x", "since": utc(local(23, 2)), "message": "probe x: fail", "exception": None},
                    {"target": "y", "since": utc(local(2)), "message": "probe y: fail", "exception": a_y}],
        "references": {"bio2": ["8.15.01"], "iso27002": ["8.15"], "avg": ["32"]},
    }
    risk_g = {
        "rank": 2, "control": "G", "title": "TLS configuration", "theme": "technological", "severity": "medium",
        "owner": None, "since": utc(local(2)), "age_days": 6, "risk": 2 * 7, "accepted": False, "exception": None,
        "targets_failing": 1,
        "targets": [{"target": "g", "since": utc(local(2)), "message": "probe g: fail", "exception": None}],
        "references": {},
    }
    assert report["top_risks"] == [risk_a, risk_g]
    assert report["failing_controls"] == [risk_a, risk_g]
    assert report["expiring_exceptions"] == [
        {"id": seeded.exception_a_y, "control": "A", "title": "Logging of security events", "target_pattern": "y",
         "until": "2026-03-20", "days_left": 12, "approved_by": "CISO", "reason": "Replacement ordered",
         "findings_covered": 1},
        {"id": seeded.exception_d, "control": "D", "title": "Screening of new staff", "target_pattern": "*",
         "until": "2026-03-31", "days_left": 23, "approved_by": "Director", "reason": "Screening moved to HR system",
         "findings_covered": 0},
    ]
    # b was open 16 Feb - 2 Mar (14 days), p 23 Feb - 5 Mar (10 days)
    assert report["changes"] == {
        "newly_failing": [{"control": "G", "title": "TLS configuration", "theme": "technological",
                           "severity": "medium", "at": utc(local(2))}],
        "newly_resolved": [
            {"control": "D", "title": "Screening of new staff", "theme": "people", "severity": "high",
             "at": utc(local(5))},
            {"control": "B", "title": "Processing register kept", "theme": "organizational", "severity": "low",
             "at": utc(local(2))},
        ],
        "findings_opened": 2, "findings_resolved": 2, "mean_days_to_resolve": 12.0,
    }
    assert report["could_not_run"] == [
        {"control": "E", "title": "Server room access logged", "severity": "medium", "owner": None,
         "at": utc(local(5)), "targets": [{"target": "e", "message": "probe e: error"}]},
    ]
    assert report["not_evaluated"] == [
        {"control": "F", "title": "Supplier agreements reviewed", "severity": "high", "owner": None,
         "schedule": None, "last_evaluated": None, "due": None},
        {"control": "C", "title": "Backups restored daily", "severity": "medium", "owner": None,
         "schedule": "0 2 * * *", "last_evaluated": utc(local(2)), "due": utc(local(3, 3, 2))},
    ]
    assert report["incidents"] == {
        "new": 3, "open": 4, "overdue": 1, "notified_authority": 2, "notified_within_72h": 1,
        "notified_within_72h_percent": 50.0,
        "by_nature": {"confidentiality": 2, "integrity": 1, "availability": 1},
        "by_band": {"low": 1, "medium": 0, "high": 0, "very high": 1, "unassessed": 1},
        "significant": 0, "csirt_overdue": 0,
    }


def test_a_report_as_of_an_earlier_day_sees_the_state_of_then(database: Any, seeded: Seeded) -> None:
    """As of Sunday 1 March: A, B and D were accepted, nothing had errored, the revoked exception still held."""
    report = build_overview(database, "week", date(2026, 3, 1), AMSTERDAM, now=NOW).to_json()
    assert report["compliance"] == {"score": 31.6, "previous": 94.7, "change": -63.1, **counts(3, 0, 3, 0, 1)}
    assert [(r["control"], r["accepted"], r["exception"]["id"]) for r in report["top_risks"]] == [
        ("A", True, seeded.exception_a_x), ("D", True, seeded.exception_d), ("B", True, seeded.exception_b)]
    assert [r["targets"][0]["message"] for r in report["top_risks"]] == ["probe x: fail", "probe p: fail",
                                                                          "probe b: fail"]
    assert report["could_not_run"] == []
    assert [e["id"] for e in report["expiring_exceptions"]] == [seeded.exception_b, seeded.exception_d]
    assert report["changes"]["newly_failing"][0]["control"] == "A"
    assert (report["incidents"]["new"], report["incidents"]["open"]) == (1, 1)


def test_a_week_in_progress_is_cut_off_at_the_report_day(database: Any, seeded: Seeded) -> None:
    report = build_overview(database, "week", date(2026, 3, 3), AMSTERDAM, now=NOW).to_json()
    assert report["period"] == {"kind": "week", "label": "2026-W10", "start": "2026-03-02", "end": "2026-03-03",
                                "complete": False}
    # on 3 March the daily control C (last run 2 March 03:00) was due at 02:00 and had not run
    assert [n["control"] for n in report["not_evaluated"]] == ["F", "C"]


@pytest.mark.parametrize(("period", "label", "start", "previous", "score", "points"), [
    ("month", "2026-03", "2026-03-01", "2026-02", 31.6, ["2025-04", "2026-03"]),
    ("quarter", "2026-Q1", "2026-01-01", "2025-Q4", None, ["2023-Q2", "2026-Q1"]),
    ("year", "2026", "2026-01-01", "2025", None, ["2015", "2026"]),
])
def test_longer_periods(database: Any, seeded: Seeded, period: str, label: str, start: str, previous: str,
                        score: float | None, points: list[str]) -> None:
    report = build_overview(database, period, AS_OF, AMSTERDAM, now=NOW).to_json()
    assert (report["period"]["label"], report["period"]["start"], report["period"]["end"]) == (label, start,
                                                                                               "2026-03-08")
    assert (report["previous_period"]["label"], report["compliance"]["score"], report["compliance"]["previous"]) \
        == (previous, 41.2, score)
    assert [report["trend"][0]["period"], report["trend"][-1]["period"]] == points
    assert len(report["trend"]) == 12


def test_an_empty_database_gives_an_empty_report(database: Any) -> None:
    report = build_overview(database, "week", AS_OF, AMSTERDAM, now=NOW).to_json()
    assert report["compliance"] == {"score": None, "previous": None, "change": None, **counts(0, 0, 0, 0, 0)}
    assert [t["light"] for t in report["themes"]] == ["none"] * 4
    assert (report["top_risks"], report["not_evaluated"], report["incidents"]["new"]) == ([], [], 0)


def test_a_day_in_the_future_is_refused(database: Any) -> None:
    with pytest.raises(ComplianceError, match=r"--as-of 2026-03-10 lies in the future; give today \(2026-03-09\)"):
        build_overview(database, "week", date(2026, 3, 10), AMSTERDAM, now=NOW)


def test_the_clock_of_the_day_is_the_configured_zone(database: Any) -> None:
    """At 00:30 on 9 March in Amsterdam it is still 8 March in UTC: the default day follows the zone."""
    late = datetime(2026, 3, 9, 0, 30, tzinfo=AMSTERDAM)
    assert build_overview(database, now=late, zone=AMSTERDAM).as_of == date(2026, 3, 9)


def test_a_control_not_applicable_drops_out_from_the_decision_on(database: Any, seeded: Seeded) -> None:
    """B (low, passing) is decided not applicable on 4 March: out of week 10's score, still in week 9's."""
    from sqlalchemy import update

    from compliance import soa
    from compliance.db.models import ApplicabilityDecision

    soa.decide(database, "B", applies=False, reason="No processing register in scope", by="anna")
    with database.transaction() as session:
        session.execute(update(ApplicabilityDecision).values(decided_at=local(4, 3, 10)))
    report = build_overview(database, "week", AS_OF, AMSTERDAM, now=NOW).to_json()
    # passing C (2) + D (4) of A (8) + C + D + G (2): 6 / 16; week 9 as before: 6 / 19
    assert report["compliance"] == {"score": 37.5, "previous": 31.6, "change": 5.9, **counts(2, 2, 0, 1, 1)}
    assert report["themes"][0] == {"theme": "organizational", "clause": "5", "score": None, "previous": 0.0,
                                   "change": None, "light": "none", **counts(0, 0, 0, 0, 1),
                                   **measures("organizational")}
    assert [c["control"] for c in report["changes"]["newly_resolved"]] == ["D"]


def _people_history(database: Any, store: Any, named: int, paper_named: int = 0) -> None:
    """P (people, passing) names the first `named` people measures; Q (never evaluated) the next ones."""
    from tests.compliance.report.history import History, Spec

    people = bio2_measures("people")
    history = History(database, store)
    p = Spec("P", "people", "medium", references={"bio2": people[:named]})
    history.scan(local(2), {p: {"p": "pass"}})
    q = Spec("Q", "people", "low", references={"bio2": people[named:named + paper_named]})
    store.sync_controls([q.control({"q": "pass"})])


@pytest.mark.parametrize("majority", [True, False])
def test_a_theme_is_green_only_when_most_of_its_measures_are_monitored(database: Any, store: Any,
                                                                       probe_plugin: type, majority: bool) -> None:
    total = len(bio2_measures("people"))
    at_least_half = (total + 1) // 2
    named = at_least_half if majority else at_least_half - 1
    _people_history(database, store, named, paper_named=total - named)
    report = build_overview(database, "week", AS_OF, AMSTERDAM, now=NOW, kinds={"P": "automated", "Q": "evidence"})
    people = next(t for t in report.to_json()["themes"] if t["theme"] == "people")
    assert (people["score"], people["monitored"], people["measures_applicable"]) == (100.0, named, total)
    assert people["light"] == ("green" if majority else "amber")
    # Q names the other people measures but was never evaluated: covered by evidence, not monitored
    coverage = report.to_json()["coverage"]
    assert (coverage["monitored"], coverage["automated"], coverage["evidence"]) == (named, named, total - named)
    assert coverage["none"] == len(bio2_measures()) - total


def test_a_control_none_of_whose_checks_runs_covers_nothing(database: Any, store: Any, probe_plugin: type) -> None:
    """`unconfigured` (`compliance.soa.control_kind`: its checks' target groups have no targets) is no evidence."""
    total = len(bio2_measures("people"))
    named = (total + 1) // 2
    _people_history(database, store, named, paper_named=total - named)
    report = build_overview(database, "week", AS_OF, AMSTERDAM, now=NOW, kinds={"P": "automated", "Q": "unconfigured"})
    coverage = report.to_json()["coverage"]
    assert (coverage["automated"], coverage["evidence"]) == (named, 0)
    assert coverage["none"] == len(bio2_measures()) - named


def test_measures_not_applicable_leave_the_count(database: Any, store: Any, probe_plugin: type) -> None:
    """Marking the ISO controls of the unmonitored people measures not applicable turns the theme green."""
    from compliance import soa
    from compliance.frameworks import load

    people = bio2_measures("people")
    named = (len(people) + 1) // 2 - 1
    _people_history(database, store, named)
    bio2 = load("bio2")
    watched = {bio2.measure(n).control for n in people[:named]}  # type: ignore[union-attr]
    for number in people[named:]:
        control = bio2.measure(number).control  # type: ignore[union-attr]
        subject = number if control in watched else control  # a measure itself, or its whole ISO control
        soa.decide(database, subject, applies=False, reason="not here", by="anna")
    with database.transaction() as session:
        from sqlalchemy import update

        from compliance.db.models import ApplicabilityDecision

        session.execute(update(ApplicabilityDecision).values(decided_at=local(3, 3, 10)))
    report = build_overview(database, "week", AS_OF, AMSTERDAM, now=NOW).to_json()
    theme = next(t for t in report["themes"] if t["theme"] == "people")
    assert (theme["measures_applicable"], theme["monitored"], theme["light"]) == (named, named, "green")
    assert report["coverage"]["not_applicable"] == len(people) - named


def test_the_findings_open_at_many_moments_are_those_open_at_each_alone(database: Any, seeded: Seeded) -> None:
    """The trend reads the findings open at its twelve moments in one pass (their last change before the
    earliest, then the changes up to the latest); each moment read alone must give the same findings."""
    from compliance.report.queries import open_findings_at, open_findings_over

    # before, at (a change at the moment itself does not count yet) and after each weekly scan (03:00)
    moments = [local(day, month, hour) for month, days in ((2, range(15, 29)), (3, range(1, 10)))
               for day in days for hour in (2, 3, 4)]
    with database.sessions() as session:
        together = open_findings_over(session, moments)
        alone = [open_findings_at(session, moment) for moment in moments]
        backwards = open_findings_over(session, moments[::-1] + moments[:3])  # any order, a moment twice
    assert together == alone
    assert backwards == together[::-1] + together[:3]
    # x opened on 23 Feb and stayed open; b was open from 16 Feb until the scan of 2 Mar resolved it
    assert [(f.control_id, f.target) for f in together[moments.index(local(23, 2, 3))]] == [("B", "b")]
    assert [(f.control_id, f.target, f.since) for f in together[moments.index(local(23, 2, 4))]] == [
        ("A", "x", local(23, 2)), ("B", "b", local(16, 2)), ("D", "p", local(23, 2))]
    assert ("B", "b") not in [(f.control_id, f.target) for f in together[moments.index(local(2, 3, 4))]]
