"""Attestations: evidence, recorded by a person, that a control is met until a date.

For what only people can show (a policy approved by the board, a yearly risk analysis, processor
agreements, a tested incident response plan). The `evidence` check plugin passes while the control's
newest attestation is valid; the core hands it that attestation as a fact (see compliance.facts).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compliance.api import file_sha256
from compliance.errors import ComplianceError, display_path

if TYPE_CHECKING:
    from compliance.db import Database


@dataclass(frozen=True, slots=True)
class AttestationView:
    id: int
    control_id: str
    attested_by: str
    evidence: str
    sha256: str | None
    copy_path: str | None
    valid_until: date
    note: str | None
    recorded_at: datetime
    recorded_by: str

    def days_left(self, today: date) -> int:
        return (self.valid_until - today).days

    def as_fact(self) -> dict[str, Any]:
        """The attestation as plain data for a check plugin."""
        return {"id": self.id, "by": self.attested_by, "evidence": self.evidence, "sha256": self.sha256,
                "valid_until": self.valid_until.isoformat(), "recorded_at": self.recorded_at.isoformat(),
                "note": self.note}


def is_url(evidence: str) -> bool:
    return evidence.split(":", 1)[0].lower() in ("http", "https") and "://" in evidence


def record(
    db: Database, control_id: str, *, by: str, evidence: str, valid_until: date, recorded_by: str,
    note: str | None = None, copy_to: Path | None = None, today: date | None = None,
) -> AttestationView:
    """Record an attestation. A file is hashed (and copied into `copy_to` when given); a URL is kept as is."""
    from compliance.db.models import Attestation

    if not by.strip():
        raise ComplianceError("an attestation needs the name of who vouches for it (--by)")
    if today is not None and valid_until < today:
        raise ComplianceError(f"--valid-until {valid_until.isoformat()} lies in the past; evidence must be "
                              "valid today or later")
    sha256 = copy_path = None
    if not is_url(evidence):
        path = Path(evidence).expanduser()
        if not path.is_file():
            raise ComplianceError(f"evidence file {display_path(path)} does not exist or is not a file; give an "
                                  "existing file or an http(s) URL")
        evidence = str(path.resolve())
        sha256 = file_sha256(path)
        if copy_to is not None:
            copy_path = str(_store_copy(path, copy_to, sha256))
    elif copy_to is not None:
        raise ComplianceError("--copy works for files only; a URL is recorded as it is")
    with db.transaction() as session:
        row = Attestation(control_id=control_id, attested_by=by.strip(), evidence=evidence, sha256=sha256,
                          copy_path=copy_path, valid_until=valid_until, note=note or None,
                          recorded_at=datetime.now(UTC), recorded_by=recorded_by)
        session.add(row)
        session.flush()
        return _view(row)


def _store_copy(path: Path, store: Path, sha256: str) -> Path:
    """Copy path into the evidence store, readable by the monitor's user only, like its database.

    The store gets mode 0700 and each copy 0600, also a copy made earlier: evidence (processor
    agreements, risk analyses) is often confidential, and copy2 would keep the source's 0644.
    """
    target = store / f"{sha256[:16]}-{path.name}"
    try:
        store.mkdir(mode=0o700, parents=True, exist_ok=True)
        store.chmod(0o700)
        if not target.exists():
            shutil.copy2(path, target)
        target.chmod(0o600)
    except OSError as exc:
        raise ComplianceError(f"cannot copy {display_path(path)} into the evidence store {display_path(store)}: "
                              f"{exc.strerror or exc}; check evidence.store and its owner") from exc
    return target


def latest(db: Database, control_ids: list[str] | None = None) -> dict[str, AttestationView]:
    """The newest attestation per control (optionally only for the given controls)."""
    from sqlalchemy import select

    from compliance.db.models import Attestation

    stmt = select(Attestation).order_by(Attestation.control_id, Attestation.recorded_at, Attestation.id)
    if control_ids is not None:
        stmt = stmt.where(Attestation.control_id.in_(control_ids))
    newest: dict[str, AttestationView] = {}
    with db.sessions() as session:
        for row in session.scalars(stmt):
            newest[row.control_id] = _view(row)
    return newest


def history(db: Database) -> list[AttestationView]:
    from sqlalchemy import select

    from compliance.db.models import Attestation

    with db.sessions() as session:
        return [_view(r) for r in session.scalars(select(Attestation).order_by(Attestation.recorded_at))]


def local_today(zone: tzinfo) -> date:
    return datetime.now(UTC).astimezone(zone).date()


def _view(row: Any) -> AttestationView:
    return AttestationView(row.id, row.control_id, row.attested_by, row.evidence, row.sha256, row.copy_path,
                           row.valid_until, row.note, row.recorded_at, row.recorded_by)
