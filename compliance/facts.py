"""Facts: data from the monitor's own database that the core hands to check plugins.

A plugin lists the facts it needs in `Check.facts`; before the scan the engine gathers them per control
and puts them in the task, so the plugin finds them in `ctx.facts` and never opens the database (and
the task can run on a worker in another network zone).

- `attestation`: the control's newest attestation (`None` when there is none), and `today`, the date
  in the configured time zone.
- `breaches`: the breaches of the register that the municipality became aware of in the last 400
  days, as counts, ids, times and clock states only: no personal data and no free text.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compliance.db import Database
    from compliance.evidence import AttestationView


class FactGatherer:
    """Gathers facts for one scan, reading each kind from the database once."""

    def __init__(self, db: Database, zone: tzinfo) -> None:
        self.db = db
        self.zone = zone
        self._attestations: dict[str, AttestationView] | None = None
        self._breaches: dict[str, Any] | None = None

    def __call__(self, kinds: tuple[str, ...], control_id: str) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        for kind in kinds:
            if kind == "attestation":
                facts[kind] = self._attestation(control_id)
            elif kind == "breaches":
                facts[kind] = self._breach_facts()
        return facts

    def _breach_facts(self) -> dict[str, Any]:
        from datetime import UTC, datetime, timedelta

        from compliance.incidents.register import load_incidents

        if self._breaches is None:
            now = datetime.now(UTC)
            incidents = load_incidents(self.db, aware_from=now - timedelta(days=400), now=now)
            self._breaches = {"now": now.isoformat(), "breaches": [{
                "id": i.id, "status": i.status, "aware_at": i.aware_at.isoformat(),
                "deadline": i.deadline.isoformat(),
                "assessed_at": i.assessment.assessed_at.isoformat() if i.assessment else None,
                "clock": i.clock(now).state, "withdrawn": i.withdrawn,
            } for i in incidents]}
        return self._breaches

    def _attestation(self, control_id: str) -> dict[str, Any]:
        from compliance import evidence

        if self._attestations is None:
            self._attestations = evidence.latest(self.db)
        found = self._attestations.get(control_id)
        return {"latest": found.as_fact() if found else None,
                "today": evidence.local_today(self.zone).isoformat()}
