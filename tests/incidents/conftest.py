"""Helpers for the breach-register tests: a project with the register's settings, and row counts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from compliance.incidents import Draft
from tests.conftest import Project

INCIDENT_SETTINGS = """\
incidents:
  organisation: Gemeente Voorbeeld
  reporter: {name: A. de Vries, function: Privacy officer, phone: "+31 20 123 4567"}
  contact: {name: B. Jansen, function: Functionaris gegevensbescherming, phone: "+31 20 123 4568",
            email: fg@gemeente.example}
"""

#: A misaddressed benefit letter (the issue's story), every required field as a flag, in the past.
LETTER = ("--title", "Benefit decision sent to a wrong address", "--aware-at", "2025-03-07 16:40",
          "--occurred-at", "2025-03-06 09:00", "--discovered-at", "2025-03-07 16:30", "--nature", "confidentiality",
          "--data-category", "social-welfare", "--data-category", "contact", "--subjects", "1", "--records", "1",
          "--people", "residents", "--description", "A letter with a benefit decision went to a wrong address.")


@pytest.fixture
def register_project(project: Project) -> Project:
    project.write_config(INCIDENT_SETTINGS)
    return project


def count(db_url: str, model: Any) -> int:
    from compliance.db import Database

    db = Database(db_url)
    try:
        with db.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        db.close()


def stored(db_url: str) -> tuple[int, int, int]:
    """How many incidents, events and notifications the register holds."""
    from compliance.db.models import IncidentEvent, IncidentNotification, IncidentRow

    return count(db_url, IncidentRow), count(db_url, IncidentEvent), count(db_url, IncidentNotification)


def ok(result: Any) -> Any:
    """The JSON a successful command printed (fails with its stderr otherwise)."""
    assert result.exit_code == 0, result.stderr or result.stdout
    return json.loads(result.stdout)


def new_letter(project: Project, *extra: str) -> str:
    return str(ok(project.run("incident", "new", *LETTER, *extra, "--format", "json", "--by", "anna"))["id"])


def draft(aware_at: datetime, **changes: Any) -> Draft:
    """A breach's facts as a test registers them, aware at aware_at; CHANGES replace single facts."""
    facts: dict[str, Any] = {
        "title": "Lost folder with WMO applications", "description": "A folder was left on the train.",
        "occurred_at": aware_at - timedelta(hours=5), "aware_at": aware_at, "nature": ["confidentiality"],
        "data_categories": ["health"], "subjects": 12}
    return Draft(**{**facts, **changes})
