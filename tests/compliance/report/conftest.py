"""A known history for the report tests: four weekly scans, exceptions made and revoked, breaches.

The report is taken as of Sunday 8 March 2026 (week 10), times in Europe/Amsterdam (CET, UTC+1):

| control | theme, severity  | 16 Feb (S1) | 23 Feb (S2) | 2 Mar (S3) | 5 Mar (S4) | exceptions              |
|---------|------------------|-------------|-------------|------------|------------|-------------------------|
| A       | techn., critical | x y pass    | x fail      | x y fail   | x y fail   | x 24 Feb, revoked 4 Mar |
|         |                  |             |             |            |            | y 3 Mar - 20 Mar        |
| B       | org., low        | b fail      | b fail      | b pass     | b pass     | * 17 Feb - 6 Mar        |
| C       | techn., medium   | pass        | pass        | pass       | (not run)  | (daily schedule 02:00)  |
| D       | people, high     | pass        | p fail      | p fail     | p pass     | * 25 Feb - 31 Mar       |
| E       | physical, medium | pass        | pass        | error      | error      |                         |
| G       | techn., medium   | pass        | pass        | g fail     | g fail     |                         |
| F       | org., high       | never evaluated                                                                  |

Breaches: I1 aware 3 Mar (very high, notified in time), I2 aware 5 Mar (low, notified late), I3 aware
5 Mar (unassessed, overdue), I4 aware 25 Feb (assessed, decided not to notify), I5 aware 9 Mar (after).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.compliance.report.history import History, Spec

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
AS_OF = date(2026, 3, 8)
#: When the report is made: the Monday after, so the week is complete.
NOW = datetime(2026, 3, 9, 9, 0, tzinfo=AMSTERDAM)

A = Spec("A", "technological", "critical", owner="CISO", title="Logging of security events",
         references={"bio2": ["8.15.01"], "iso27002": "8.15", "avg": "32"})
B = Spec("B", "organizational", "low", owner="Privacy officer", title="Processing register kept")
C = Spec("C", "technological", "medium", schedule="0 2 * * *", title="Backups restored daily")
D = Spec("D", "people", "high", owner="HR", title="Screening of new staff")
E = Spec("E", "physical", "medium", title="Server room access logged")
F = Spec("F", "organizational", "high", title="Supplier agreements reviewed")
G = Spec("G", "technological", "medium", title="TLS configuration")


def local(day: int, month: int = 3, hour: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=AMSTERDAM)


@dataclass
class Seeded:
    exception_a_y: int
    exception_d: int
    exception_b: int
    exception_a_x: int


def seed(database: Any, store: Any) -> Seeded:
    history = History(database, store)
    history.scan(local(16, 2), {A: {"x": "pass", "y": "pass"}, B: {"b": "fail"}, C: {"c": "pass"},
                                D: {"p": "pass"}, E: {"e": "pass"}, G: {"g": "pass"}})
    exception_b = store.add_exception("B", reason="Register is being rebuilt", approved_by="Gemeentesecretaris",
                                      until=date(2026, 3, 6), created_by="anna", now=local(17, 2, 10)).id
    history.scan(local(23, 2), {A: {"x": "fail", "y": "pass"}, B: {"b": "fail"}, C: {"c": "pass"},
                                D: {"p": "fail"}, E: {"e": "pass"}, G: {"g": "pass"}})
    exception_a_x = store.add_exception("A", reason="Log shipping being replaced", approved_by="CISO",
                                        until=date(2026, 4, 30), created_by="anna", target_pattern="x",
                                        now=local(24, 2, 10)).id
    exception_d = store.add_exception("D", reason="Screening moved to HR system", approved_by="Director",
                                      until=date(2026, 3, 31), created_by="anna", now=local(25, 2, 10)).id
    history.scan(local(2), {A: {"x": "fail", "y": "fail"}, B: {"b": "pass"}, C: {"c": "pass"}, D: {"p": "fail"},
                            E: {"e": "error"}, G: {"g": "fail"}})
    exception_a_y = store.add_exception("A", reason="Replacement ordered", approved_by="CISO",
                                        until=date(2026, 3, 20), created_by="anna", target_pattern="y",
                                        now=local(3, 3, 10)).id
    store.revoke_exception(exception_a_x, by="anna", reason="Not acceptable after all", now=local(4, 3, 10))
    history.scan(local(5), {A: {"x": "fail", "y": "fail"}, B: {"b": "pass"}, D: {"p": "pass"}, E: {"e": "error"},
                            G: {"g": "fail"}})
    store.sync_controls([F.control({"f": "pass"})])
    seed_breaches(database)
    return Seeded(exception_a_y, exception_d, exception_b, exception_a_x)


def seed_breaches(database: Any) -> None:
    from compliance.incidents import Draft, Register

    register = Register(database, zone=AMSTERDAM)

    def new(aware_at: datetime, **facts: Any) -> str:
        draft = Draft(**{"title": "Lost folder", "description": "A folder was left on the train.",
                         "occurred_at": aware_at - timedelta(hours=5), "aware_at": aware_at,
                         "nature": ["confidentiality"], "data_categories": ["health"], "subjects": 12, **facts})
        return register.register(draft, by="anna", now=aware_at + timedelta(hours=1)).id

    def assess(incident: str, at: datetime, ei: str, notify: bool, confidentiality: str = "exposed",
               integrity: str = "none", availability: str = "none") -> None:
        register.assess(incident, ei=ei, confidentiality=confidentiality, integrity=integrity,
                        availability=availability, by="anna", now=at)
        register.decide(incident, notify_authority=notify, notify_subjects=False, reason="as assessed", by="anna",
                        now=at)

    i4 = new(local(25, 2, 9), data_categories=["contact"])
    assess(i4, local(25, 2, 12), "limited", notify=False)
    i1 = new(local(3, 3, 10))
    assess(i1, local(3, 3, 14), "maximum", notify=True)
    register.notify(i1, recipient="authority", reference="M-1", at=local(4, 3, 9), by="anna", now=local(4, 3, 9))
    i2 = new(local(5, 3, 8), nature=["integrity", "availability"], data_categories=["contact"])
    assess(i2, local(5, 3, 12), "limited", notify=True, confidentiality="none", integrity="altered",
           availability="recoverable")
    register.notify(i2, recipient="authority", reference="M-2", at=local(8, 3, 20), delay_reason="Found late",
                    by="anna", now=local(8, 3, 20))
    new(local(5, 3, 12))
    new(local(9, 3, 10))


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()
