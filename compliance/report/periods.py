"""Report periods: calendar weeks (ISO), months, quarters and years, and the moments that end them.

A report is *as of* a day: it shows the state at the end of that day in the configured time zone.
Its period is the calendar period that contains that day, cut off at it (so a report as of a
Wednesday covers Monday to Wednesday and says it is not complete); earlier periods are whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from compliance.errors import ComplianceError

PERIOD_KINDS = ("week", "month", "quarter", "year")


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar period from `start` to `end`, both days included; `complete` unless cut off early."""

    kind: str
    start: date
    end: date
    complete: bool = True

    @property
    def label(self) -> str:
        """A language-neutral name: 2026-W09, 2026-03, 2026-Q1 or 2026."""
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == "month":
            return f"{self.start.year}-{self.start.month:02d}"
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return str(self.start.year)

    def previous(self) -> Period:
        """The whole period before this one."""
        return period_containing(self.kind, self.start - timedelta(days=1))


def _check_kind(kind: str) -> None:
    if kind not in PERIOD_KINDS:
        raise ComplianceError(f"unknown period '{kind}'; use one of {', '.join(PERIOD_KINDS)}")


def period_containing(kind: str, day: date) -> Period:
    """The whole calendar period of this kind that contains day."""
    _check_kind(kind)
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        return Period(kind, start, start + timedelta(days=6))
    if kind == "month":
        start = day.replace(day=1)
    elif kind == "quarter":
        start = date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    else:
        start = date(day.year, 1, 1)
    months = {"month": 1, "quarter": 3, "year": 12}[kind]
    month_index = start.month - 1 + months
    following = date(start.year + month_index // 12, month_index % 12 + 1, 1)
    return Period(kind, start, following - timedelta(days=1))


#: The earliest day a report can be as of: no monitor stored anything before it, and a report looks
#: back twelve periods (twelve years at most) from its day, which must stay within the calendar.
EARLIEST_DAY = date(1970, 1, 1)


def report_period(kind: str, as_of: date) -> Period:
    """The period a report as of a day covers: its calendar period, up to and including that day."""
    if as_of < EARLIEST_DAY:
        raise ComplianceError(
            f"--as-of {as_of.isoformat()} lies before {EARLIEST_DAY.isoformat()}, before "
            f"anything the monitor stored; give a day from {EARLIEST_DAY.isoformat()} on "
            "(YYYY-MM-DD, four digits for the year)"
        )
    whole = period_containing(kind, as_of)
    return Period(kind, whole.start, as_of, complete=as_of == whole.end)


def periods_back(period: Period, count: int) -> list[Period]:
    """`count` periods ending with `period`, oldest first."""
    periods = [period]
    while len(periods) < count:
        periods.append(periods[-1].previous())
    return periods[::-1]


def end_of_day(day: date, zone: tzinfo) -> datetime:
    """The first moment after day in zone, in UTC: the state "as of" day is the state just before it."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


def start_of_day(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
