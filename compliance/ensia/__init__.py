"""The ENSIA BIO self-evaluation: a proposed answer per BIO2 measure for one accountability year, with why.

The accountability year is the calendar year in the monitor's time zone. Per live BIO2 measure the
answer follows from its applicability decision and the history of the controls that cover it
(`compliance.soa.covering_measures`) within the year; the rule is in docs/ensia.md and `answer`. The
annex of deviations lists every measure not applied (not applicable) or deviated from (an exception on
a covering control during the year), with the reference of its risk analysis.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from compliance.errors import ComplianceError
from compliance.safe_output import SafeCsvWriter, spreadsheet_text

if TYPE_CHECKING:
    from compliance.catalog import Catalog, Control
    from compliance.db import Database

__all__ = ["ANSWERS", "FORMATS", "TOLERANCE_DAYS", "Evaluation", "evaluate", "render"]

#: The answers, best first, with their words in the ENSIA tool.
ANSWERS: dict[str, dict[str, str]] = {
    "compliant": {"nl": "voldoet", "en": "compliant"},
    "partly_compliant": {"nl": "voldoet deels", "en": "partly compliant"},
    "not_compliant": {"nl": "voldoet niet", "en": "not compliant"},
    "not_applicable": {"nl": "niet van toepassing", "en": "not applicable"},
}
FORMATS = ("html", "csv", "json", "xlsx")
#: A finding open for fewer days than this in the year, and resolved before the year ended, does not
#: lower a measure's answer (a scan glitch fixed the same week); it is still listed.
TOLERANCE_DAYS = 14

#: How a covering control stood over the year.
STATES: dict[str, dict[str, str]] = {
    "passing": {"nl": "voldeed het hele jaar", "en": "passing all year"},
    "recovered": {"nl": "afwijkingen in het jaar, opgelost", "en": "findings during the year, resolved"},
    "accepted": {"nl": "faalt, risico geaccepteerd", "en": "failing, risk accepted"},
    "failing": {"nl": "faalt", "en": "failing"},
    "not_evaluated": {"nl": "niet gecontroleerd in het jaar", "en": "not evaluated in the year"},
}

TEXTS: dict[str, dict[str, str]] = {
    "title": {"nl": "ENSIA BIO-zelfevaluatie {year}", "en": "ENSIA BIO self-evaluation {year}"},
    "intro": {"nl": "Voorgesteld antwoord per BIO2-overheidsmaatregel (versie {version}) over het "
                    "verantwoordingsjaar {year}, met de onderbouwing uit de monitor.",
              "en": "Proposed answer per BIO2 government measure (version {version}) for the accountability "
                    "year {year}, with the monitor's evidence behind it."},
    "period": {"nl": "Periode: {start} t/m {end}. Gemaakt op {made}.",
               "en": "Period: {start} to {end}. Made on {made}."},
    "summary": {"nl": "Samenvatting", "en": "Summary"},
    "measures": {"nl": "Maatregelen", "en": "Measures"},
    "measure": {"nl": "Maatregel", "en": "Measure"},
    "iso": {"nl": "ISO-control", "en": "ISO control"},
    "title_col": {"nl": "Titel", "en": "Title"},
    "answer": {"nl": "Voorgesteld antwoord", "en": "Proposed answer"},
    "why": {"nl": "Onderbouwing", "en": "Why"},
    "controls": {"nl": "Gedekt door", "en": "Covered by"},
    "deviations": {"nl": "Uitzonderingen op de VvT", "en": "Deviations from the statement of applicability"},
    "kind": {"nl": "Soort", "en": "Kind"},
    "reason": {"nl": "Reden", "en": "Reason"},
    "by": {"nl": "Besloten of goedgekeurd door", "en": "Decided or approved by"},
    "at": {"nl": "Datum", "en": "Date"},
    "until": {"nl": "Tot en met", "en": "Until"},
    "risk_analysis": {"nl": "Risicoanalyse", "en": "Risk analysis"},
    "none": {"nl": "geen", "en": "none"},
    "kind_not_applicable": {"nl": "niet van toepassing", "en": "not applicable"},
    "kind_exception": {"nl": "uitzondering", "en": "exception"},
    "no_deviations": {"nl": "Geen uitzonderingen in dit jaar.", "en": "No deviations in this year."},
    # the reasons behind an answer
    "why_not_applicable": {"nl": "Niet van toepassing ({subject}, besloten door {by} op {at}): {reason}",
                           "en": "Not applicable ({subject}, decided by {by} on {at}): {reason}"},
    "why_no_control": {"nl": "Geen control dekt deze maatregel.", "en": "No control covers this measure."},
    "why_control": {"nl": "{control}: {state}", "en": "{control}: {state}"},
    "failing_since": {"nl": "faalt sinds {date}", "en": "failing since {date}"},
    "last": {"nl": "laatste controle {date}: {status}", "en": "last evaluated {date}: {status}"},
    "findings": {"nl": "{opened} afwijking(en) geopend, {reopened} heropend, {days} dag(en) open in het jaar",
                 "en": "{opened} finding(s) opened, {reopened} reopened, {days} day(s) open in the year"},
    "exception": {"nl": "uitzondering {id} ({target}) goedgekeurd door {by} tot en met {until}: {reason}",
                  "en": "exception {id} ({target}) approved by {by} until {until}: {reason}"},
    "revoked": {"nl": "ingetrokken op {date}", "en": "revoked on {date}"},
    "attestation": {"nl": "verklaring van {by} geldig tot en met {until}: {evidence}",
                    "en": "attestation by {by} valid until {until}: {evidence}"},
}
STATUS_WORDS: dict[str, dict[str, str]] = {
    "pass": {"nl": "voldoet", "en": "pass"}, "fail": {"nl": "faalt", "en": "fail"},
    "error": {"nl": "fout bij controle", "en": "error"}, "skipped": {"nl": "overgeslagen", "en": "skipped"},
}


def text(key: str, lang: str, **values: Any) -> str:
    template = TEXTS[key][lang]
    return template.format(**values) if values else template


# -- the evaluation --------------------------------------------------------------------------------------


@dataclass
class ControlYear:
    """One covering control over the accountability year."""

    id: str
    title: str
    state: str  # see STATES
    last_status: str | None  # pass | fail | error | skipped at its last evaluation in the year
    last_evaluated_at: datetime | None
    failing_since: datetime | None
    findings_opened: int
    findings_reopened: int
    days_open: int  # days some finding of the control was open within the year
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    attestations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class MeasureAnswer:
    number: str
    control: str
    title: str
    answer: str  # a key of ANSWERS
    label: str
    why: list[str]
    coverage: str
    decision: dict[str, Any] | None
    controls: list[ControlYear]


@dataclass
class Evaluation:
    year: int
    lang: str
    framework_version: str
    start: datetime
    end: datetime  # exclusive
    generated_at: datetime
    tolerance_days: int
    measures: list[MeasureAnswer]
    deviations: list[dict[str, Any]]

    def summary(self) -> dict[str, int]:
        return {key: sum(m.answer == key for m in self.measures) for key in ANSWERS}

    def as_dict(self) -> dict[str, Any]:
        return {
            "framework": "bio2", "framework_version": self.framework_version, "year": self.year, "lang": self.lang,
            "period": {"start": self.start, "end": self.end}, "generated_at": self.generated_at,
            "tolerance_days": self.tolerance_days, "summary": self.summary(),
            "measures": [asdict(m) for m in self.measures], "deviations": self.deviations,
        }


def _year_bounds(year: int, zone: tzinfo) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1, tzinfo=zone).astimezone(UTC), datetime(year + 1, 1, 1, tzinfo=zone).astimezone(UTC)


def evaluate(catalog: Catalog, db: Database, year: int, *, lang: str = "nl", zone: tzinfo = UTC,
             now: datetime | None = None, tolerance_days: int = TOLERANCE_DAYS,
             groups: Mapping[str, list[Any]] | None = None) -> Evaluation:
    """The proposed answer for every live BIO2 measure over the calendar year `year` (see docs/ensia.md).

    `groups` (the configuration's target groups) makes a check on an empty group count as not running for
    the coverage, as in the statement of applicability (`soa.control_kind`)."""
    from compliance import soa
    from compliance.frameworks import load

    now = now or datetime.now(UTC)
    start, end = _year_bounds(year, zone)
    if start > now:
        raise ComplianceError(f"the accountability year {year} has not begun; give --year {now.astimezone(zone).year} "
                              "or earlier")
    as_of = min(end, now)
    as_of_day = (as_of - timedelta(microseconds=1)).astimezone(zone).date()
    # the decisions as they stood at the end of the year (or now): a later decision belongs to a later year
    found = {d.subject: d for d in soa.history(db) if d.decided_at < as_of}
    by_measure = soa.covering_measures(catalog, found)
    history = _History(db, start, as_of, as_of_day, zone)
    years: dict[str, ControlYear] = {}
    spec = load("bio2")
    measures = []
    for measure in spec.measures:
        decision = soa.measure_decision(measure.number, found)
        controls = by_measure.get(measure.number, [])
        for control in controls:
            if control.id not in years:
                years[control.id] = history.control_year(control, lang, tolerance_days)
        rows = [years[c.id] for c in controls]
        key, why = answer(decision, rows, lang, zone)
        measures.append(MeasureAnswer(
            measure.number, measure.control, measure.label(lang), key, ANSWERS[key][lang], why,
            soa.coverage_kind(controls, groups),
            None if decision is None else {"subject": decision.subject, "applicable": decision.applies,
                                           "reason": decision.reason, "decided_by": decision.decided_by,
                                           "decided_at": decision.decided_at,
                                           "risk_analysis": decision.risk_analysis},
            rows))
    return Evaluation(year, lang, spec.version, start, end, now, tolerance_days, measures,
                      _deviations(measures, lang))


def answer(decision: Any, controls: Sequence[ControlYear], lang: str, zone: tzinfo) -> tuple[str, list[str]]:
    """The answer for one measure and the sentences behind it.

    not applicable: the measure (or its ISO control) was decided not to apply. not compliant: no control
    covers it, or none of its controls passed at its last evaluation in the year (failing without an
    exception, or not evaluated). compliant: every control passed all year (no finding open for
    `tolerance_days` or longer, none open at the end, no exception). partly compliant: anything between.
    """
    if decision is not None and not decision.applies:
        return "not_applicable", [text("why_not_applicable", lang, subject=decision.subject, by=decision.decided_by,
                                       at=_day(decision.decided_at, zone), reason=decision.reason)]
    if not controls:
        return "not_compliant", [text("why_no_control", lang)]
    why = [_control_sentence(c, lang, zone) for c in controls]
    states = {c.state for c in controls}
    if states == {"passing"}:
        return "compliant", why
    if states <= {"failing", "not_evaluated"}:
        return "not_compliant", why
    return "partly_compliant", why


def _day(moment: datetime | date | None, zone: tzinfo) -> str:
    if moment is None:
        return "-"
    if isinstance(moment, datetime):
        return moment.astimezone(zone).date().isoformat()
    return moment.isoformat()


def _control_sentence(c: ControlYear, lang: str, zone: tzinfo) -> str:
    parts = [STATES[c.state][lang]]
    if c.failing_since is not None:
        parts.append(text("failing_since", lang, date=_day(c.failing_since, zone)))
    if c.last_status is not None:
        parts.append(text("last", lang, date=_day(c.last_evaluated_at, zone),
                          status=STATUS_WORDS.get(c.last_status, {}).get(lang, c.last_status)))
    if c.findings_opened or c.findings_reopened:
        parts.append(text("findings", lang, opened=c.findings_opened, reopened=c.findings_reopened,
                          days=c.days_open))
    for e in c.exceptions:
        parts.append(text("exception", lang, id=e["id"], target=e["target"], by=e["approved_by"],
                          until=_day(e["until"], zone), reason=e["reason"])
                     + (f" ({text('revoked', lang, date=_day(e['revoked_at'], zone))})" if e["revoked_at"] else ""))
    for a in c.attestations:
        parts.append(text("attestation", lang, by=a["by"], until=_day(a["valid_until"], zone), evidence=a["evidence"]))
    return text("why_control", lang, control=f"{c.id} ({c.title})", state="; ".join(parts))


class _History:
    """The results, findings, exceptions and attestations of the year, read once."""

    def __init__(self, db: Database, start: datetime, as_of: datetime, as_of_day: date, zone: tzinfo) -> None:
        from sqlalchemy import select

        from compliance.db.models import Attestation, CheckResultRow, ControlRow, Finding, FindingChange, RiskException
        from compliance.history import last_scans, raw_from

        self.start, self.as_of, self.as_of_day = start, as_of, as_of_day
        start_day = start.astimezone(zone).date()
        with db.sessions() as session:
            # pruned days (before `since`) are read from their daily rollups: each control's last scan there
            since = raw_from(session)
            results: list[Any] = []
            if since is not None and since > start:
                rolled = last_scans(session, list(session.scalars(select(ControlRow.id))), min(as_of, since), start)
                results = sorted(((r.control_id, r.scan_id, r.target, r.status, r.at)
                                  for scan in rolled.values() for r in scan.results), key=lambda r: r[4])
            results += session.execute(
                select(CheckResultRow.control_id, CheckResultRow.scan_id, CheckResultRow.target,
                       CheckResultRow.status, CheckResultRow.started_at)
                .where(CheckResultRow.started_at >= max(start, since or start), CheckResultRow.started_at < as_of)
                .order_by(CheckResultRow.started_at, CheckResultRow.id)).all()
            findings = session.execute(select(Finding.id, Finding.control_id)).all()
            changes = session.execute(
                select(FindingChange.finding_id, FindingChange.from_state, FindingChange.to_state, FindingChange.at)
                .where(FindingChange.at < as_of).order_by(FindingChange.at, FindingChange.id)).all()
            exceptions = list(session.scalars(select(RiskException).where(
                RiskException.created_at < as_of, RiskException.until >= start_day).order_by(RiskException.id)))
            attestations = list(session.scalars(select(Attestation).where(
                Attestation.recorded_at < as_of, Attestation.valid_until >= start_day).order_by(Attestation.id)))
            self.exceptions = [e for e in exceptions if e.revoked_at is None or e.revoked_at >= start]
            self.attestations = attestations
        self.last: dict[str, list[tuple[str, str, datetime]]] = {}  # control -> its last scan's (target, status, at)
        last_scan: dict[str, int] = {}
        for control_id, scan_id, target, status, at in results:
            if last_scan.get(control_id) != scan_id:
                last_scan[control_id] = scan_id
                self.last[control_id] = []
            self.last[control_id].append((target, status, at))
        self.findings: dict[str, list[int]] = {}
        for finding_id, control_id in findings:
            self.findings.setdefault(control_id, []).append(finding_id)
        self.changes: dict[int, list[tuple[str | None, str, datetime]]] = {}
        for finding_id, from_state, to_state, at in changes:
            self.changes.setdefault(finding_id, []).append((from_state, to_state, at))

    def control_year(self, control: Control, lang: str, tolerance_days: int) -> ControlYear:
        last = self.last.get(control.id, [])
        statuses = {status for _, status, _ in last}
        last_status = next((s for s in ("fail", "error", "pass", "skipped") if s in statuses), None)
        opened = reopened = 0
        open_time = timedelta()
        longest = timedelta()
        failing_since: datetime | None = None
        for finding_id in self.findings.get(control.id, []):
            opened_at: datetime | None = None
            for from_state, to_state, at in self.changes.get(finding_id, []):
                if to_state == "open" and opened_at is None:
                    opened_at = at
                    if at >= self.start:
                        opened += from_state is None
                        reopened += from_state is not None
                elif to_state != "open" and opened_at is not None:
                    span = min(at, self.as_of) - max(opened_at, self.start)
                    if span > timedelta():
                        open_time += span
                        longest = max(longest, span)
                    opened_at = None
            if opened_at is not None:  # still open at the end of the year
                open_time += self.as_of - max(opened_at, self.start)
                failing_since = opened_at if failing_since is None else min(failing_since, opened_at)
        exceptions = [e for e in self.exceptions if e.control_id == control.id]
        in_force = [e for e in exceptions if (e.revoked_at is None or e.revoked_at >= self.as_of)
                    and e.until >= self.as_of_day]
        failing_targets = [t for t, s, _ in last if s in ("fail", "error")]
        if last_status is None or last_status == "skipped":
            state = "not_evaluated"
        elif failing_targets and all(any(e.control_id == control.id and _matches(e.target_pattern, t)
                                         for e in in_force) for t in failing_targets):
            state = "accepted"
        elif failing_targets:
            state = "failing"
        elif exceptions or failing_since is not None or longest >= timedelta(days=tolerance_days):
            state = "recovered"
        else:
            state = "passing"
        return ControlYear(
            control.id, control.text("title", lang), state,
            last_status, last[-1][2] if last else None, failing_since if state in ("failing", "accepted") else None,
            opened, reopened, open_time.days,
            [{"id": e.id, "target": e.target_pattern, "reason": e.reason, "approved_by": e.approved_by,
              "until": e.until, "created_at": e.created_at, "revoked_at": e.revoked_at,
              "risk_analysis": e.risk_analysis} for e in exceptions],
            [{"id": a.id, "by": a.attested_by, "evidence": a.evidence, "sha256": a.sha256,
              "valid_until": a.valid_until, "recorded_at": a.recorded_at}
             for a in self.attestations if a.control_id == control.id],
        )


def _matches(pattern: str, target: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(target, pattern)


def _deviations(measures: Sequence[MeasureAnswer], lang: str) -> list[dict[str, Any]]:
    """The annex: every measure not applied (not applicable) or deviated from (an exception in the year)."""
    rows: list[dict[str, Any]] = []
    for m in measures:
        if m.answer == "not_applicable" and m.decision is not None:
            d = m.decision
            rows.append({"measure": m.number, "title": m.title, "kind": "not_applicable",
                         "kind_label": text("kind_not_applicable", lang), "subject": d["subject"],
                         "control": None, "reason": d["reason"], "by": d["decided_by"], "at": d["decided_at"],
                         "until": None, "risk_analysis": d["risk_analysis"]})
            continue
        for c in m.controls:
            for e in c.exceptions:
                rows.append({"measure": m.number, "title": m.title, "kind": "exception",
                             "kind_label": text("kind_exception", lang), "subject": str(e["id"]),
                             "control": c.id, "reason": e["reason"], "by": e["approved_by"], "at": e["created_at"],
                             "until": e["until"], "risk_analysis": e["risk_analysis"]})
    return rows


# -- rendering -------------------------------------------------------------------------------------------


def render(evaluation: Evaluation, fmt: str, zone: tzinfo = UTC) -> bytes:
    """The evaluation as html, csv, json or xlsx (bytes, to write to a file or standard output)."""
    if fmt == "json":
        return (json.dumps(evaluation.as_dict(), default=_json_default, ensure_ascii=False, indent=2) + "\n").encode()
    if fmt == "csv":
        return _csv(evaluation, zone).encode()
    if fmt == "html":
        return _html(evaluation, zone).encode()
    if fmt == "xlsx":
        return _xlsx(evaluation, zone)
    raise ComplianceError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _measure_row(m: MeasureAnswer, lang: str) -> list[str]:
    return [m.number, m.control, m.title, m.label, ", ".join(c.id for c in m.controls) or text("none", lang),
            "\n".join(m.why)]


def _headers(lang: str) -> list[str]:
    return [text(k, lang) for k in ("measure", "iso", "title_col", "answer", "controls", "why")]


def _deviation_row(d: Mapping[str, Any], zone: tzinfo) -> list[str]:
    return [d["measure"], d["title"], d["kind_label"], d["control"] or d["subject"], d["reason"], d["by"],
            _day(d["at"], zone), _day(d["until"], zone) if d["until"] else "", d["risk_analysis"] or ""]


def _deviation_headers(lang: str) -> list[str]:
    return [text(k, lang) for k in ("measure", "title_col", "kind", "controls", "reason", "by", "at", "until",
                                    "risk_analysis")]


def _csv(evaluation: Evaluation, zone: tzinfo) -> str:
    out = io.StringIO()
    writer = SafeCsvWriter(out)
    writer.writerow(_headers(evaluation.lang))
    for m in evaluation.measures:
        writer.writerow(_measure_row(m, evaluation.lang))
    return out.getvalue()


def _html(evaluation: Evaluation, zone: tzinfo) -> str:
    from markupsafe import escape

    lang = evaluation.lang

    def cells(values: Sequence[str], tag: str = "td") -> str:
        return "".join(f"<{tag}>{escape(v).replace(chr(10), '<br>')}</{tag}>" for v in values)

    title = text("title", lang, year=evaluation.year)
    last_day = (evaluation.end - timedelta(days=1)).astimezone(zone).date()
    summary = "".join(f"<li>{escape(ANSWERS[k][lang])}: {n}</li>" for k, n in evaluation.summary().items())
    measures = "".join(f'<tr class="{m.answer}">{cells(_measure_row(m, lang))}</tr>' for m in evaluation.measures)
    deviations = ("<table><thead><tr>" + cells(_deviation_headers(lang), "th") + "</tr></thead><tbody>"
                  + "".join(f"<tr>{cells(_deviation_row(d, zone))}</tr>" for d in evaluation.deviations)
                  + "</tbody></table>") if evaluation.deviations else f"<p>{escape(text('no_deviations', lang))}</p>"
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}}
tr.compliant td:nth-child(4){{background:#d9f2d9}}tr.partly_compliant td:nth-child(4){{background:#fff2cc}}
tr.not_compliant td:nth-child(4){{background:#f8d0d0}}tr.not_applicable td:nth-child(4){{background:#eee}}</style>
</head><body>
<h1>{escape(title)}</h1>
<p>{escape(text("intro", lang, version=evaluation.framework_version, year=evaluation.year))}</p>
<p>{escape(text("period", lang, start=evaluation.start.astimezone(zone).date().isoformat(), end=last_day.isoformat(),
                made=_day(evaluation.generated_at, zone)))}</p>
<h2>{escape(text("summary", lang))}</h2><ul>{summary}</ul>
<h2>{escape(text("measures", lang))}</h2>
<table><thead><tr>{cells(_headers(lang), "th")}</tr></thead><tbody>{measures}</tbody></table>
<h2>{escape(text("deviations", lang))}</h2>
{deviations}
</body></html>
"""


def _keep_text(cell: Any) -> None:
    """Keep a text cell text: openpyxl stores a string that starts with `=` as a formula, which the
    spreadsheet would run; a quote prefix (not shown) keeps any formula-like text text on editing too."""
    if isinstance(cell.value, str) and spreadsheet_text(cell.value) != cell.value:
        cell.data_type = "s"
        cell.quotePrefix = True


def _xlsx(evaluation: Evaluation, zone: tzinfo) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    lang = evaluation.lang
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = text("measures", lang)
    sheet.append(_headers(lang))
    for m in evaluation.measures:
        sheet.append(_measure_row(m, lang))
    annex = book.create_sheet(text("deviations", lang)[:31])
    annex.append(_deviation_headers(lang))
    for d in evaluation.deviations:
        annex.append(_deviation_row(d, zone))
    for ws in (sheet, annex):
        for cell in ws[1]:
            cell.font = Font(bold=True)
        ws.freeze_panes = "A2"
        for row in ws.iter_rows(min_row=2):
            for cell in row:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
        for row in ws.iter_rows():
            for cell in row:
                _keep_text(cell)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
