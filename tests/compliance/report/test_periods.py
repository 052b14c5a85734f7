"""Calendar periods and the moments that end them."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from compliance.errors import ComplianceError
from compliance.report.periods import Period, end_of_day, period_containing, periods_back, report_period


@pytest.mark.parametrize(("kind", "day", "start", "end", "label"), [
    ("week", date(2026, 3, 8), date(2026, 3, 2), date(2026, 3, 8), "2026-W10"),
    ("week", date(2027, 1, 1), date(2026, 12, 28), date(2027, 1, 3), "2026-W53"),
    ("month", date(2024, 2, 10), date(2024, 2, 1), date(2024, 2, 29), "2024-02"),
    ("month", date(2026, 12, 31), date(2026, 12, 1), date(2026, 12, 31), "2026-12"),
    ("quarter", date(2026, 5, 15), date(2026, 4, 1), date(2026, 6, 30), "2026-Q2"),
    ("quarter", date(2026, 12, 1), date(2026, 10, 1), date(2026, 12, 31), "2026-Q4"),
    ("year", date(2026, 7, 4), date(2026, 1, 1), date(2026, 12, 31), "2026"),
])
def test_the_calendar_period_of_a_day(kind: str, day: date, start: date, end: date, label: str) -> None:
    period = period_containing(kind, day)
    assert (period.start, period.end, period.label, period.complete) == (start, end, label, True)


def test_a_report_period_ends_on_its_day_and_the_previous_one_is_whole() -> None:
    current = report_period("month", date(2026, 3, 8))
    assert current == Period("month", date(2026, 3, 1), date(2026, 3, 8), complete=False)
    assert current.previous() == Period("month", date(2026, 2, 1), date(2026, 2, 28))
    assert report_period("month", date(2026, 3, 31)).complete


def test_twelve_periods_back_cross_the_year() -> None:
    periods = periods_back(report_period("quarter", date(2026, 2, 1)), 12)
    assert [p.label for p in periods[:2]] == ["2023-Q2", "2023-Q3"] and periods[-1].label == "2026-Q1"
    assert all(a.end.toordinal() + 1 == b.start.toordinal() for a, b in itertools.pairwise(periods))


@pytest.mark.parametrize(("day", "expected"), [
    (date(2026, 3, 28), datetime(2026, 3, 28, 23, 0, tzinfo=UTC)),  # the last day of winter time
    (date(2026, 3, 29), datetime(2026, 3, 29, 22, 0, tzinfo=UTC)),  # clocks go forward that night
    (date(2026, 10, 25), datetime(2026, 10, 25, 23, 0, tzinfo=UTC)),  # and back
])
def test_a_day_ends_at_midnight_in_the_zone(day: date, expected: datetime) -> None:
    assert end_of_day(day, ZoneInfo("Europe/Amsterdam")) == expected


def test_an_unknown_period_is_refused() -> None:
    with pytest.raises(ComplianceError, match="unknown period 'fortnight'; use one of week, month, quarter, year"):
        period_containing("fortnight", date(2026, 1, 1))
