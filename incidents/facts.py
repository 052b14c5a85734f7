"""The breach register's facts for check plugins (`breaches`, read by the `breach_register` check).

Whoever starts a scan passes `FACT_SOURCES` to `compliance.engine.run_scan(..., fact_sources=...)`: the
engine sits below the register and does not import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compliance.db import Database
    from compliance.facts import FactSource

#: How far back the facts reach; more than the longest `lookback` a check needs (a year).
LOOKBACK = timedelta(days=400)


def breach_facts(database: Database) -> dict[str, Any]:
    """The breaches the municipality became aware of in the last 400 days, as counts, ids, times and clock
    states only: no personal data and no free text."""
    from compliance.incidents.register import load_incidents

    now = datetime.now(UTC)
    incidents = load_incidents(database, aware_from=now - LOOKBACK, now=now)
    return {"now": now.isoformat(), "breaches": [{
        "id": i.id, "status": i.status, "aware_at": i.aware_at.isoformat(),
        "deadline": i.deadline.isoformat(),
        "assessed_at": i.assessment.assessed_at.isoformat() if i.assessment else None,
        "clock": i.clock(now).state, "withdrawn": i.withdrawn,
    } for i in incidents]}


#: The register's fact sources by kind.
FACT_SOURCES: Mapping[str, FactSource] = {"breaches": breach_facts}
