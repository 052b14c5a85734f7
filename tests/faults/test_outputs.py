"""Output other programs read: CSV and xlsx cells that stay text, terminals that show escape sequences
instead of obeying them, and `scan --format json` in time linear in a control's results."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compliance.api import Check, Context, Params, Result, Status
from tests.conftest import Project

pytestmark = pytest.mark.faults

#: What a hostile value starts with to become a formula in a spreadsheet (OWASP), and the payload.
FORMULAS = [
    '=HYPERLINK("http://evil.example","x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
#: An OSC that renames the terminal window, a bell, a colour (CSI) and the 8-bit CSI.
ESCAPES = "\x1b]0;pwned\x07\x1b[31mred\x9b2J"
SHOWN = "\\x1b]0;pwned\\x07\\x1b[31mred\\x9b2J"


class HostileParams(Params):
    name: str
    escapes: bool = False
    count: int = 1


class Hostile(Check):
    """Fails with targets and messages that try to act on the reader of the output (for tests)."""

    name = "hostile_output"
    Params = HostileParams
    target_param = "name"

    def run(self, params: HostileParams, ctx: Context) -> Iterator[Result]:
        for i in range(params.count):
            target = params.name + (f"/{i}" if params.count > 1 else "") + (ESCAPES if params.escapes else "")
            yield Result.failed(target, target)


@pytest.fixture
def hostile_plugin() -> Iterator[type]:
    from compliance import plugins

    plugins.register(Hostile)
    yield Hostile
    plugins.unregister(Hostile.name)


def control(cid: str, title: str, params: dict[str, Any]) -> str:
    return (
        f"- id: {cid}\n  title: {json.dumps(title)}\n  theme: technological\n  severity: low\n"
        f"  checks:\n    - plugin: hostile_output\n      params: {json.dumps(params)}\n"
    )


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def neutralised(value: str) -> str:
    return "'" + value


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


# -- CSV formula injection ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", FORMULAS)
def test_text_that_a_spreadsheet_would_run_gets_a_quote(value: str) -> None:
    from compliance.safe_output import SafeCsvWriter

    out = io.StringIO()
    SafeCsvWriter(out).writerow([value, "plain", "a=b"])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == [neutralised(value), "plain", "a=b"]


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (-3, "-3"),
        (-1.5, "-1.5"),
        ("-3", "-3"),
        ("+31", "+31"),
        ("-1.5e3", "-1.5e3"),
        ("-", "'-"),
        ("-3+1", "'-3+1"),
        ("+31 20 123 4567", "'+31 20 123 4567"),
        (None, ""),
    ],
)
def test_numbers_stay_numbers(value: Any, written: str) -> None:
    from compliance.safe_output import SafeCsvWriter

    out = io.StringIO()
    SafeCsvWriter(out, lineterminator="\n").writerow([value])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == [written]


def test_findings_csv_neutralises_targets_messages_and_titles(project: Project, hostile_plugin: type) -> None:
    project.control("c.yaml", "".join(control(f"X-{i}", value, {"name": value}) for i, value in enumerate(FORMULAS)))
    assert project.run("scan").exit_code == 1
    rows = csv_rows(ok(project.run("findings", "--format", "csv")).stdout)
    assert sorted((r["title"], r["target"], r["message"]) for r in rows) == sorted(
        (neutralised(v), neutralised(v), neutralised(v.strip())) for v in FORMULAS
    )  # messages are stripped


def test_incident_list_and_export_csv_neutralise_the_title(project: Project) -> None:
    from tests.incidents.conftest import INCIDENT_SETTINGS, new_letter

    project.write_config(INCIDENT_SETTINGS)
    hostile = '=HYPERLINK("http://evil.example","Letter")'
    new_letter(project, "--title", hostile, "--cause", "@SUM(1+1)")  # the later --title wins
    for args in (("incident", "list", "--format", "csv"), ("incident", "export", "--all", "--format", "csv")):
        [row] = csv_rows(ok(project.run(*args)).stdout)
        assert (row["title"], row["cause"], row["subjects"]) == (neutralised(hostile), "'@SUM(1+1)", "1"), args


def test_attest_and_exceptions_list_csv_neutralise_people_and_notes(project: Project, tmp_path: Path) -> None:
    project.control(
        "c.yaml",
        "- id: POL-1\n  title: Policy\n  theme: organizational\n  severity: low\n"
        "  checks:\n    - plugin: evidence\n      params: {requirement: An approved policy}\n",
    )
    evidence = tmp_path / "policy.pdf"
    evidence.write_bytes(b"%PDF-1.4 policy")
    ok(
        project.run(
            "attest",
            "POL-1",
            "--by",
            "+1+1",
            "--evidence",
            str(evidence),
            "--valid-until",
            "2099-12-31",
            "--note",
            "=1+1",
        )
    )
    [row] = csv_rows(ok(project.run("attest", "list", "--format", "csv")).stdout)
    assert (row["by"], row["note"]) == ("'+1+1", "'=1+1")
    ok(project.run("exceptions", "add", "POL-1", "--reason", "-1+1", "--approved-by", "@boss", "--until", "2099-12-31"))
    [row] = csv_rows(ok(project.run("exceptions", "list", "--format", "csv")).stdout)
    assert (row["reason"], row["approved_by"]) == ("'-1+1", "'@boss")


def _decide_not_applicable(project: Project, reason: str) -> None:
    project.config.write_text(
        f"database:\n  url: {project.db_url}\ncontrols:\n  paths: [controls]\n  bundled: [bio2]\n", encoding="utf-8"
    )
    ok(project.run("controls", "applicability", "8.15.05", "--not-applicable", "--reason", reason))


def test_soa_csv_neutralises_the_reason(project: Project) -> None:
    _decide_not_applicable(project, "=1+1 no own time sources")
    rows = csv_rows(ok(project.run("controls", "soa", "--format", "csv")).stdout)
    reasons = {r["reason"] for r in rows if r["reason"]}
    assert "'=1+1 no own time sources" in reasons
    assert not any(v.startswith(("=", "+", "@")) for r in rows for v in r.values())


def test_ensia_csv_and_xlsx_keep_formulas_text(project: Project, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    _decide_not_applicable(project, "=1+1 no own time sources")
    text = ok(project.run("ensia", "export", "--year", "2026", "--format", "csv")).stdout
    cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
    assert not any(c.startswith(("=", "+", "@", "\t", "\r")) for c in cells)
    assert "=1+1 no own time sources" in text  # inside the reasoning, where it is no formula
    ok(project.run("ensia", "export", "--year", "2026", "--format", "xlsx", "--output", str(tmp_path / "e.xlsx")))
    book = load_workbook(tmp_path / "e.xlsx")
    found = [
        c
        for sheet in book
        for row in sheet.iter_rows()
        for c in row
        if isinstance(c.value, str) and c.value.startswith("=")
    ]
    assert [(c.value, c.data_type, c.quotePrefix) for c in found] == [("=1+1 no own time sources", "s", True)]
    assert not any(c.data_type == "f" for sheet in book for row in sheet.iter_rows() for c in row)


# -- control characters on a terminal ----------------------------------------------------------------------


def test_tables_show_escape_sequences_escaped(project: Project, hostile_plugin: type) -> None:
    project.control("c.yaml", control("ESC-1", "Escapes", {"name": "share", "escapes": True}))
    for args in (("scan",), ("findings",)):
        result = project.run(*args)
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\x9b" not in result.stdout, args
        assert SHOWN in result.stdout.replace("\n", "").replace("│", "").replace(" ", ""), args


def test_json_escapes_every_control_character_and_keeps_the_value(project: Project, hostile_plugin: type) -> None:
    project.control("c.yaml", control("ESC-1", "Escapes", {"name": "share", "escapes": True}))
    result = project.run("scan", "--format", "json")
    assert result.exit_code == 1
    assert not any(ch in result.stdout for ch in "\x1b\x07\x9b")
    assert "\\u001b]0;pwned\\u0007" in result.stdout and "\\u009b2J" in result.stdout
    [row] = json.loads(result.stdout)["results"]
    assert row["target"] == "share" + ESCAPES


def test_incident_show_and_list_escape_a_title_written_into_the_database(project: Project) -> None:
    from sqlalchemy import update

    from compliance.db import Database
    from compliance.db.models import IncidentRow
    from tests.incidents.conftest import INCIDENT_SETTINGS, new_letter

    project.write_config(INCIDENT_SETTINGS)
    incident = new_letter(project)
    db = Database(project.db_url)  # someone who can write the database; the input checks never saw this
    try:
        with db.transaction() as session:
            session.execute(update(IncidentRow).where(IncidentRow.id == incident).values(title="Letter" + ESCAPES))
    finally:
        db.close()
    for args in (("incident", "show", incident), ("incident", "list")):
        out = project.run(*args).stdout
        assert not any(ch in out for ch in "\x1b\x07\x9b"), args
        assert "\\x1b]0;pwned" in out, args


def test_an_error_message_shows_the_escape_sequence_of_a_user_value(project: Project) -> None:
    project.control("c.yaml", "")
    result = project.run("scan", "--control", "X\x1b]0;pwned\x07")
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "no control with id 'X\\x1b]0;pwned\\x07'" in result.stderr


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\x1bb", "a\\x1bb"),
        ("a\rb", "a\\x0db"),
        ("a\nb", "a\\x0ab"),
        ("a\u202eb", "a\\u202eb"),
        ("a\x7fb", "a\\x7fb"),
        ("€ é", "€ é"),
    ],
)
def test_printable_escapes_what_a_terminal_would_act_on(text: str, shown: str) -> None:
    from compliance.safe_output import printable

    assert printable(text) == shown
    assert printable("line 1\n\tline 2\x1b", multiline=True) == "line 1\n\tline 2\\x1b"


# -- scan --format json is linear in a control's results ---------------------------------------------------


class CountingTargets(tuple):  # type: ignore[type-arg]
    """The targets of a control outcome that count how often they are looked at."""

    visits = 0

    def __iter__(self) -> Iterator[Any]:
        for target in super().__iter__():
            CountingTargets.visits += 1
            yield target


@pytest.mark.parametrize("n", [1, 2_000])
def test_scan_json_looks_at_each_target_a_bounded_number_of_times(n: int) -> None:
    """Structural: the results of a control with N targets are turned into JSON looking at O(N) targets,
    not N per result (64,000 results took 65 s)."""
    from compliance.engine.commands import _results_json
    from compliance.store import ControlOutcome, TargetOutcome

    targets = CountingTargets(TargetOutcome(f"t{i}", Status.FAIL, "m", accepted=i % 2 == 0) for i in range(n))
    results = tuple(("hostile_output", 0, Result.failed(f"t{i}", "m")) for i in range(n))
    CountingTargets.visits = 0
    rows = _results_json(ControlOutcome("X-1", "low", Status.FAIL, targets, results))
    assert CountingTargets.visits <= 2 * n
    assert [r["accepted"] for r in rows] == [i % 2 == 0 for i in range(n)]


def test_an_exception_for_every_target_accepts_every_result() -> None:
    from compliance.engine.commands import _results_json
    from compliance.store import ControlOutcome, TargetOutcome

    targets = (TargetOutcome("*", Status.FAIL, "m", accepted=True), TargetOutcome("a", Status.FAIL, "m"))
    results = (("p", 0, Result.failed("a", "m")), ("p", 0, Result.failed("b", "m")))
    assert [r["accepted"] for r in _results_json(ControlOutcome("X-1", "low", Status.FAIL, targets, results))] == [
        True,
        True,
    ]


def test_scan_json_of_a_control_with_many_results(project: Project, hostile_plugin: type) -> None:
    project.control("c.yaml", control("MANY-1", "Many", {"name": "file", "count": 3_000}))
    result = project.run("scan", "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert len(data["results"]) == 3_000 and data["summary"]["fail"] == 1
    assert {r["target"] for r in data["results"]} == {f"file/{i}" for i in range(3_000)}
