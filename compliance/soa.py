"""Applicability, coverage and the statement of applicability (Verklaring van Toepasselijkheid, VvT).

BIO2 requires every organisation to keep a VvT and publish it with the scope of its ISMS: for every
ISO/IEC 27002:2022 control and BIO2 measure, whether it applies and why not, how it is covered and how
it stands. Decisions are kept in the database (who, when, why; the newest per subject counts).

A subject is an ISO/IEC 27002:2022 control number ("7.4"), a BIO2 measure number ("7.04.01") or the id
of a control in the catalog. A BIO2 measure does not apply when it is marked so itself, or when its ISO
control is and the measure has no decision of its own (`measure_decision`). A catalog control drops out
of the compliance score when it is marked not applicable itself, or when every BIO2 subject it refers to
(an ISO control, or a measure by the rule before) does not apply.

Coverage is counted per BIO2 measure (`measure_coverage`): a measure is covered by the enabled controls
whose references name it (an ISO control number names none of its measures), `automated` when one of
them has a check other than `evidence`, `evidence` when they only have evidence checks, `none` without
a control. A control marked not applicable by its id covers nothing. Given the configured target groups
(`Settings.targets`), only checks that will run count: a check on a group without targets runs nothing,
so a control with evidence and such a check is `evidence`, and one with only such checks covers nothing
(`control_kind`: `unconfigured`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

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
    risk_analysis: str | None = None  # the reference of the risk analysis behind it


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


def decide(db: Database, subject: str, *, applies: bool, reason: str, by: str,
           risk_analysis: str | None = None) -> Decision:
    """Record whether a subject applies. Saying it does not apply needs a reason; `risk_analysis` is the
    reference of the risk analysis behind it, for the ENSIA annex of deviations."""
    from compliance.db.models import ApplicabilityDecision

    if not applies and not reason.strip():
        raise ComplianceError("a control that does not apply needs a reason (--reason); auditors read it in the VvT")
    with db.transaction() as session:
        row = ApplicabilityDecision(subject=subject, applies=applies, reason=reason.strip(), decided_by=by,
                                    decided_at=datetime.now(UTC), risk_analysis=(risk_analysis or "").strip() or None)
        session.add(row)
        session.flush()
        return Decision(row.subject, row.applies, row.reason, row.decided_by, row.decided_at, row.risk_analysis)


def decisions(db: Database) -> dict[str, Decision]:
    """The newest decision per subject."""
    return {d.subject: d for d in history(db)}


def history(db: Database) -> list[Decision]:
    """Every decision, oldest first (read with Core: no ORM)."""
    from sqlalchemy import select

    from compliance.db.schema import applicability

    a = applicability.c
    stmt = select(a.subject, a.applies, a.reason, a.decided_by, a.decided_at, a.risk_analysis).order_by(
        a.decided_at, a.id)
    with db.engine.connect() as connection:
        return [Decision(*r) for r in connection.execute(stmt).all()]


def not_applicable_reason(control_id: str, references: Mapping[str, Any], found: Mapping[str, Decision]) -> str:
    """Why a catalog control does not apply ('' when it applies)."""
    from compliance.frameworks import measures_of, requirements_of

    own = found.get(control_id)
    if own is not None:
        return "" if own.applies else own.reason
    refs = dict(references)
    measures = measures_of(refs)
    # an ISO control stands for itself only where the control names none of its measures
    numbers = requirements_of(refs, "bio2") - {_iso_of(m) for m in measures}
    ruling = {n: found.get(n) for n in numbers} | {m: measure_decision(m, found) for m in measures}
    if ruling and all(d is not None and not d.applies for d in ruling.values()):
        return "; ".join(f"{n}: {d.reason}" for n, d in sorted(ruling.items()) if d is not None)
    return ""


def _iso_of(measure: str) -> str:
    theme, control, _ = measure.split(".")
    return f"{int(theme)}.{int(control)}"


def measure_decision(number: str, found: Mapping[str, Decision]) -> Decision | None:
    """The decision that rules a BIO2 measure: its own, else its ISO control's (None: it applies)."""
    return found.get(number) or found.get(_iso_of(number))


