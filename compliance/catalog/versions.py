"""Moving a municipality's controls and decisions from one BIO2 version to the next.

BIO2 v1.3 moved and renumbered measures (5.04.02 became 5.10.02), let some lapse and added new ones
(`compliance.frameworks.version_changes`). `survey` finds what in the municipality's own control files
and in the database touches each changed measure; `upgrade` rewrites what can be rewritten without a
judgement and lists the rest as needing a human decision.

The control files are read with ruamel.yaml in round-trip mode and without the catalog's validation:
that validation refuses the old numbers, which is exactly what is being repaired. A rewrite replaces
only the characters of each old number at the place ruamel reports for it, so comments, key order,
flow or block style, quotes and indentation stay as they were, byte for byte.

In the database, an applicability decision on a moved measure is carried over to the new number as a
new decision (the old one stays in the history). Attestations, exceptions and finding history are kept
per control id, which does not change, so they stay attached; the stored controls' references follow
from the YAML at the next scan.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compliance.errors import ComplianceError, display_path

if TYPE_CHECKING:
    from compliance.db import Database

__all__ = ["DecisionMove", "HumanDecision", "MeasureChange", "ReferenceSite", "Survey", "apply", "survey"]


@dataclass(frozen=True, slots=True)
class ReferenceSite:
    """One place in a control file where a `bio2` reference names a measure."""

    path: str
    line: int  # 1-based
    col: int  # 1-based, where the scalar starts (its quote, when quoted)
    control_id: str
    measure: str  # the measure number, zero-padded
    written: str  # the value as written, e.g. "5.4.2"
    override: bool  # the control overrides one from the shipped catalog
    iso: tuple[str, ...] = ()  # the control's ISO/IEC 27002 references (iso27002 and bio2 "T.C" values)

    @property
    def where(self) -> str:
        return f"{display_path(self.path)}:{self.line}"


@dataclass(frozen=True, slots=True)
class Touch:
    """An attestation, exception or applicability decision recorded for a measure or one of its controls."""

    kind: str  # attestation | exception | decision
    id: int
    subject: str  # the control id, or the measure number for a decision on the measure itself
    detail: dict[str, Any]


@dataclass
class MeasureChange:
    """One measure that moved, lapsed or is new, and what of the municipality's touches it."""

    number: str
    change: str  # moved | lapsed | new
    new_number: str | None
    sites: list[ReferenceSite] = field(default_factory=list)
    touches: list[Touch] = field(default_factory=list)

    def of(self, kind: str) -> list[Touch]:
        return [t for t in self.touches if t.kind == kind]

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number, "change": self.change, "to": self.new_number,
            "controls": [{"id": s.control_id, "path": display_path(s.path), "line": s.line, "written": s.written,
                          "override": s.override} for s in self.sites],
            "attestations": [{"id": t.id, "control": t.subject, **t.detail} for t in self.of("attestation")],
            "exceptions": [{"id": t.id, "control": t.subject, **t.detail} for t in self.of("exception")],
            "decisions": [{"id": t.id, "subject": t.subject, **t.detail} for t in self.of("decision")],
        }


@dataclass(frozen=True, slots=True)
class DecisionMove:
    """An applicability decision on a moved measure, carried over to the new number."""

    from_subject: str
    to_subject: str
    applies: bool
    reason: str
    risk_analysis: str | None = None  # the reference of the risk analysis behind it, carried over too


@dataclass(frozen=True, slots=True)
class HumanDecision:
    """Something the upgrade does not change by itself, with what a person has to decide."""

    measure: str
    where: str  # file:line, a control id or a decision's subject
    what: str
    decide: str


