"""The figures the report counts from the register's columns (`counts.load_counted`) are those of the incidents
as loaded (`register.figures_of(load_incidents(...))`); on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from compliance.incidents import Register
from compliance.incidents.counts import load_counted, tally
from compliance.incidents.register import figures_of, load_incidents
from tests.incidents.conftest import draft

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)



def ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def assess(register: Register, incident_id: str, **scores: Any) -> None:
    register.assess(incident_id, **{"ei": "maximum", "confidentiality": "exposed", "integrity": "none",
                                    "availability": "none", **scores}, by="anna", now=NOW)


def varied_register(database: Any) -> None:
    """Breaches in every state the figures tell apart, and one before and one after the periods counted."""
    register = Register(database)
    register.register(draft(ago(10)), by="anna", now=NOW)  # clock running, unassessed
    register.register(draft(ago(90), nature=["integrity", "availability"], subjects=3), by="anna", now=NOW)  # overdue
    in_time = register.register(draft(ago(50)), by="anna", now=NOW).id
    assess(register, in_time)
    register.decide(in_time, notify_authority=True, notify_subjects=False, reason="r", by="anna", now=NOW)
    register.notify(in_time, recipient="authority", reference="M1", at=ago(2), by="anna", now=NOW)
    late = register.register(draft(ago(120), subjects=40), by="anna", now=NOW).id
    assess(register, late, ei="limited")
    register.decide(late, notify_authority=True, notify_subjects=True, reason="r", by="anna", now=NOW)
    register.notify(late, recipient="authority", reference="M2", at=ago(30), delay_reason="found the letters late",
                    by="anna", now=NOW)
    register.notify(late, recipient="subjects", channel="letter", at=ago(20), by="anna", now=NOW)
    closed = register.register(draft(ago(150)), by="anna", now=NOW).id
    assess(register, closed, dpc=1, dpc_reason="only the fact of an application", ei="limited")
    register.decide(closed, notify_authority=False, notify_subjects=False, reason="low", by="anna", now=NOW)
    register.update(closed, {"consequences": "none likely", "measures_taken": "folder retrieved"}, by="anna", now=NOW)
    register.close(closed, ongoing=True, by="anna", now=NOW)
    # significant incidents under the Cbw: one without personal data and its early warning overdue, one reported
    register.register(draft(ago(30), data_categories=[], significant=True, nature=["availability"], subjects=0),
                      personal_data=False, by="anna", now=NOW)
    reported = register.register(draft(ago(20), significant=True), by="anna", now=NOW).id
    register.notify_csirt(reported, stage="early-warning", reference="C-1", at=ago(4), by="anna", now=NOW)
    register.register(draft(NOW - timedelta(days=400)), by="anna", now=NOW)
    register.register(draft(NOW + timedelta(hours=1)), by="anna", now=NOW + timedelta(hours=2))


@pytest.mark.parametrize("since", [None, NOW - timedelta(days=7)])
@pytest.mark.parametrize("moment", [NOW, NOW + timedelta(days=40)])
def test_the_counted_figures_are_those_of_the_loaded_incidents(database: Any, since: datetime | None,
                                                               moment: datetime) -> None:
    varied_register(database)
    loaded = figures_of(load_incidents(database, aware_from=since, aware_until=NOW, now=moment), moment)
    counted = tally(load_counted(database, since=since, until=NOW), moment)
    assert counted == replace(loaded, incidents=())
    # the register above is varied enough for the comparison to mean something
    assert (loaded.total, loaded.by_status["closed"], loaded.notified_late, loaded.subjects_informed,
            loaded.significant, loaded.without_personal_data) == (8 if since is None else 7, 1, 1, 1, 2, 1)
    assert loaded.by_band["unassessed"] == (5 if since is None else 4)
    assert loaded.overdue >= 1
    assert loaded.csirt_overdue == (1 if moment == NOW else 2)
