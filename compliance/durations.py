"""Durations as written in YAML (`26h`, `7d`, `1h30m`, a number of seconds), parsed, shown and validated.

Split from `compliance.api` (which re-exports all of it for plugins), so that the configuration does not
import the plugins' API at start-up (issue 18).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(y|w|d|h|m|s)", re.IGNORECASE)
_UNIT_SECONDS = {"y": 365 * 86400, "w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str | int | float) -> timedelta:
    """Parse `26h`, `7d`, `1h30m`, `45s`, `2w`, `1y` (or a number of seconds) into a timedelta.

    `m` is minutes; a year is 365 days.

    Raises ValueError with a message that shows the accepted form.
    """
    if isinstance(text, bool):
        raise ValueError("expected a duration such as '26h' or '7d'")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=text)
    cleaned = text.strip().replace(" ", "")
    pos, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(cleaned):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        pos = match.end()
    if not cleaned or pos != len(cleaned):
        raise ValueError(f"'{text}' is not a duration; write a number and a unit, e.g. '26h', '7d' or '1h30m'")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """A short human form of a duration: '2d 3h', '5m 10s', '0s'."""
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "-" + format_duration(-delta)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def _to_timedelta(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_duration(value)
    raise ValueError("expected a duration such as '26h' or '7d'")


def _to_seconds(value: Any) -> float:
    return _to_timedelta(value).total_seconds()


#: A parameter type for durations: '26h', '7d', '1h30m' or a number of seconds, as a timedelta.
Duration = Annotated[timedelta, BeforeValidator(_to_timedelta)]

#: A positive number of seconds, written as a number or as '30s', '2m', ...
Seconds = Annotated[float, BeforeValidator(_to_seconds), Field(gt=0)]