def not_applicable_control_ids(db: Database) -> set[str]:
    """Ids of the controls (as stored from the catalog) that drop out of the compliance score."""
    from sqlalchemy import select

    from compliance.db.schema import controls

    found = decisions(db)
    if not found:
        return set()
    with db.engine.connect() as connection:
        rows = connection.execute(select(controls.c.id, controls.c.references)).all()
    return {cid for cid, refs in rows if not_applicable_reason(cid, refs or {}, found)}


# -- coverage ------------------------------------------------------------------------------------------


#: Target groups as configured (`Settings.targets`): group name -> its targets. None: not known (the
#: catalog alone decides, as for a caller without a configuration).
Groups: TypeAlias = Mapping[str, list[Any]] | None


class CheckLike(Protocol):
    """What the coverage reads of a check: a `CheckSpec`, or a check of a control listed from the cache
    (`compliance.catalog.listing.ListedCheck`)."""

    @property
    def plugin(self) -> str: ...

    @property
    def targets(self) -> str | Sequence[Any] | None: ...


class ChecksLike(Protocol):
    """What the coverage reads of a control: its checks (a `Control`, or a `Listed` control)."""

    @property
    def checks(self) -> Sequence[CheckLike]: ...


def check_runs(spec: CheckLike, groups: Groups) -> bool:
    """Whether a check will run at a scan: it has no `targets`, an inline list that is not empty, or names
    a group that has targets in `groups`. Without `groups` (None) every check counts as running."""
    if groups is None or spec.targets is None:
        return True
    if isinstance(spec.targets, str):
        return bool(groups.get(spec.targets))
    return bool(spec.targets)


def unconfigured_groups(control: ChecksLike, groups: Groups) -> list[str]:
    """The target groups named by the control's checks that have no targets in `groups` (empty or not
    defined), sorted: those checks do not run. Empty without `groups`."""
    if groups is None:
        return []
    return sorted({spec.targets for spec in control.checks
                   if isinstance(spec.targets, str) and not check_runs(spec, groups)})


def control_kind(control: ChecksLike, groups: Groups = None) -> str:
    """How a control is shown at a scan: `automated` when one of its checks other than `evidence` runs,
    `evidence` when only its evidence checks (attestations) do, `unconfigured` when none of its checks
    runs because each one's target group is empty (it is then skipped: it covers nothing).

    A check on a target group runs only when the group has targets (`check_runs`), so `groups` are the
    configured target groups (`Settings.targets`). Without them (None) the catalog alone decides:
    `evidence` when every check is an evidence check, else `automated`; never `unconfigured`.
    """
    if groups is None:
        return "evidence" if all(spec.plugin == "evidence" for spec in control.checks) else "automated"
    running = [spec for spec in control.checks if check_runs(spec, groups)]
    if any(spec.plugin != "evidence" for spec in running):
        return "automated"
    return "evidence" if running else "unconfigured"


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


def coverage(catalog: Catalog, framework: str, found: Mapping[str, Decision] | None = None,
             groups: Groups = None) -> list[CoverageGroup]:
    """Per group (theme), how many requirements the catalog covers automatically, by evidence, or not.

    `groups` are the configured target groups (see `control_kind`): a requirement whose controls' checks
    do not run for lack of targets is missing."""
    from compliance.frameworks import load

    spec = load(framework)
    by_number = covering(catalog, framework)
    themes = {g: CoverageGroup(g) for g in spec.groups}
    for requirement in spec.requirements:
        group = themes[requirement.group]
        group.requirements += 1
        decision = (found or {}).get(requirement.number)
        if decision is not None and not decision.applies:
            group.not_applicable.append(requirement.number)
        controls = by_number.get(requirement.number, [])
        kind = coverage_kind(controls, groups)
        if kind == "automated":
            group.automated.append(requirement.number)
        elif kind == "evidence":
            group.evidence.append(requirement.number)
        else:
            group.missing.append(requirement.number)
    return list(themes.values())


