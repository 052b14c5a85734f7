"""Seeding a known history for report tests: scans run through the real engine, then moved back in time.

The engine and the store stamp everything with the current time. `History.scan(when, ...)` runs a real
scan (the `probe` plugin decides each target's outcome) and then moves every time that scan wrote to
`when` exactly, so tests can assert exact times. Scans must be seeded in time order and in the past.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from compliance.catalog import Control
from compliance.db import Database
from compliance.db.models import CheckResultRow, ControlRow, Finding, FindingChange, Scan
from compliance.engine import run_scan
from compliance.settings import Settings
from compliance.store import Store


@dataclass(frozen=True, eq=False)  # hashed by identity: a spec is a key of a scan's plan
class Spec:
    """A probe control: its id, theme, severity and the outcome per target."""

    id: str
    theme: str = "technological"
    severity: str = "high"
    owner: str | None = None
    schedule: str | None = None
    title: str | None = None
    references: dict[str, Any] | None = None

    def control(self, outcomes: dict[str, str]) -> Control:
        return Control.model_validate({
            "id": self.id, "title": self.title or f"Control {self.id}", "theme": self.theme,
            "severity": self.severity, "owner": self.owner, "schedule": self.schedule,
            "references": self.references or {},
            "checks": [{"plugin": "probe", "params": {},
                        "targets": [{"name": name, "outcome": outcome} for name, outcome in outcomes.items()]}],
        })


class History:
    def __init__(self, database: Database, store: Store) -> None:
        self.database = database
        self.store = store
        self.settings = Settings.model_validate({"database": {"url": database.url}})

    def scan(self, when: datetime, controls: dict[Spec, dict[str, str]]) -> int:
        """Scan the controls (spec -> {target: outcome}) as if at `when`; return the scan id."""
        report = run_scan([spec.control(outcomes) for spec, outcomes in controls.items()], self.settings,
                          self.store)
        self._move(report.scan_id, when)
        return report.scan_id

    def _move(self, scan_id: int, when: datetime) -> None:
        with self.database.transaction() as session:
            scan = session.get_one(Scan, scan_id)
            real, when = scan.started_at, when.astimezone(UTC)

            def moved(value: datetime | None) -> datetime | None:
                return when if value is not None and value >= real else value

            scan.started_at, scan.finished_at = when, moved(scan.finished_at)
            for row in session.scalars(select(CheckResultRow).where(CheckResultRow.scan_id == scan_id)):
                row.started_at = moved(row.started_at)  # type: ignore[assignment]
            for change in session.scalars(select(FindingChange).where(FindingChange.scan_id == scan_id)):
                change.at = moved(change.at)  # type: ignore[assignment]
            for finding in session.scalars(select(Finding)):
                finding.first_seen, finding.last_seen = moved(finding.first_seen), moved(finding.last_seen)  # type: ignore[assignment]
                finding.resolved_at = moved(finding.resolved_at)
            for control in session.scalars(select(ControlRow)):
                control.last_evaluated_at = moved(control.last_evaluated_at)
                control.synced_at = moved(control.synced_at)  # type: ignore[assignment]

    def deactivate(self, control_id: str) -> None:
        with self.database.transaction() as session:
            session.execute(update(ControlRow).where(ControlRow.id == control_id).values(active=False))
