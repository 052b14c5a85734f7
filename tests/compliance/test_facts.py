"""Facts for plugins: the kinds this layer gathers itself, and the fact sources a caller passes in."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from compliance.facts import FactGatherer


def test_a_fact_source_is_read_once_per_scan_and_only_for_a_kind_asked_for(database: Any) -> None:
    calls: list[Any] = []

    def counted(db: Any) -> dict[str, int]:
        calls.append(db)
        return {"calls": len(calls)}

    gather = FactGatherer(database, ZoneInfo("Europe/Amsterdam"), {"counted": counted})
    facts = [gather(("counted",), "A"), gather(("counted",), "B"), gather(("unknown",), "C"), gather((), "D")]
    assert (facts, calls) == ([{"counted": {"calls": 1}}, {"counted": {"calls": 1}}, {}, {}], [database])
