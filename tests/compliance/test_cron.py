"""Schedules: cron expressions and `every <duration>` intervals, validated and turned into triggers."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from compliance import cron

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.mark.parametrize(("spec", "problem"), [
    ("0 8 * * mon", ""), ("every 2s", ""), ("every 1h30m", ""), ("EVERY 5m", ""),
    ("every 0.5s", "an interval must be at least 1 second"),
    ("every", "'every' is not a cron expression (it has 1 fields, a cron expression has 5) nor 'every <duration>' "
              "such as 'every 30s'"),
    ("61 * * * *", "'61 * * * *' is not a cron expression"),
])
def test_a_schedule_is_cron_or_an_interval(spec: str, problem: str) -> None:
    assert cron.schedule_error(spec).startswith(problem) and bool(problem) == bool(cron.schedule_error(spec))


def test_triggers_run_in_the_configured_time_zone() -> None:
    weekly = cron.make_trigger("0 8 * * mon", AMSTERDAM)
    after = datetime(2026, 3, 28, 12, 0, tzinfo=AMSTERDAM)  # summer time starts on Sunday 29 March
    assert weekly.get_next_fire_time(None, after) == datetime(2026, 3, 30, 8, 0, tzinfo=AMSTERDAM)
    every = cron.make_trigger("every 90s", AMSTERDAM)
    assert every.interval == timedelta(seconds=90)
