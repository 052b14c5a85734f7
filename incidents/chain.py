"""The audit trail's hash chain: canonical JSON, SHA-256, and checking a sequence of events.

Every change to the register is an event (seq, incident, at, by, action, field, old, new). Its hash is
SHA-256 over the canonical JSON of those fields plus the previous event's hash (64 zeros for the first
event), so changing, removing or inserting an event breaks every hash after it. Values (old, new) are
stored as canonical JSON text and hashed as stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

GENESIS = "0" * 64


def canonical(value: Any) -> str:
    """JSON with sorted keys, no spaces and UTF-8 text: one spelling per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(value: Any) -> str | None:
    """A value as stored in an event (canonical JSON), or None for no value."""
    return None if value is None else canonical(value)


def decode(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def iso(moment: datetime | None) -> str | None:
    """A moment in UTC with microseconds, e.g. 2026-11-27T15:40:00.000000Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(*, seq: int, incident_id: str, at: datetime, by: str, action: str, field: str | None,
               old: str | None, new: str | None, prev_hash: str) -> str:
    """SHA-256 (hex) of the canonical JSON of an event including the previous event's hash."""
    body = {"seq": seq, "incident": incident_id, "at": iso(at), "by": by, "action": action, "field": field,
            "old": old, "new": new, "prev": prev_hash}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


class EventLike(Protocol):
    seq: int
    incident_id: str
    at: datetime
    by: str
    action: str
    field: str | None
    old: str | None
    new: str | None
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int
    incident_id: str
    message: str

    def __str__(self) -> str:
        return f"event {self.seq} ({self.incident_id}): {self.message}"


def check_chain(events: Iterable[EventLike]) -> list[ChainProblem]:
    """Problems in a chain of events given in seq order; empty when every link holds.

    Reports each broken link; the first one is where the tampering starts.
    """
    problems = []
    expected_seq, prev = 1, GENESIS
    for event in events:
        if event.seq != expected_seq:
            problems.append(ChainProblem(event.seq, event.incident_id,
                                         f"expected event {expected_seq} here: events "
                                         f"{expected_seq}-{event.seq - 1} are missing" if event.seq > expected_seq
                                         else f"expected event {expected_seq} here: the numbering was changed"))
        if event.prev_hash != prev:
            problems.append(ChainProblem(event.seq, event.incident_id,
                                         "its link to the previous event does not match (an event before it was "
                                         "removed, inserted or altered)"))
        computed = event_hash(seq=event.seq, incident_id=event.incident_id, at=event.at, by=event.by,
                              action=event.action, field=event.field, old=event.old, new=event.new,
                              prev_hash=event.prev_hash)
        if computed != event.hash:
            problems.append(ChainProblem(event.seq, event.incident_id,
                                         f"its content was altered after it was written ({event.action}"
                                         f"{' ' + event.field if event.field else ''} by {event.by}, "
                                         f"{iso(event.at)}): the stored hash does not match"))
        expected_seq, prev = event.seq + 1, event.hash
    return problems
