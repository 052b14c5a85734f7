"""Applicability, coverage and the statement of applicability (Verklaring van Toepasselijkheid, VvT).

BIO2 requires every organisation to keep a VvT and publish it with the scope of its ISMS: for every
ISO/IEC 27002:2022 control and BIO2 measure, whether it applies and why not, how it is covered and how
it stands. Decisions are kept in the database (who, when, why; the newest per subject counts).

A subject is an ISO/IEC 27002:2022 control number ("7.4"), a BIO2 measure number ("7.04.01") or the id
of a control in the catalog. A catalog control drops out of the compliance score when it is marked not
applicable itself, or when every ISO control it refers to is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from compliance.errors import ComplianceError, did_you_mean

if TYPE_CHECKING:
    from compliance.catalog import Catalog, Control
    from compliance.db import Database

_NUMBER = re.compile(r"^([5-8])\.(\d{1,2})(?:\.(\d{1,2}))?$")


@dataclass(frozen=True, slots=True)
class Decision:
    subject: str
    applies: bool
    reason: str
    decided_by: str
    decided_at: datetime


def normalize_subject(subject: str, control_ids: Iterable[str]) -> str:
    """The canonical form of a subject ("7.04" -> "7.4", "7.4.1" -> "7.04.01"), checked to exist."""
    from compliance.frameworks import load

    bio2 = load("bio2")
    ids = list(control_ids)
    if subject in ids:
        return subject
    match = _NUMBER.match(subject.strip())
    if match:
        theme, control, measure = match.groups()
        number = f"{int(theme)}.{int(control)}"
        requirement = bio2.get(number)
        if requirement is None:
            raise ComplianceError(f"ISO/IEC 27002:2022 has no control {number}")
        if measure is None:
            return number
        code = f"{int(theme)}.{int(control):02d}.{int(measure):02d}"
        if code not in requirement.measures:
            raise ComplianceError(f"BIO2 has no measure {code}; the measures of {number} are: "
                                  f"{', '.join(requirement.measures) or 'none'}")
        return code
    hint = did_you_mean(subject, ids)
    raise ComplianceError(f"'{subject}' is neither an ISO/IEC 27002:2022 control number (e.g. 7.4), a BIO2 "
                          "measure (e.g. 7.04.01) nor a control id" + (f"; {hint}" if hint else ""))


def decide(db: Database, subject: str, *, applies: bool, reason: str, by: str) -> Decision:
    """Record whether a subject applies. Saying it does not apply needs a reason."""
    from compliance.db.models import ApplicabilityDecision

    if not applies and not reason.strip():
        raise ComplianceError("a control that does not apply needs a reason (--reason); auditors read it in the VvT")
    with db.transaction() as session:
        row = ApplicabilityDecision(subject=subject, applies=applies, reason=reason.strip(), decided_by=by,
                                    decided_at=datetime.now(UTC))
        session.add(row)
        session.flush()
        return Decision(row.subject, row.applies, row.reason, row.decided_by, row.decided_at)


def decisions(db: Database) -> dict[str, Decision]:
    """The newest decision per subject."""
    return {d.subject: d for d in history(db)}


def history(db: Database) -> list[Decision]:
    from sqlalchemy import select

    from compliance.db.models import ApplicabilityDecision

    stmt = select(ApplicabilityDecision).order_by(ApplicabilityDecision.decided_at, ApplicabilityDecision.id)
    with db.sessions() as session:
        return [Decision(r.subject, r.applies, r.reason, r.decided_by, r.decided_at) for r in session.scalars(stmt)]


def not_applicable_reason(control_id: str, references: Mapping[str, Any], found: Mapping[str, Decision]) -> str:
    """Why a catalog control does not apply ('' when it applies)."""
    from compliance.frameworks import requirements_of

    own = found.get(control_id)
    if own is not None:
        return "" if own.applies else own.reason
    numbers = requirements_of(dict(references), "bio2")
    if numbers and all(n in found and not found[n].applies for n in numbers):
        return "; ".join(f"{n}: {found[n].reason}" for n in sorted(numbers))
    return ""


def not_applicable_control_ids(db: Database) -> set[str]:
    """Ids of the controls (as stored from the catalog) that drop out of the compliance score."""
    from sqlalchemy import select

    from compliance.db.models import ControlRow

    found = decisions(db)
    if not found:
        return set()
    with db.sessions() as session:
        rows = session.execute(select(ControlRow.id, ControlRow.references)).all()
    return {cid for cid, refs in rows if not_applicable_reason(cid, refs or {}, found)}


# -- coverage ------------------------------------------------------------------------------------------


def control_kind(control: Control) -> str:
    """`evidence` when a control is only shown by attestations, else `automated`."""
    return "evidence" if all(spec.plugin == "evidence" for spec in control.checks) else "automated"


@dataclass
class CoverageGroup:
    group: str
    requirements: int = 0
    automated: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    not_applicable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "requirements": self.requirements, "automated": len(self.automated),
                "evidence": len(self.evidence), "missing": len(self.missing),
                "not_applicable": len(self.not_applicable), "missing_numbers": self.missing,
                "not_applicable_numbers": self.not_applicable}


def covering(catalog: Catalog, framework: str) -> dict[str, list[Control]]:
    """Per requirement number, the enabled catalog controls that refer to it."""
    from compliance.frameworks import requirements_of

    found: dict[str, list[Control]] = {}
    for control in catalog:
        if control.enabled:
            for number in requirements_of(control.references, framework):
                found.setdefault(number, []).append(control)
    return found


def coverage(catalog: Catalog, framework: str, found: Mapping[str, Decision] | None = None) -> list[CoverageGroup]:
    """Per group (theme), how many requirements the catalog covers automatically, by evidence, or not."""
    from compliance.frameworks import load

    spec = load(framework)
    by_number = covering(catalog, framework)
    groups = {g: CoverageGroup(g) for g in spec.groups}
    for requirement in spec.requirements:
        group = groups[requirement.group]
        group.requirements += 1
        decision = (found or {}).get(requirement.number)
        if decision is not None and not decision.applies:
            group.not_applicable.append(requirement.number)
        controls = by_number.get(requirement.number, [])
        kinds = {control_kind(c) for c in controls}
        if "automated" in kinds:
            group.automated.append(requirement.number)
        elif kinds:
            group.evidence.append(requirement.number)
        else:
            group.missing.append(requirement.number)
    return list(groups.values())


# -- statement of applicability ------------------------------------------------------------------------


@dataclass
class SoaRow:
    number: str
    title: str
    theme: str
    measures: list[str]
    applies: bool
    reason: str
    decided_by: str | None
    decided_at: datetime | None
    measures_not_applicable: dict[str, str]
    coverage: str  # automated | evidence | none
    controls: list[str]
    status: str  # the worst of its controls: fail, error, accepted, not evaluated, skipped, pass; none

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "title": self.title, "theme": self.theme, "measures": self.measures,
                "applicable": self.applies, "reason": self.reason, "decided_by": self.decided_by,
                "decided_at": self.decided_at, "measures_not_applicable": self.measures_not_applicable,
                "coverage": self.coverage, "controls": self.controls, "status": self.status}


_STATUS_ORDER = ("fail", "error", "accepted", "not evaluated", "skipped", "pass")


def statement(catalog: Catalog, db: Database, lang: str = "en") -> list[SoaRow]:
    """The VvT: every ISO/IEC 27002:2022 control with its BIO2 measures, applicability, coverage, status."""
    from compliance.frameworks import load

    found = decisions(db)
    states = control_states(db)
    by_number = covering(catalog, "bio2")
    rows = []
    for requirement in load("bio2").requirements:
        decision = found.get(requirement.number)
        controls = by_number.get(requirement.number, [])
        kinds = {control_kind(c) for c in controls}
        statuses = [states.get(c.id, "not evaluated") for c in controls]
        status = next((s for s in _STATUS_ORDER if s in statuses), "none")
        rows.append(SoaRow(
            requirement.number, requirement.label(lang), requirement.group, list(requirement.measures),
            decision.applies if decision else True, decision.reason if decision else "",
            decision.decided_by if decision else None, decision.decided_at if decision else None,
            {m: found[m].reason for m in requirement.measures if m in found and not found[m].applies},
            "automated" if "automated" in kinds else "evidence" if kinds else "none",
            [c.id for c in controls], status,
        ))
    return rows


def control_states(db: Database) -> dict[str, str]:
    """The current state per control: pass, fail, accepted (failing, all covered by exceptions), error,
    skipped, or not evaluated."""
    from sqlalchemy import select

    from compliance.db.models import ControlRow
    from compliance.store import Store

    open_findings = {f.control_id for f in Store(db).findings("open")}
    with db.sessions() as session:
        rows = session.execute(select(ControlRow.id, ControlRow.last_status)).all()
    states = {}
    for cid, status in rows:
        if status is None:
            states[cid] = "not evaluated"
        elif status == "fail" and cid not in open_findings:
            states[cid] = "accepted"
        else:
            states[cid] = status
    return states
