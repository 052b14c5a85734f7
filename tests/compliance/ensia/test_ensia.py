"""The ENSIA BIO self-evaluation: a seeded year of history gives the expected answer for each kind of case.

Scans run through the real engine (the `probe` plugin decides each outcome) and are moved to their day
in 2026 (see tests/compliance/report/history.py), in the configured zone Europe/Amsterdam:

| measure  | control | 2 Feb | 2 Mar | 4 Mar | 1 Jun | 1 Sep | 2 Nov | else                          | answer          |
|----------|---------|-------|-------|-------|-------|-------|-------|-------------------------------|-----------------|
| 8.15.01  | P       | pass  |       |       | pass  |       | pass  | attestation valid in the year | compliant       |
| 8.15.02  | R       | fail  |       |       | pass  |       | pass  |                               | partly          |
| 8.15.03  | F       | pass  |       |       | fail  |       | fail  |                               | not compliant   |
| 8.15.04  | X       | fail  |       |       | fail  |       | fail  | exception until 31 Dec        | partly (annex)  |
| 8.15.05  | -       |       |       |       |       |       |       | decided not applicable        | not applicable  |
| 8.15.06  | -       |       |       |       |       |       |       | no control                    | not compliant   |
| 5.01.01  | P, F    |       |       |       |       |       |       | one passes, one fails         | partly          |
| 5.01.02  | N       | never evaluated                                                 | not compliant   |
| 5.02.01  | G       |       | fail  | pass  |       |       | pass  | open 2 days (< tolerance)     | compliant       |
| 5.02.02  | E       | fail  | pass  |       | fail  | pass  |       | reopened                      | partly          |
| 5.14.01  | -       |       |       |       |       |       |       | its ISO control 5.14 decided  | not applicable  |
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from compliance.catalog import Catalog
from tests.compliance.report.history import History, Spec

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
YEAR = 2026

P = Spec("P", title="Security events are logged", references={"bio2": ["8.15.01", "5.01.01"]})
R = Spec("R", title="Logs are kept a year", references={"bio2": ["8.15.02"]})
F = Spec("F", title="Logs are protected", references={"bio2": ["8.15.03", "5.01.01"]})
X = Spec("X", title="Logs are reviewed", references={"bio2": ["8.15.04"]})
N = Spec("N", title="Policy approved", references={"bio2": ["5.01.02"]})
G = Spec("G", title="Roles assigned", references={"bio2": ["5.02.01"]})
E = Spec("E", title="CISO appointed", references={"bio2": ["5.02.02"]})


def day(month: int, day_: int, hour: int = 3) -> datetime:
    return datetime(YEAR, month, day_, hour, tzinfo=AMSTERDAM)


@pytest.fixture
def year(database: Any, store: Any, probe_plugin: type) -> Catalog:
    from compliance import evidence, soa

    history = History(database, store)
    history.scan(day(2, 2), {P: {"p": "pass"}, R: {"r": "fail"}, F: {"f": "pass"}, X: {"x": "fail"},
                             E: {"e": "fail"}})
    history.scan(day(3, 2), {G: {"g": "fail"}, E: {"e": "pass"}})
    history.scan(day(3, 4), {G: {"g": "pass"}})
    store.add_exception("X", reason="Review tool being replaced", approved_by="Gemeentesecretaris",
                        until=date(YEAR, 12, 31), created_by="anna", now=day(3, 10, 10), risk_analysis="RA-2026-07")
    history.scan(day(6, 1), {P: {"p": "pass"}, R: {"r": "pass"}, F: {"f": "fail"}, X: {"x": "fail"},
                             E: {"e": "fail"}})
    history.scan(day(9, 1), {E: {"e": "pass"}})
    history.scan(day(11, 2), {P: {"p": "pass"}, R: {"r": "pass"}, F: {"f": "fail"}, X: {"x": "fail"},
                              G: {"g": "pass"}})
    evidence.record(database, "P", by="CISO", evidence="https://intranet.gemeente.nl/logging-2026.pdf",
                    valid_until=date(YEAR, 12, 31), recorded_by="anna")
    soa.decide(database, "8.15.05", applies=False, reason="No own clock sources", by="CISO",
               risk_analysis="RA-2026-02")
    soa.decide(database, "5.14", applies=False, reason="Too small to segregate duties", by="CISO")
    return Catalog(tuple(spec.control({"x": "pass"}) for spec in (P, R, F, X, N, G, E)))


EXPECTED = {
    "8.15.01": "compliant", "8.15.02": "partly_compliant", "8.15.03": "not_compliant",
    "8.15.04": "partly_compliant", "8.15.05": "not_applicable", "8.15.06": "not_compliant",
    "5.01.01": "partly_compliant", "5.01.02": "not_compliant", "5.02.01": "compliant",
    "5.02.02": "partly_compliant", "5.14.01": "not_applicable",
}


def evaluation(database: Any, catalog: Catalog, lang: str = "en") -> Any:
    from compliance.ensia import evaluate

    return evaluate(catalog, database, YEAR, lang=lang, zone=AMSTERDAM)


def test_a_seeded_year_gives_the_expected_answer_per_kind_of_case(database: Any, year: Catalog) -> None:
    answers = {m.number: m.answer for m in evaluation(database, year).measures}
    assert {number: answers[number] for number in EXPECTED} == EXPECTED


def test_the_controls_history_over_the_year_is_shown(database: Any, year: Catalog) -> None:
    measures = {m.number: m for m in evaluation(database, year).measures}
    failing = measures["8.15.03"].controls[0]
    assert (failing.state, failing.failing_since, failing.last_status) == ("failing", day(6, 1), "fail")
    reopened = measures["5.02.02"].controls[0]
    assert (reopened.state, reopened.findings_opened, reopened.findings_reopened) == ("recovered", 1, 1)
    glitch = measures["5.02.01"].controls[0]
    assert (glitch.state, glitch.findings_opened, glitch.days_open) == ("passing", 1, 2)
    accepted = measures["8.15.04"].controls[0]
    assert accepted.state == "accepted"
    assert [(e["approved_by"], e["until"], e["risk_analysis"]) for e in accepted.exceptions] == [
        ("Gemeentesecretaris", date(YEAR, 12, 31), "RA-2026-07")]
    assert [a["evidence"] for a in measures["8.15.01"].controls[0].attestations] == [
        "https://intranet.gemeente.nl/logging-2026.pdf"]
    assert measures["5.14.01"].why == [
        f"Not applicable (5.14, decided by CISO on {datetime.now(AMSTERDAM).date().isoformat()}): "
        "Too small to segregate duties"]


def test_the_annex_lists_each_deviation_with_its_risk_analysis(database: Any, year: Catalog) -> None:
    from compliance.frameworks import load

    annex = evaluation(database, year).deviations
    inherited = [m.number for m in load("bio2").measures if m.control == "5.14"]
    assert len(inherited) > 1
    assert [(d["measure"], d["kind"], d["by"], d["risk_analysis"]) for d in annex] == [
        *((number, "not_applicable", "CISO", None) for number in inherited),
        ("8.15.04", "exception", "Gemeentesecretaris", "RA-2026-07"),
        ("8.15.05", "not_applicable", "CISO", "RA-2026-02"),
    ]


def test_a_year_not_yet_begun_is_refused(database: Any) -> None:
    from compliance.ensia import evaluate
    from compliance.errors import ComplianceError

    next_year = datetime.now(AMSTERDAM).year + 1
    with pytest.raises(ComplianceError, match=f"the accountability year {next_year} has not begun"):
        evaluate(Catalog(()), database, next_year, zone=AMSTERDAM)


@pytest.mark.parametrize("fmt", ["html", "csv", "json"])
def test_the_dutch_export_contains_no_english(database: Any, year: Catalog, fmt: str) -> None:
    from compliance.ensia import ANSWERS, STATES, TEXTS, render

    dutch, english = (readable(render(evaluation(database, year, lang), fmt, AMSTERDAM).decode(), fmt)
                      for lang in ("nl", "en"))
    words = {w["en"] for table in (ANSWERS, STATES) for w in table.values()}
    words |= {t["en"].split("{")[0].strip() for t in TEXTS.values() if t["en"] != t["nl"]} - {""}
    shown = {w for w in words if w in english}
    assert {"compliant", "partly compliant", "not compliant", "not applicable", "passing all year", "failing",
            "failing, risk accepted", "Not applicable (", "failing since"} <= shown
    assert sorted(w for w in shown if w in dutch) == []


#: The JSON contract's fields with fixed English keys (answer, state, ...); the others are read by people.
KEYS = {"answer", "state", "kind", "coverage", "last_status", "framework", "lang"}


def readable(output: str, fmt: str) -> str:
    """What people read in an output: for HTML its text, not its markup; for JSON the values of its text
    fields, not its keys."""
    if fmt == "html":
        return re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", output, flags=re.S))
    if fmt != "json":
        return output

    def texts(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [t for k, v in value.items() if k not in KEYS for t in texts(v)]
        if isinstance(value, list):
            return [t for v in value for t in texts(v)]
        return [value] if isinstance(value, str) else []

    return "\n".join(texts(json.loads(output)))


def test_the_csv_has_one_row_per_measure(database: Any, year: Catalog) -> None:
    from compliance.ensia import render
    from compliance.frameworks import load

    rows = list(csv.reader(io.StringIO(render(evaluation(database, year, "nl"), "csv", AMSTERDAM).decode())))
    assert [r[0] for r in rows[1:]] == [m.number for m in load("bio2").measures]
    assert rows[0][3] == "Voorgesteld antwoord"


# -- the command ---------------------------------------------------------------------------------------


def test_export_xlsx_holds_one_row_per_measure_and_the_annex(project: Any, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from compliance.frameworks import load

    project.config.write_text(f"database:\n  url: {project.db_url}\ncontrols:\n  paths: [controls]\n"
                              "  bundled: [bio2]\n", encoding="utf-8")
    assert project.run("db", "upgrade").exit_code == 0
    decided = project.run("controls", "applicability", "8.15.05", "--not-applicable", "--reason",
                          "Geen eigen tijdbronnen", "--risk-analysis", "RA-2026-02", "--format", "json")
    assert decided.exit_code == 0, decided.output
    assert json.loads(decided.output)["risk_analysis"] == "RA-2026-02"
    excepted = project.run("exceptions", "add", "BIO-POLICY", "--reason", "Beleid in herziening", "--approved-by",
                           "Gemeentesecretaris", "--until", f"{datetime.now(AMSTERDAM).year}-12-31",
                           "--risk-analysis", "RA-2026-09", "--format", "json")
    assert excepted.exit_code == 0, excepted.output
    assert json.loads(excepted.output)["risk_analysis"] == "RA-2026-09"
    out = tmp_path / "ensia.xlsx"
    result = project.run("ensia", "export", "--year", str(datetime.now(AMSTERDAM).year), "--format", "xlsx",
                         "--output", str(out))
    assert result.exit_code == 0, result.output
    book = load_workbook(out)
    measures, annex = book.worksheets
    numbers = [row[0] for row in measures.iter_rows(min_row=2, values_only=True)]
    assert numbers == [m.number for m in load("bio2").measures]
    answers = {row[0]: row[3] for row in measures.iter_rows(min_row=2, values_only=True)}
    assert answers["8.15.05"] == "niet van toepassing"
    deviations = {(row[0], row[2], row[-1]) for row in annex.iter_rows(min_row=2, values_only=True)}
    assert ("8.15.05", "niet van toepassing", "RA-2026-02") in deviations
    assert {(number, "uitzondering", "RA-2026-09") for number in ("5.01.01", "5.01.02")} <= deviations
