"""Facts: data from the monitor's own database that the core hands to check plugins.

A plugin lists the facts it needs in `Check.facts`; before the scan the engine gathers them per control
and puts them in the task, so the plugin finds them in `ctx.facts` and never opens the database (and
the task can run on a worker in another network zone).

- `attestation`: the control's newest attestation (`None` when there is none), and `today`, the date
  in the configured time zone.

Other kinds come from higher layers as fact sources, passed in by whoever starts the scan (the scan
command, the scheduler): `breaches` from the breach register (`compliance.incidents.facts`). A kind
that no source gathers is left out, and the plugin reports that it could not read it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compliance.db import Database
    from compliance.evidence import AttestationView

#: Gathers one kind of fact for a whole scan from the database; called at most once per scan.
FactSource = Callable[["Database"], Any]


class FactGatherer:
    """Gathers facts for one scan, reading each kind from the database once."""

    def __init__(self, db: Database, zone: tzinfo, sources: Mapping[str, FactSource] | None = None) -> None:
        self.db = db
        self.zone = zone
        self.sources = dict(sources or {})
        self._attestations: dict[str, AttestationView] | None = None
        self._gathered: dict[str, Any] = {}

    def __call__(self, kinds: tuple[str, ...], control_id: str) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        for kind in kinds:
            if kind == "attestation":
                facts[kind] = self._attestation(control_id)
            elif kind in self.sources:
                if kind not in self._gathered:
                    self._gathered[kind] = self.sources[kind](self.db)
                facts[kind] = self._gathered[kind]
        return facts

    def _attestation(self, control_id: str) -> dict[str, Any]:
        from compliance import evidence

        if self._attestations is None:
            self._attestations = evidence.latest(self.db)
        found = self._attestations.get(control_id)
        return {"latest": found.as_fact() if found else None,
                "today": evidence.local_today(self.zone).isoformat()}