# -- coverage per BIO2 measure -------------------------------------------------------------------------

#: Worst first: the status of a measure (or an ISO control) is the first of these among its controls'.
_STATUS_ORDER = ("fail", "error", "accepted", "not evaluated", "none", "skipped", "pass")
_KIND_ORDER = ("none", "evidence", "automated")


def worst_status(statuses: Iterable[str]) -> str:
    """The worst of some statuses by `_STATUS_ORDER`; `none` when there are none."""
    seen = set(statuses)
    return next((s for s in _STATUS_ORDER if s in seen), "none")


def coverage_kind(controls: Iterable[Control], groups: Groups = None) -> str:
    """`automated` when one of the controls has a check other than evidence (that runs, with `groups`:
    see `control_kind`), `evidence` when they only have evidence checks (that run), `none` without
    controls or when none of their checks runs."""
    kinds = {control_kind(c, groups) for c in controls}
    return "automated" if "automated" in kinds else "evidence" if "evidence" in kinds else "none"


def _counting(catalog: Catalog, found: Mapping[str, Decision]) -> list[Control]:
    """The enabled controls, less those marked not applicable by their own id."""
    return [c for c in catalog if c.enabled and not (c.id in found and not found[c.id].applies)]


def covering_measures(catalog: Catalog, found: Mapping[str, Decision]) -> dict[str, list[Control]]:
    """Per BIO2 measure number, the counting controls whose references name it."""
    from compliance.frameworks import measures_of

    by_measure: dict[str, list[Control]] = {}
    for control in _counting(catalog, found):
        for number in measures_of(control.references):
            by_measure.setdefault(number, []).append(control)
    return by_measure


def covering_iso(catalog: Catalog, found: Mapping[str, Decision]) -> dict[str, list[Control]]:
    """Per ISO control number, the counting controls that refer to it as a whole: not only through the
    ISO number beside one of its measures."""
    from compliance.frameworks import measures_of, requirements_of

    by_number: dict[str, list[Control]] = {}
    for control in _counting(catalog, found):
        through_measure = {_iso_of(m) for m in measures_of(control.references)}
        for number in requirements_of(control.references, "bio2") - through_measure:
            by_number.setdefault(number, []).append(control)
    return by_number


@dataclass
class MeasureCoverage:
    """One BIO2 government measure: how it is covered, whether it applies, how it stands."""

    number: str
    control: str  # the ISO/IEC 27002:2022 control it belongs to
    title: str
    theme: str
    hygiene: tuple[str, ...]
    cbw: bool | None
    coverage: str  # automated | evidence | none
    controls: list[str]
    applies: bool
    reason: str
    decided_by: str | None
    decided_at: datetime | None
    status: str  # the worst of its controls' (see `_STATUS_ORDER`); none without controls

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "control": self.control, "title": self.title, "theme": self.theme,
                "hygiene": list(self.hygiene), "cbw": self.cbw, "coverage": self.coverage,
                "controls": self.controls, "applicable": self.applies, "reason": self.reason,
                "decided_by": self.decided_by, "decided_at": self.decided_at, "status": self.status}


def measure_coverage(catalog: Catalog, found: Mapping[str, Decision], states: Mapping[str, str],
                     lang: str = "en", groups: Groups = None) -> list[MeasureCoverage]:
    """Every live BIO2 measure, in the framework's order, with its coverage, applicability and status.

    `found` are the decisions (`decisions`), `states` the current state per control id
    (`control_states`); a control without a state is `not evaluated`. `groups` are the configured target
    groups (`Settings.targets`, see `control_kind`); None judges by the catalog alone.
    """
    from compliance.frameworks import load

    spec = load("bio2")
    themes = {r.number: r.group for r in spec.requirements}
    by_measure = covering_measures(catalog, found)
    rows = []
    for measure in spec.measures:
        controls = by_measure.get(measure.number, [])
        decision = measure_decision(measure.number, found)
        applies = decision is None or decision.applies
        rows.append(MeasureCoverage(
            measure.number, measure.control, measure.label(lang), themes.get(measure.control, ""), measure.hygiene,
            measure.cbw, coverage_kind(controls, groups), [c.id for c in controls], applies,
            "" if applies or decision is None else decision.reason,
            decision.decided_by if decision else None, decision.decided_at if decision else None,
            worst_status(states.get(c.id, "not evaluated") for c in controls),
        ))
    return rows


