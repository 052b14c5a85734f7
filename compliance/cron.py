"""Schedules: five-field cron expressions and `every <duration>` intervals, parsed and validated.

A low module of its own so that the settings, the catalog and the scheduler validate a schedule the
same way without importing each other. Cron expressions are read by APScheduler's `CronTrigger`; an
interval (`every 30s`, `every 1h30m`) is for demos and tests.
"""

from __future__ import annotations

import re
from datetime import tzinfo
from typing import Any

_EVERY = re.compile(r"^\s*every\s+(\S.*?)\s*$", re.IGNORECASE)


def cron_error(expression: str) -> str:
    """Why a five-field cron expression is invalid, or '' when it is valid."""
    from apscheduler.triggers.cron import CronTrigger

    if len(expression.split()) != 5:
        return f"it has {len(expression.split())} fields, a cron expression has 5"
    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        return str(exc)
    return ""


def schedule_error(spec: str) -> str:
    """Why spec is not a schedule (a five-field cron expression or `every <duration>`), or ''."""
    every = _EVERY.match(spec)
    if every:
        from compliance.durations import parse_duration  # imports pydantic, which `is_cron` (the report) does without

        try:
            seconds = parse_duration(every.group(1)).total_seconds()
        except ValueError as exc:
            return str(exc)
        return "" if seconds >= 1 else "an interval must be at least 1 second"
    problem = cron_error(spec)
    return f"'{spec}' is not a cron expression ({problem}) nor 'every <duration>' such as 'every 30s'" \
        if problem else ""


def is_cron(spec: str) -> bool:
    """Whether a (valid) schedule is a cron expression rather than `every <duration>`."""
    return _EVERY.match(spec) is None


def make_trigger(spec: str, zone: tzinfo) -> Any:
    """The APScheduler trigger of a schedule, in zone."""
    every = _EVERY.match(spec)
    if every:
        from apscheduler.triggers.interval import IntervalTrigger

        from compliance.durations import parse_duration

        return IntervalTrigger(seconds=parse_duration(every.group(1)).total_seconds(), timezone=zone)
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger.from_crontab(spec, timezone=zone)
