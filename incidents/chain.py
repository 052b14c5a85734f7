"""The audit trail's chain: canonical JSON, HMAC-SHA256 (or SHA-256 before a key), checkpoints.

Every change to the register is an event (seq, incident, at, by, action, field, old, new). Its hash
covers the canonical JSON of those fields plus the previous event's hash (64 zeros for the first
event), so changing, removing or inserting an event breaks every hash after it. Values (old, new) are
stored as canonical JSON text and hashed as stored.

With an audit key (from COMPLIANCE_AUDIT_KEY or the 0600 file `incidents.audit_key_file`, never in
the database) an event's hash is an HMAC-SHA256 under that key and also covers the algorithm and the
key's id: someone who can write the database but does not hold the key cannot recompute it. Events
written before a key existed keep their plain SHA-256 ("unkeyed"); the first keyed event links to the
last of them, so from then on they cannot be rewritten unnoticed either. A checkpoint (the number of
events and the head hash, signed with the key) kept outside the database shows events removed from the
end, or a register emptied.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from compliance.errors import ComplianceError, display_path
from compliance.incidents.errors import InvalidInput

GENESIS = "0" * 64
#: The algorithm of a keyed event; an unkeyed event stores no algorithm (plain SHA-256).
HMAC_SHA256 = "hmac-sha256"
#: The environment variable that holds the audit key (wins over `incidents.audit_key_file`).
KEY_VARIABLE = "COMPLIANCE_AUDIT_KEY"
MIN_KEY_LENGTH = 32
CHECKPOINT_FORMAT = "compliance-audit-checkpoint/1"


class AuditKeyError(ComplianceError):
    """The audit key cannot be used: missing, too short, or in a file others can read."""


@dataclass(frozen=True, slots=True)
class AuditKey:
    """The secret of the keyed chain; `id` names it in events without revealing it."""

    secret: bytes
    source: str  # where it came from, for messages: the variable's name or the file's path

    def __repr__(self) -> str:
        return f"AuditKey(id={self.id}, source={self.source})"

    @property
    def id(self) -> str:
        return hmac.new(self.secret, b"compliance audit key id", hashlib.sha256).hexdigest()[:16]

    def sign(self, text: str) -> str:
        return hmac.new(self.secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


def _key_from_text(text: str, source: str) -> AuditKey:
    secret = text.strip()
    if len(secret) < MIN_KEY_LENGTH:
        raise AuditKeyError(f"{source}: the audit key is {len(secret)} characters long; it needs at least "
                            f"{MIN_KEY_LENGTH}. Generate one, e.g. `python -c 'import secrets; "
                            "print(secrets.token_hex(32))'`")
    return AuditKey(secret.encode("utf-8"), source)


def load_key(environ: Mapping[str, str], key_file: Path | None) -> AuditKey | None:
    """The audit key from the environment, else from the key file; None when neither is set.

    A key file that the group or others may read, or that is not a regular file, is refused.
    """
    if environ.get(KEY_VARIABLE, "").strip():
        return _key_from_text(environ[KEY_VARIABLE], KEY_VARIABLE)
    if key_file is None:
        return None
    shown = display_path(key_file)
    try:
        info = os.stat(key_file)
    except FileNotFoundError:
        raise AuditKeyError(f"{shown}: the audit key file (incidents.audit_key_file) does not exist. Restore it "
                            "from the backup, or set incidents.audit_key_file to where it is") from None
    except OSError as exc:
        raise AuditKeyError(f"{shown}: the audit key file cannot be read ({exc.strerror}). Check the path and "
                            "its permissions") from None
    if not stat.S_ISREG(info.st_mode):
        raise AuditKeyError(f"{shown}: the audit key file is not a regular file. Point incidents.audit_key_file "
                            "at the key file")
    if info.st_mode & 0o077:
        raise AuditKeyError(f"{shown}: the audit key file has mode {stat.S_IMODE(info.st_mode):04o}: others than "
                            f"its owner may read it. Make it private: `chmod 600 {shown}`")
    try:
        text = key_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditKeyError(f"{shown}: the audit key file cannot be read ({exc}). Check the file") from None
    return _key_from_text(text, shown)


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


def keyed_hash(key: AuditKey, *, seq: int, incident_id: str, at: datetime, by: str, action: str, field: str | None,
               old: str | None, new: str | None, prev_hash: str) -> str:
    """HMAC-SHA256 (hex) under the audit key of the canonical JSON of an event, its algorithm and key id,
    and the previous event's hash."""
    body = {"seq": seq, "incident": incident_id, "at": iso(at), "by": by, "action": action, "field": field,
            "old": old, "new": new, "prev": prev_hash, "alg": HMAC_SHA256, "key": key.id}
    return key.sign(canonical(body))


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
    alg: str | None
    key_id: str | None


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int
    incident_id: str
    message: str

    def __str__(self) -> str:
        return f"event {self.seq} ({self.incident_id}): {self.message}"