def measure_summary(rows: Iterable[MeasureCoverage]) -> dict[str, int]:
    """How many measures there are, how many of each coverage kind (applicable ones) and not applicable."""
    items = list(rows)
    applicable = [r for r in items if r.applies]
    return {"measures": len(items), "automated": sum(r.coverage == "automated" for r in applicable),
            "evidence": sum(r.coverage == "evidence" for r in applicable),
            "none": sum(r.coverage == "none" for r in applicable),
            "not_applicable": len(items) - len(applicable)}


# -- statement of applicability ------------------------------------------------------------------------


@dataclass
class SoaRow:
    """One row of the VvT: an ISO/IEC 27002:2022 control, with its BIO2 measures as rows of their own.

    A control with measures takes the weakest coverage and the worst status of its applicable measures
    (and of the controls that cover the ISO control as a whole), so it is never `automated` because one
    of its measures is.
    """

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
    status: str  # the worst of its controls: fail, error, accepted, not evaluated, none, skipped, pass
    measure_rows: list[MeasureCoverage] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "title": self.title, "theme": self.theme, "measures": self.measures,
                "applicable": self.applies, "reason": self.reason, "decided_by": self.decided_by,
                "decided_at": self.decided_at, "measures_not_applicable": self.measures_not_applicable,
                "coverage": self.coverage, "controls": self.controls, "status": self.status}


def statement(catalog: Catalog, db: Database, lang: str = "en", groups: Groups = None) -> list[SoaRow]:
    """The VvT: every ISO/IEC 27002:2022 control with its BIO2 measures, applicability, coverage, status.

    `groups` are the configured target groups (`Settings.targets`): a check on a group without targets
    does not run, so it does not make a control automated (see `control_kind`). None: the catalog alone."""
    from compliance.frameworks import load

    found = decisions(db)
    states = control_states(db)
    whole = covering_iso(catalog, found)
    per_control: dict[str, list[MeasureCoverage]] = {}
    for measure in measure_coverage(catalog, found, states, lang, groups):
        per_control.setdefault(measure.control, []).append(measure)
    rows = []
    for requirement in load("bio2").requirements:
        decision = found.get(requirement.number)
        own = whole.get(requirement.number, [])
        measures = per_control.get(requirement.number, [])
        applicable = [m for m in measures if m.applies]
        kinds = [m.coverage for m in applicable] + ([coverage_kind(own, groups)] if own or not applicable else [])
        controls = list(dict.fromkeys([c.id for c in own] + [cid for m in measures for cid in m.controls]))
        statuses = [states.get(c.id, "not evaluated") for c in own] + [m.status for m in applicable]
        rows.append(SoaRow(
            requirement.number, requirement.label(lang), requirement.group, [m.number for m in measures],
            decision.applies if decision else True, decision.reason if decision else "",
            decision.decided_by if decision else None, decision.decided_at if decision else None,
            {m.number: m.reason for m in measures if not m.applies and found.get(m.number) is not None},
            min(kinds, key=_KIND_ORDER.index), controls, worst_status(statuses), measures,
        ))
    return rows


def control_states(db: Database) -> dict[str, str]:
    """The current state per control: pass, fail, accepted (failing, all covered by exceptions), error,
    skipped, or not evaluated."""
    from sqlalchemy import select

    from compliance.db.schema import controls
    from compliance.store import Store

    open_findings = {f.control_id for f in Store(db).findings("open")}
    with db.engine.connect() as connection:
        rows = connection.execute(select(controls.c.id, controls.c.last_status)).all()
    states = {}
    for cid, status in rows:
        if status is None:
            states[cid] = "not evaluated"
        elif status == "fail" and cid not in open_findings:
            states[cid] = "accepted"
        else:
            states[cid] = status
    return states
