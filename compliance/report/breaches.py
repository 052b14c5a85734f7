"""Breach-register figures for the report, counted by the register's own `incidents.counts` (the same counts
as `incidents.register.figures`), from the columns they need, the register read once.

Only counts leave this module: no ids, titles, descriptions or anything else typed into the register.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compliance.db import Database


@dataclass(frozen=True, slots=True)
class IncidentFigures:
    """Breach-register figures for the period; counts only, no personal data and no free text."""

    new: int
    open: int
    overdue: int
    notified_authority: int
    notified_within_72h: int
    notified_share_within_72h: float | None
    by_nature: Mapping[str, int]
    by_band: Mapping[str, int]
    significant: int = 0  # significant incidents under the Cbw that became known in the period
    csirt_overdue: int = 0  # significant incidents with a CSIRT report past its deadline, at moment


def incident_figures(database: Database, start: datetime, moment: datetime) -> IncidentFigures:
    """Figures at moment: breaches that became known (aware) in [start, moment), and all open ones.

    `new`, `notified_authority`, `notified_within_72h` and the breakdowns by nature and ENISA band are
    about the breaches that became known in the period; `open` and `overdue` (the 72-hour deadline
    passed without a notification to the authority or a decision not to notify) about every breach the
    register knew at moment. Status and notifications are read as they are now, so for a report about a
    past day they may include what was recorded after it.
    """
    from compliance.incidents.counts import load_counted, tally

    # the register is read once: the period's breaches are those of `known` that became known from start on
    counted = load_counted(database, until=moment)
    known = tally(counted, moment)
    period = tally([c for c in counted if c.aware_at >= start], moment)
    share = round(100 * period.notified_within_72h / period.authority_notified, 1) if period.authority_notified \
        else None
    return IncidentFigures(
        new=period.total,
        open=known.open,
        overdue=known.overdue,
        notified_authority=period.authority_notified,
        notified_within_72h=period.notified_within_72h,
        notified_share_within_72h=share,
        by_nature=dict(period.by_nature),
        by_band=dict(period.by_band),
        significant=period.significant,
        csirt_overdue=known.csirt_overdue,
    )