def check_chain(events: Iterable[EventLike], key: AuditKey | None = None) -> list[ChainProblem]:
    """Problems in a chain of events given in seq order; empty when every link holds.

    Reports each broken link; the first one is where the tampering starts. Keyed events are checked
    with `key` (the caller makes sure there is one); an unkeyed event after a keyed one is a problem,
    as a key is never given up.
    """
    problems = []
    expected_seq, prev = 1, GENESIS
    keyed_since: int | None = None
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
        fields: dict[str, Any] = dict(seq=event.seq, incident_id=event.incident_id, at=event.at, by=event.by,
                                      action=event.action, field=event.field, old=event.old, new=event.new,
                                      prev_hash=event.prev_hash)
        if event.alg is None and event.key_id is None:
            computed = event_hash(**fields)
            if keyed_since is not None:
                problems.append(ChainProblem(event.seq, event.incident_id,
                                             f"it is unkeyed although the chain is keyed since event {keyed_since}: "
                                             "it was written or rewritten without the audit key"))
        elif event.alg != HMAC_SHA256 or key is None or event.key_id != key.id:
            computed = None
            problems.append(ChainProblem(event.seq, event.incident_id,
                                         f"it names algorithm {event.alg!r} and key id {event.key_id!r}, not "
                                         f"{HMAC_SHA256!r} with the configured key ({key.id if key else 'none'}): "
                                         "the wrong audit key is configured, or the event was forged"))
        else:
            computed = keyed_hash(key, **fields)
            keyed_since = keyed_since or event.seq
        if computed is not None and not hmac.compare_digest(computed, event.hash):
            problems.append(ChainProblem(event.seq, event.incident_id,
                                         f"its content was altered after it was written ({event.action}"
                                         f"{' ' + event.field if event.field else ''} by {event.by}, "
                                         f"{iso(event.at)}): the stored hash does not match"))
        expected_seq, prev = event.seq + 1, event.hash
    return problems


# checkpoints ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How many events the trail held and its head hash at a moment, signed with the audit key (or not)."""

    events: int
    head: str
    at: datetime
    key_id: str | None = None
    signature: str | None = None

    def body(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "events": self.events, "head": self.head, "at": iso(self.at),
                "key_id": self.key_id}

    def as_json(self) -> dict[str, Any]:
        return {**self.body(), "hmac": self.signature}

    def text(self) -> str:
        return canonical(self.as_json())


def make_checkpoint(events: int, head: str, at: datetime, key: AuditKey | None) -> Checkpoint:
    unsigned = Checkpoint(events, head, at, key.id if key else None)
    if key is None:
        return unsigned
    return Checkpoint(events, head, at, key.id, key.sign(canonical(unsigned.body())))


def read_checkpoint(path: Path) -> Checkpoint:
    """A checkpoint file written by `incident verify` (the JSON object it prints)."""
    shown = display_path(path)
    fix = ("Give the file `compliance incident verify --save-checkpoint FILE` wrote, or the JSON object after "
           "'checkpoint:' in its output")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"{shown}: the checkpoint cannot be read ({exc.strerror}). {fix}") from None
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(f"{shown}:1: not a checkpoint of the audit trail (not JSON). {fix}") from None
    try:
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError
        events, head, key_id, signature = data["events"], data["head"], data["key_id"], data["hmac"]
        if not isinstance(events, int) or isinstance(events, bool) or events < 0 or not isinstance(head, str):
            raise ValueError
        if not all(v is None or isinstance(v, str) for v in (key_id, signature)):
            raise ValueError
        at = datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError, TypeError):
        raise InvalidInput(f"{shown}:1: not a checkpoint of the audit trail (format {CHECKPOINT_FORMAT} with "
                           f"events, head, at, key_id and hmac). {fix}") from None
    return Checkpoint(events, head, at, key_id, signature)


def signature_holds(checkpoint: Checkpoint, key: AuditKey) -> bool:
    expected = key.sign(canonical(Checkpoint(checkpoint.events, checkpoint.head, checkpoint.at,
                                             checkpoint.key_id).body()))
    return checkpoint.signature is not None and hmac.compare_digest(expected, checkpoint.signature)
