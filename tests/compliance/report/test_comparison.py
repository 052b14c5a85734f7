"""`compliance report --all-orgs`: the organisations side by side, their groups, anonymised, in Dutch.

Four organisations, each in a database of its own, seeded through the real engine (report/conftest.py):

| code    | name             | state as of 8 March 2026                               | score |
|---------|------------------|--------------------------------------------------------|-------|
| utrecht | Gemeente Utrecht | the report tests' history: a critical control failing  | 41.2  |
| zeist   | Gemeente Zeist   | everything passes (first scanned in week 10)           | 100.0 |
| bunnik  | Gemeente Bunnik  | both controls passed in week 9, one fails in week 10   | 50.0  |
| houten  | Gemeente Houten  | never scanned                                          | none  |
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from compliance.report.comparison import groups_of, neutral_codes
from tests.compliance.report.conftest import AMSTERDAM, local, seed
from tests.compliance.report.history import History, Spec
from tests.compliance.report.test_translations import entries
from tests.conftest import Project

NAMES = {"utrecht": "Gemeente Utrecht", "zeist": "Gemeente Zeist", "bunnik": "Gemeente Bunnik",
         "houten": "Gemeente Houten"}
AS_OF = ("--as-of", "2026-03-08")
P = Spec("P", "technological", "high", title="Patches installed")
Q = Spec("Q", "organizational", "high", title="Policy approved")


@pytest.fixture
def orgs(project: Project, probe_plugin: type) -> Project:
    from compliance import orgs
    from compliance.db import Database
    from compliance.store import Store

    assert project.run("org", "rename", "default", "utrecht", "--name", NAMES["utrecht"]).exit_code == 0
    for code in ("zeist", "bunnik", "houten"):
        result = project.run("org", "add", code, "--name", NAMES[code])
        assert result.exit_code == 0, result.stderr
    home = Database(project.db_url)
    try:
        known = {org.code: org for org in orgs.registry(home)}
        scans = {"zeist": [(local(2), {P: {"p": "pass"}, Q: {"q": "pass"}})],
                 "bunnik": [(local(24, 2), {P: {"p": "pass"}, Q: {"q": "pass"}}),
                            (local(3), {P: {"p": "pass"}, Q: {"q": "fail"}})]}
        for code in ("utrecht", "zeist", "bunnik"):
            database = orgs.open_org(home, known[code])
            try:
                store = Store(database, AMSTERDAM)
                if code == "utrecht":
                    seed(database, store)
                for when, outcomes in scans.get(code, []):
                    History(database, store).scan(when, outcomes)
            finally:
                if database is not home:
                    database.close()
    finally:
        home.close()
    return project


def run_json(project: Project, *args: str) -> dict[str, Any]:
    result = project.run("report", "--all-orgs", *AS_OF, "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_each_organisation_in_its_group_with_its_own_reports_figures(orgs: Project) -> None:
    report = run_json(orgs)
    assert (report["report"], report["version"], report["scope"], report["anonymised"]) == (
        "organisation-comparison", 1, "all", False)
    assert report["groups"] == {"leading_percent": 20, "starting_percent": 20, "leading": 1, "on_the_way": 1,
                                "starting": 1, "none": 1}
    assert [(o["code"], o["name"], o["rank"], o["group"], o["score"]) for o in report["organisations"]] == [
        ("zeist", "Gemeente Zeist", 1, "leading", 100.0), ("bunnik", "Gemeente Bunnik", 2, "on_the_way", 50.0),
        ("utrecht", "Gemeente Utrecht", 3, "starting", 41.2), ("houten", "Gemeente Houten", None, "none", None)]
    assert len(report["trend_periods"]) == 12 and report["trend_periods"][-1] == "2026-W10"
    for org in report["organisations"]:
        result = orgs.run("report", "--org", org["code"], *AS_OF, "--format", "json")
        assert result.exit_code == 0, result.stderr
        alone = json.loads(result.stdout)
        assert report["trend_periods"] == [p["period"] for p in alone["trend"]]
        assert (org["score"], org["previous"], org["change"], org["passing"], org["failing"], org["accepted"]) == (
            alone["compliance"]["score"], alone["compliance"]["previous"], alone["compliance"]["change"],
            alone["compliance"]["passing"], alone["compliance"]["failing"], alone["compliance"]["accepted"])
        assert org["themes"] == [{k: t[k] for k in ("theme", "clause", "score", "light")} for t in alone["themes"]]
        assert org["trend"] == [p["score"] for p in alone["trend"]]
        critical = [r for r in alone["failing_controls"] if r["severity"] == "critical"]
        assert org["critical"] == {"open_findings": sum(r["targets_failing"] for r in critical),
                                   "failing_controls": sum(not r["accepted"] for r in critical)}
        assert org["breaches"] == {k: alone["incidents"][k] for k in ("new", "open", "overdue",
                                                                       "notified_authority", "notified_within_72h")}
    utrecht = report["organisations"][2]
    assert utrecht["critical"] == {"open_findings": 2, "failing_controls": 1}
    assert utrecht["breaches"] == {"new": 3, "open": 4, "overdue": 1, "notified_authority": 2,
                                   "notified_within_72h": 1}
    assert [o["trend"][-2:] for o in report["organisations"][:2]] == [[None, 100.0], [100.0, 50.0]]


def test_the_group_shares_are_parameters(orgs: Project) -> None:
    report = run_json(orgs, "--leading", "0", "--starting", "70")  # 70 % of 3 is 2.1: two starters
    assert [o["group"] for o in report["organisations"]] == ["on_the_way", "starting", "starting", "none"]
    assert report["groups"]["starting_percent"] == 70


def test_anonymised_no_name_or_code_is_left(orgs: Project) -> None:
    from compliance import orgs as registry
    from compliance.db import Database

    home = Database(orgs.db_url)
    try:
        neutral = neutral_codes(registry.registry(home))
    finally:
        home.close()
    assert sorted(neutral.values()) == ["G01", "G02", "G03", "G04"]
    outputs = {}
    for fmt in ("json", "html", "md"):
        for lang in ("nl", "en"):
            result = orgs.run("report", "--all-orgs", "--anonymise", *AS_OF, "--format", fmt, "--lang", lang)
            assert result.exit_code == 0, result.stderr
            outputs[fmt, lang] = result.stdout
    for key, text in outputs.items():
        left = [word for code, name in NAMES.items() for word in (code, name, name.split()[1])
                if word.lower() in text.lower()]
        assert left == [], key
        assert all(code in text for code in neutral.values()), key
    report = json.loads(outputs["json", "nl"])
    assert report["anonymised"] is True
    assert [(o["code"], o["name"], o["group"]) for o in report["organisations"]] == [
        (neutral["zeist"], neutral["zeist"], "leading"), (neutral["bunnik"], neutral["bunnik"], "on_the_way"),
        (neutral["utrecht"], neutral["utrecht"], "starting"), (neutral["houten"], neutral["houten"], "none")]
    assert run_json(orgs, "--anonymise") | {"generated_at": ""} == report | {"generated_at": ""}  # stable


def test_only_the_organisations_the_user_may_act_for(orgs: Project) -> None:
    orgs.write_config(f"orgs:\n  users:\n    {getpass.getuser()}: [zeist, bunnik]\n")
    report = run_json(orgs)
    assert report["scope"] == "allowed"
    assert [(o["code"], o["group"]) for o in report["organisations"]] == [("zeist", "on_the_way"),
                                                                          ("bunnik", "on_the_way")]
    for fmt in ("html", "md"):
        result = orgs.run("report", "--all-orgs", *AS_OF, "--format", fmt, "--lang", "en")
        assert result.exit_code == 0, result.stderr
        assert "Only the organisations you may act for are included." in result.stdout
        assert "utrecht" not in result.stdout.lower() and "houten" not in result.stdout.lower()
    orgs.write_config(f"orgs:\n  users:\n    {getpass.getuser()}: []\n")
    result = orgs.run("report", "--all-orgs", *AS_OF)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (f"error: user '{getpass.getuser()}' may act for none of this monitor's organisations; "
                             "the `orgs:` section of compliance.yaml names who may act for which organisation\n")


def shown_text(html: str) -> str:
    """What a reader of an HTML page sees: its text and its tooltips (not its CSS or class names)."""
    from html.parser import HTMLParser

    class Reader(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.in_style = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.in_style = tag == "style"
            self.parts += [value or "" for name, value in attrs if name == "title"]

        def handle_endtag(self, tag: str) -> None:
            self.in_style = False

        def handle_data(self, data: str) -> None:
            if not self.in_style:
                self.parts.append(data)

    reader = Reader()
    reader.feed(html)
    return "\n".join(reader.parts)


def test_the_dutch_comparison_has_no_english_label(orgs: Project) -> None:
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    from compliance.report import labels

    root = Path(__file__).resolve().parents[3]
    with (root / "compliance/report/comparison-babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    english = {text for m in extract_from_dir(str(root), method_map, options_map, keywords=keywords)
               for text in ([m[2]] if isinstance(m[2], str) else m[2])}
    english |= {*labels.THEMES.values(), *labels.LIGHTS.values()}
    english = {text.split("%(")[0].strip(" .") for text in english} - {""}
    for fmt in ("html", "md"):
        output = orgs.run("report", "--all-orgs", *AS_OF, "--format", fmt).stdout
        dutch = shown_text(output) if fmt == "html" else output
        assert [text for text in english if text in dutch] == [], fmt
        assert "Organisaties vergeleken" in dutch and "koplopers" in dutch and "Technologische" in dutch
        assert "Organisations compared" in orgs.run("report", "--all-orgs", *AS_OF, "--format", fmt,
                                                    "--lang", "en").stdout


def test_every_text_of_the_comparison_is_translated_and_compiled() -> None:
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parents[3]
    folder = root / "compliance/report/locale/nl/LC_MESSAGES"
    with (root / "compliance/report/comparison-babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = {m[2] if isinstance(m[2], str) else tuple(m[2])
             for m in extract_from_dir(str(root), method_map, options_map, keywords=keywords)}
    with (folder / "comparison.po").open("rb") as po, (folder / "comparison.mo").open("rb") as mo:
        catalog, compiled = read_po(po), read_mo(mo)
    translated = {m.id if isinstance(m.id, str) else tuple(m.id) for m in catalog if m.id and m.string}
    assert (found - translated, translated - found) == (set(), set())
    assert entries(compiled) == entries(catalog)  # compiled: pybabel compile (see comparison-babel.cfg)


def test_pdf_to_a_file(orgs: Project) -> None:
    target = orgs.root / "benchmark.pdf"
    result = orgs.run("report", "--all-orgs", "--anonymise", *AS_OF, "--format", "pdf", "--output", str(target))
    assert (result.exit_code, result.stderr) == (0, f"wrote {target}\n")
    assert target.read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize(("args", "message"), [
    (["--anonymise"], "error: --anonymise only go with --all-orgs\n"),
    (["--leading", "10", "--starting", "10"], "error: --leading, --starting only go with --all-orgs\n"),
    (["--all-orgs", "--org", "zeist"], "error: --all-orgs covers every organisation you may act for; "
                                       "leave out --org\n"),
    (["--all-orgs", "--leading", "60", "--starting", "50"],
     "error: --leading 60 and --starting 50 together exceed 100 percent\n"),
    (["--all-orgs", "--starting", "90"], "error: --leading 20 and --starting 90 together exceed 100 percent\n"),
])
def test_option_errors(project: Project, args: list[str], message: str) -> None:
    result = project.run("report", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message)


def test_a_share_over_100_is_refused_by_the_option(project: Project) -> None:
    result = project.run("report", "--all-orgs", "--leading", "101")
    assert result.exit_code == 2 and "101 is not in the range 0<=x<=100" in result.stderr


def test_compliance_org_from_the_environment_does_not_narrow_it(orgs: Project) -> None:
    result = orgs.run("report", "--all-orgs", *AS_OF, "--format", "json", env={"COMPLIANCE_ORG": "zeist"})
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)["organisations"]) == 4


@pytest.mark.parametrize(("scores", "leading", "starting", "expected"), [
    # 3 organisations at 20 %: 0.6 rounds to one leader and one starter
    ([90, 60, 30], 20, 20, ["leading", "on_the_way", "starting"]),
    # 2 organisations at 20 %: 0.4 rounds to none
    ([90, 30], 20, 20, ["on_the_way", "on_the_way"]),
    # 1 organisation that would be both leading and starting: on the way
    ([90], 50, 50, ["on_the_way"]),
    # a tie across the leading boundary: neither leads (the group never exceeds its share)
    ([90, 90, 60, 50, 40], 20, 20, ["on_the_way", "on_the_way", "on_the_way", "on_the_way", "starting"]),
    # a tie that fits: both lead
    ([90, 90, 60, 50, 40, 40, 30, 20, 10, 5], 20, 20,
     ["leading", "leading", "on_the_way", "on_the_way", "on_the_way", "on_the_way", "on_the_way", "on_the_way",
      "starting", "starting"]),
    # all the same: nobody stands out
    ([70, 70, 70, 70, 70], 20, 20, ["on_the_way"] * 5),
    # no score: no group, and not counted in the shares (2 scored: none at 20 %)
    ([90, None, 30], 20, 20, ["on_the_way", "none", "on_the_way"]),
    ([90, 60, 30], 0, 0, ["on_the_way"] * 3),
    ([90, 60, 30], 100, 0, ["leading"] * 3),
])
def test_groups_ties_and_small_numbers(scores: list[float | None], leading: int, starting: int,
                                       expected: list[str]) -> None:
    found = groups_of({f"o{n}": s for n, s in enumerate(scores)}, leading, starting)
    assert [found[f"o{n}"] for n in range(len(scores))] == expected


def test_neutral_codes_do_not_follow_the_codes_or_the_ranking() -> None:
    from compliance.orgs import Org

    added = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    orgs = [Org(f"org{n:02d}", f"Gemeente {n}", f"compliance-org{n:02d}.db" if n else "", added, "anna")
            for n in range(12)]
    codes = neutral_codes(orgs)
    assert sorted(codes.values()) == [f"G{n:02d}" for n in range(1, 13)]
    assert codes == neutral_codes(list(reversed(orgs)))  # the order given does not matter
    assert [codes[o.code] for o in orgs] != sorted(codes.values())  # not numbered by code
