"""The register's `breaches` fact: passed to the engine as a fact source, read by the `breach_register` check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from compliance.catalog import Control
from compliance.engine import run_scan
from compliance.incidents import Draft, Register
from compliance.incidents.facts import FACT_SOURCES, breach_facts
from compliance.settings import Settings


def overdue_breach(database: Any) -> str:
    """A breach the municipality became aware of four days ago, neither assessed nor notified."""
    aware_at = datetime.now(UTC) - timedelta(days=4)
    draft = Draft(title="Lost folder", description="A folder was left on the train.",
                  occurred_at=aware_at - timedelta(hours=5), aware_at=aware_at, nature=["confidentiality"],
                  data_categories=["health"], subjects=12)
    return Register(database, zone=ZoneInfo("Europe/Amsterdam")).register(draft, by="anna", now=aware_at).id


def test_the_breach_facts_hold_ids_times_and_clocks_only(database: Any) -> None:
    incident = overdue_breach(database)
    [breach] = breach_facts(database)["breaches"]
    assert (sorted(breach), breach["id"], breach["clock"], breach["assessed_at"]) == (
        ["assessed_at", "aware_at", "clock", "deadline", "id", "status", "withdrawn"], incident, "overdue", None)


@pytest.mark.parametrize(("sources", "status", "message"), [
    (FACT_SOURCES, "fail", "1 open breach(es) passed the 72-hour deadline without a notification or a decision "
                           "not to notify: {incident}."),
    (None, "error", "The breach register could not be read."),
])
def test_the_scan_gives_the_check_the_facts_its_caller_passed_in(
        database: Any, store: Any, sources: Any, status: str, message: str) -> None:
    incident = overdue_breach(database)
    control = Control.model_validate({"id": "AVG-33", "title": "Breaches are assessed in time",
                                      "theme": "organizational", "severity": "high",
                                      "checks": [{"plugin": "breach_register", "params": {}}]})
    settings = Settings.model_validate({"database": {"url": database.url}})
    [outcome] = run_scan([control], settings, store, fact_sources=sources).outcomes
    [(_, _, result)] = outcome.results
    assert (result.status.value, result.message) == (status, message.format(incident=incident))