@dataclass
class Survey:
    """Everything a version change touches, and what an upgrade would do about it."""

    framework: str
    from_version: str
    to_version: str
    measures: list[MeasureChange]
    decision_moves: list[DecisionMove]
    human: list[HumanDecision]

    @property
    def rewrites(self) -> list[tuple[ReferenceSite, str]]:
        """Each reference to a moved measure with the number it becomes, in file order."""
        found = [(s, m.new_number) for m in self.measures if m.change == "moved" and m.new_number for s in m.sites]
        return sorted(found, key=lambda pair: (pair[0].path, pair[0].line, pair[0].col))

    def as_dict(self) -> dict[str, Any]:
        return {
            "framework": self.framework, "from": self.from_version, "to": self.to_version,
            "measures": [m.as_dict() for m in self.measures],
            "rewrites": [{"path": display_path(s.path), "line": s.line, "control": s.control_id,
                          "from": s.written, "to": new} for s, new in self.rewrites],
            "decision_moves": [{"from": d.from_subject, "to": d.to_subject, "applicable": d.applies,
                                "reason": d.reason, "risk_analysis": d.risk_analysis} for d in self.decision_moves],
            "needs_decision": [{"measure": h.measure, "where": h.where, "what": h.what, "decide": h.decide}
                               for h in self.human],
        }


def survey(framework: str, from_version: str | None, to_version: str, paths: Sequence[Path],
           db: Database) -> Survey:
    """What moved, lapsed and is new from one version to the next, and what of the municipality touches it.

    `paths` are the municipality's control files and folders (controls.paths). Without `from_version`,
    the one earlier version the framework knows is taken. Raises ComplianceError for an unknown version
    or a control file that cannot be read (with its file:line).
    """
    from compliance.frameworks import load, version_changes

    try:
        spec = load(framework)
    except ValueError as exc:
        raise ComplianceError(str(exc)) from None
    if from_version is None:
        if len(spec.earlier) != 1:
            known = ", ".join(spec.earlier) or "none"
            raise ComplianceError(f"name the version to move from with --from (known for {framework}: {known})")
        from_version = next(iter(spec.earlier))
    try:
        changes = version_changes(framework, from_version, to_version)
    except ValueError as exc:
        raise ComplianceError(str(exc)) from None
    measures = [MeasureChange(old, "moved", new) for old, new in changes.moved.items()]
    measures += [MeasureChange(n, "lapsed", None) for n in changes.lapsed]
    measures += [MeasureChange(n, "new", None) for n in changes.new]
    by_number = {m.number: m for m in measures}
    for site in reference_sites(paths):
        if site.measure in by_number:
            by_number[site.measure].sites.append(site)
    newest = _touches(db, measures)
    moves, human = _plan(measures, newest, to_version)
    return Survey(framework, from_version, to_version, measures, moves, human)


def reference_sites(paths: Sequence[Path]) -> list[ReferenceSite]:
    """Every `bio2` measure reference in the control files under paths, read without validation."""
    from compliance.catalog import discover

    files, missing = discover(paths)
    if missing:
        problem = missing[0]
        raise ComplianceError(f"{display_path(problem.path)}: {problem.message}; {problem.hint}")
    sites: list[ReferenceSite] = []
    for file in files:
        sites.extend(_file_sites(file))
    return sites


def _load_round_trip(file: Path) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    yaml = YAML(typ="rt")
    try:
        return yaml.load(file.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ComplianceError(f"{display_path(file)}:{line}: YAML error: {exc.problem or exc.context}; "
                              "fix the file (`compliance controls validate` shows where), then run this again"
                              ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ComplianceError(f"{display_path(file)}:1: cannot read the file: {exc}") from None


def _file_sites(file: Path) -> list[ReferenceSite]:
    from compliance.frameworks import measures_of

    data = _load_round_trip(file)
    entries = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
    sites: list[ReferenceSite] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("references"), dict):
            continue
        references = entry["references"]
        value = references.get("bio2")
        iso = tuple(str(v) for v in _as_list(references.get("iso27002"))) + tuple(
            str(v) for v in _as_list(value) if isinstance(v, str) and not measures_of({"bio2": v}))
        control_id = str(entry.get("id", "?"))
        override = entry.get("override") is True
        if isinstance(value, str):
            line, col = references.lc.value("bio2")
            candidates = [(value, line, col)]
        elif isinstance(value, list):
            located: Any = value  # a ruamel CommentedSeq, which knows where each item stands
            candidates = [(v, *located.lc.item(i)) for i, v in enumerate(value)]
        else:
            continue
        for written, line, col in candidates:
            if not isinstance(written, str):
                continue
            for number in measures_of({"bio2": written}):
                sites.append(ReferenceSite(str(file), line + 1, col + 1, control_id, number, written, override,
                                           iso))
    return sites


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _touches(db: Database, measures: list[MeasureChange]) -> dict[str, tuple[bool, str]]:
    """Attach the attestations, live exceptions and newest applicability decisions that touch each measure.

    Returns the newest decision per subject (applies, reason).
    """
    from sqlalchemy import select

    from compliance.db.models import ApplicabilityDecision, Attestation, RiskException

    with db.sessions() as session:
        attestations = list(session.scalars(select(Attestation).order_by(Attestation.id)))
        exceptions = list(session.scalars(select(RiskException).where(RiskException.revoked_at.is_(None))
                                          .order_by(RiskException.id)))
        newest: dict[str, ApplicabilityDecision] = {}
        for row in session.scalars(select(ApplicabilityDecision).order_by(ApplicabilityDecision.decided_at,
                                                                          ApplicabilityDecision.id)):
            newest[row.subject] = row
        for measure in measures:
            ids = list(dict.fromkeys(s.control_id for s in measure.sites))
            measure.touches += [
                Touch("attestation", a.id, a.control_id,
                      {"attested_by": a.attested_by, "valid_until": a.valid_until.isoformat()})
                for a in attestations if a.control_id in ids]
            measure.touches += [
                Touch("exception", e.id, e.control_id,
                      {"target": e.target_pattern, "approved_by": e.approved_by, "until": e.until.isoformat()})
                for e in exceptions if e.control_id in ids]
            measure.touches += [
                Touch("decision", d.id, d.subject,
                      {"applicable": d.applies, "reason": d.reason, "risk_analysis": d.risk_analysis,
                       "decided_by": d.decided_by, "decided_at": d.decided_at.isoformat()})
                for subject in (measure.number, *ids) if (d := newest.get(subject)) is not None]
        return {subject: (d.applies, d.reason) for subject, d in newest.items()}


def _plan(measures: list[MeasureChange], newest: dict[str, tuple[bool, str]],
          to_version: str) -> tuple[list[DecisionMove], list[HumanDecision]]:
    moves: list[DecisionMove] = []
    human: list[HumanDecision] = []
    for measure in measures:
        own = [t for t in measure.of("decision") if t.subject == measure.number]
        if measure.change == "moved":
            assert measure.new_number is not None
            new_iso = _iso_of(measure.new_number)
            for site in measure.sites:
                stale = [n for n in site.iso if n.strip() == _iso_of(measure.number) and n.strip() != new_iso]
                if stale:
                    human.append(HumanDecision(
                        measure.number, f"{site.where} ({site.control_id})",
                        f"{measure.number} moved to {measure.new_number} under ISO/IEC 27002 control {new_iso}; "
                        f"the control also refers to ISO control {stale[0]}",
                        f"keep {stale[0]} if the control still covers it, or change it to {new_iso}"))
            for touch in own:
                carried = (bool(touch.detail["applicable"]), str(touch.detail["reason"]))
                if newest.get(measure.new_number) == carried:
                    continue  # carried over by an earlier upgrade
                if measure.new_number in newest:
                    human.append(HumanDecision(
                        measure.number, f"decision on {measure.number}",
                        f"{measure.number} moved to {measure.new_number}, which has a decision of its own",
                        f"keep the decision on {measure.new_number}, or record the one on {measure.number} "
                        f"for it with `compliance controls applicability {measure.new_number}`"))
                    continue
                moves.append(DecisionMove(measure.number, measure.new_number, *carried,
                                          touch.detail["risk_analysis"]))
        elif measure.change == "lapsed":
            for site in measure.sites:
                kept = [t for t in measure.touches if t.kind != "decision" and t.subject == site.control_id]
                human.append(HumanDecision(
                    measure.number, f"{site.where} ({site.control_id})",
                    f"{measure.number} lapsed in BIO2 {to_version}"
                    + (f"; {len(kept)} attestation(s)/exception(s) of {site.control_id} stay with the control"
                       if kept else ""),
                    f"remove {site.written!r} from the references of {site.control_id}, or refer to the measure "
                    "that now covers its intent"))
            for touch in own:
                human.append(HumanDecision(
                    measure.number, f"decision on {measure.number}",
                    f"{measure.number} lapsed in BIO2 {to_version}; its decision "
                    f"({'applies' if touch.detail['applicable'] else 'does not apply'}) no longer counts",
                    "nothing to carry over; record a decision on the measure that replaces it, if any"))
        elif not measure.sites and not own:
            human.append(HumanDecision(
                measure.number, "-",
                f"{measure.number} is new in BIO2 {to_version} and none of your own controls names it",
                "see whether a shipped control covers it (`compliance controls coverage --by measure`); else name "
                "it in the references of the control that covers it, or record that it does not apply: "
                f"`compliance controls applicability {measure.number} --not-applicable --reason ...`"))
    return moves, human


def _iso_of(measure: str) -> str:
    theme, control, _ = measure.split(".")
    return f"{int(theme)}.{int(control)}"


def apply(found: Survey, db: Database, *, by: str) -> None:
    """Rewrite the references to moved measures in the control files and carry decisions over.

    Every file is checked for writability before anything changes; the database work is one transaction
    that commits only after every file was written.
    """
    from compliance.db.models import ApplicabilityDecision

    per_file: dict[str, list[tuple[ReferenceSite, str]]] = {}
    for site, new in found.rewrites:
        per_file.setdefault(site.path, []).append((site, new))
    texts = {path: _rewritten(Path(path), edits) for path, edits in per_file.items()}
    for path, edits in per_file.items():
        if not os.access(path, os.W_OK) or not os.access(Path(path).parent, os.W_OK):
            raise ComplianceError(f"{edits[0][0].where}: cannot write the file to rewrite {edits[0][0].written!r}; "
                                  "make it (and its folder) writable, then run the upgrade again. Nothing was changed")
    now = datetime.now(UTC)
    with db.transaction() as session:
        for move in found.decision_moves:
            session.add(ApplicabilityDecision(subject=move.to_subject, applies=move.applies, reason=move.reason,
                                              risk_analysis=move.risk_analysis, decided_by=by, decided_at=now))
        session.flush()
        for path, text in texts.items():
            _write(Path(path), text)


def _rewritten(file: Path, edits: Iterable[tuple[ReferenceSite, str]]) -> str:
    """The file's text with each edit's old number replaced at its place, and nothing else changed."""
    raw = file.read_bytes()
    newline = "\r\n" if b"\r\n" in raw else "\n"
    lines = raw.decode("utf-8").split(newline)
    for site, new in sorted(edits, key=lambda e: (e[0].line, e[0].col), reverse=True):
        line = lines[site.line - 1]
        start = site.col - 1
        if line[start:start + 1] in ("'", '"'):
            start += 1
        if line[start:start + len(site.written)] != site.written:
            raise ComplianceError(f"{site.where}: expected {site.written!r} here; the file changed while it was "
                                  "read, run the upgrade again. Nothing was changed")
        lines[site.line - 1] = line[:start] + new + line[start + len(site.written):]
    return newline.join(lines)


def _write(file: Path, text: str) -> None:
    """Replace the file's content at once (a temporary file beside it, then a rename), keeping its mode."""
    mode = file.stat().st_mode
    temporary = file.with_name(f".{file.name}.upgrade-{os.getpid()}")
    temporary.write_bytes(text.encode("utf-8"))
    os.chmod(temporary, mode)
    os.replace(temporary, file)

