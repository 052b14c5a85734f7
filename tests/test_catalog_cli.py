"""Issue 7 as a user meets it: the shipped catalog, evidence, applicability, coverage and the VvT."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project, local_today

BUNDLED = "controls:\n  paths: [controls]\n  bundled: [bio2, avg, forum-standaardisatie]\n"


@pytest.fixture
def catalog_project(project: Project) -> Project:
    project.config.write_text(f"database:\n  url: {project.db_url}\n{BUNDLED}", encoding="utf-8")
    return project


def test_list_by_framework(catalog_project: Project) -> None:
    avg = json.loads(catalog_project.run("controls", "list", "--framework", "avg", "--format", "json").stdout)
    assert {"AVG-REGISTER", "AVG-DPIA", "AVG-PROCESSORS", "AVG-DPO", "AVG-BREACHES", "AVG-PRIVACY-STATEMENT",
            "AVG-RETENTION"} <= {c["id"] for c in avg}
    assert all(c["source"] == "bundled" and "avg" in c["frameworks"] for c in avg)
    forum = json.loads(catalog_project.run("controls", "list", "--framework", "forum-standaardisatie",
                                           "--format", "json").stdout)
    assert {c["id"] for c in forum} >= {"FS-HTTPS", "FS-MAIL-AUTH", "FS-DNSSEC", "FS-SECURITY-TXT"}
    # their checks run on target groups this configuration leaves out: nothing of them runs yet
    assert {c["kind"] for c in forum} == {"unconfigured"}
    assert all(c["unconfigured_groups"] for c in forum)
    catalog_project.config.write_text(f"database:\n  url: {catalog_project.db_url}\n{BUNDLED}"
                                      "targets:\n  websites: [https://www.gemeente.example]\n", encoding="utf-8")
    forum = json.loads(catalog_project.run("controls", "list", "--framework", "forum-standaardisatie",
                                           "--format", "json").stdout)
    https = next(c for c in forum if c["id"] == "FS-HTTPS")
    assert (https["kind"], https["unconfigured_groups"]) == ("automated", [])


def test_evidence_passes_while_valid_and_fails_when_missing_expired_or_changed(catalog_project: Project,
                                                                               tmp_path: Path) -> None:
    p = catalog_project
    first = json.loads(p.run("scan", "--control", "AVG-REGISTER", "--format", "json").stdout)["results"][0]
    assert first["status"] == "fail"
    assert first["message"].startswith("No evidence recorded for: Register of processing activities")
    assert "compliance attest AVG-REGISTER --by NAME --evidence PATH_OR_URL" in first["message"]

    document = tmp_path / "register.xlsx"
    document.write_bytes(b"register v1")
    added = p.run("attest", "AVG-REGISTER", "--by", "FG", "--evidence", str(document), "--valid-until",
                  "2099-01-31", "--note", "reviewed by the FG", "--format", "json")
    assert added.exit_code == 0, added.output
    record = json.loads(added.stdout)
    assert record["sha256"] == hashlib.sha256(b"register v1").hexdigest()
    assert record["evidence"] == str(document) and record["note"] == "reviewed by the FG"
    assert p.run("scan", "--control", "AVG-REGISTER").exit_code == 0

    document.write_bytes(b"register v2, edited after the attestation")
    changed = json.loads(p.run("scan", "--control", "AVG-REGISTER", "--format", "json").stdout)["results"][0]
    assert changed["status"] == "fail" and "changed since it was attested" in changed["message"]

    url = p.run("attest", "AVG-PRIVACY-STATEMENT", "--by", "Web team", "--evidence",
                "https://www.gemeente.example/privacy", "--valid-until", "2099-01-01")
    assert url.exit_code == 0
    listed = json.loads(p.run("attest", "list", "--format", "json").stdout)
    assert [(d["control"], d["state"]) for d in listed] == [("AVG-PRIVACY-STATEMENT", "valid"),
                                                            ("AVG-REGISTER", "valid")]


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("store_existed", [False, True])
def test_evidence_copies_are_readable_by_the_monitor_only(catalog_project: Project, tmp_path: Path,
                                                          store_existed: bool) -> None:
    document = tmp_path / "verwerkersovereenkomst.pdf"
    document.write_bytes(b"signed agreement")
    document.chmod(0o644)
    store = tmp_path / "evidence"
    if store_existed:
        store.mkdir(mode=0o755)
        store.chmod(0o755)
    umask = os.umask(0o022)
    try:
        added = catalog_project.run("attest", "AVG-PROCESSORS", "--by", "FG", "--evidence", str(document),
                                    "--valid-until", "2099-01-31", "--copy", "--format", "json")
    finally:
        os.umask(umask)
    assert added.exit_code == 0, added.output
    copy = Path(json.loads(added.stdout)["copy"])
    assert copy.parent == store and copy.read_bytes() == b"signed agreement"
    assert (stat.S_IMODE(store.stat().st_mode), stat.S_IMODE(copy.stat().st_mode)) == (0o700, 0o600)


def test_attest_refuses_bad_input_and_stores_nothing(catalog_project: Project, tmp_path: Path) -> None:
    p = catalog_project
    missing = p.run("attest", "AVG-REGISTER", "--by", "FG", "--evidence", str(tmp_path / "nope.pdf"),
                    "--valid-until", "2099-01-01")
    assert missing.exit_code == 2 and "does not exist or is not a file" in missing.stderr
    past = p.run("attest", "AVG-REGISTER", "--by", "FG", "--evidence", "https://x.example/r",
                 "--valid-until", "2001-01-01")
    assert past.exit_code == 2 and "lies in the past" in past.stderr
    unknown = p.run("attest", "AVG-REGISTR", "--by", "FG", "--evidence", "https://x.example/r",
                    "--valid-until", "2099-01-01")
    assert unknown.exit_code == 2 and "did you mean 'AVG-REGISTER'?" in unknown.stderr
    assert json.loads(p.run("attest", "list", "--format", "json").stdout) == []


def test_expired_evidence_says_what_to_renew(catalog_project: Project) -> None:
    from datetime import UTC, datetime, timedelta

    from compliance.db import Database
    from compliance.db.models import Attestation

    db = Database(catalog_project.db_url)
    with db.transaction() as session:  # an attestation recorded last year that ran out yesterday
        session.add(Attestation(control_id="AVG-DPIA", attested_by="FG", evidence="https://x.example/dpia",
                                valid_until=local_today() - timedelta(days=1), recorded_at=datetime.now(UTC)
                                - timedelta(days=300), recorded_by="t"))
    db.close()
    [result] = json.loads(catalog_project.run("scan", "--control", "AVG-DPIA", "--format", "json").stdout)["results"]
    assert result["status"] == "fail"
    assert result["message"].startswith("Evidence for 'Overview of processing with high risk and their DPIAs' "
                                        "(https://x.example/dpia by FG) expired on ")
    assert "renew it and record it with `compliance attest AVG-DPIA" in result["message"]
    listed = json.loads(catalog_project.run("attest", "list", "--format", "json").stdout)
    assert [(d["control"], d["state"], d["days_left"]) for d in listed] == [("AVG-DPIA", "expired", -1)]


def test_breach_register_control_reads_the_register(catalog_project: Project) -> None:
    from datetime import UTC, datetime, timedelta

    p = catalog_project
    aware = (datetime.now(UTC) - timedelta(hours=80)).isoformat()
    occurred = (datetime.now(UTC) - timedelta(hours=90)).isoformat()
    new = p.run("incident", "new", "--title", "Letter to wrong address", "--aware-at", aware, "--occurred-at",
                occurred, "--nature", "confidentiality", "--data-category", "social-welfare", "--subjects", "1",
                "--description", "A benefit decision was sent to the wrong address.", "--format", "json")
    assert new.exit_code == 0, new.output
    incident = json.loads(new.stdout)["id"]
    [result] = json.loads(p.run("scan", "--control", "AVG-BREACHES", "--format", "json").stdout)["results"]
    assert result["status"] == "fail"
    assert result["message"] == (f"1 open breach(es) passed the 72-hour deadline without a notification or a "
                                 f"decision not to notify: {incident}.")


def test_applicability_coverage_and_soa(catalog_project: Project) -> None:
    p = catalog_project
    decided = p.run("controls", "applicability", "7.04", "--not-applicable", "--reason",
                    "No own data centre; hosted at the SSC", "--by", "CISO")
    assert decided.exit_code == 0 and decided.stdout == "7.4: does not apply (No own data centre; hosted at the SSC)\n"
    assert p.run("controls", "applicability", "7.4", "--not-applicable").exit_code == 2  # no reason
    bad = p.run("controls", "applicability", "9.1", "--not-applicable", "--reason", "x")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: '9.1' is neither an ISO/IEC 27002:2022 control number (e.g. 7.4)")
    missing = p.run("controls", "applicability", "5.38", "--not-applicable", "--reason", "x")
    assert missing.stderr == "error: ISO/IEC 27002:2022 has no control 5.38\n"
    measure = p.run("controls", "applicability", "8.13.4", "--not-applicable", "--reason", "no tapes")
    assert measure.stdout.startswith("8.13.04: does not apply")

    coverage = json.loads(p.run("controls", "coverage", "--format", "json").stdout)
    physical = next(g for g in coverage["groups"] if g["group"] == "physical")
    assert physical["requirements"] == 14 and physical["not_applicable_numbers"] == ["7.4"]
    assert coverage["totals"]["requirements"] == 93
    assert sum(coverage["totals"][k] for k in ("automated", "evidence", "missing")) == 93

    statement = json.loads(p.run("controls", "soa", "--format", "json").stdout)
    soa = statement["controls"]
    assert len(soa) == 93
    row = {r["number"]: r for r in soa}
    assert row["7.4"]["applicable"] is False and row["7.4"]["reason"] == "No own data centre; hosted at the SSC"
    assert row["8.13"]["measures_not_applicable"] == {"8.13.04": "no tapes"}
    assert "BIO-BACKUP" in row["8.13"]["controls"]
    kinds = {m["coverage"] for m in statement["measures"] if m["control"] == "8.13" and m["applicable"]}
    assert row["8.13"]["coverage"] == next(k for k in ("none", "evidence", "automated") if k in kinds)
    assert row["5.1"]["coverage"] == "evidence" and row["5.1"]["status"] == "not evaluated"
    rows = list(csv.DictReader(io.StringIO(p.run("controls", "soa", "--format", "csv", "--lang", "en").stdout)))
    assert sum(r["row"] == "control" for r in rows) == 93 and rows[0]["number"] == "5.1"
    assert [r["number"] for r in rows if r["row"] == "measure"] == [m["number"] for m in statement["measures"]]

    nl = p.run("controls", "soa", "--format", "md", "--lang", "nl").stdout
    assert nl.startswith("# Verklaring van Toepasselijkheid")
    assert "| 7.4 | Bewaking van terreinen en gebouwen | – | nee | No own data centre; hosted at the SSC |" in nl
    en = p.run("controls", "soa", "--format", "html", "--lang", "en").stdout
    assert "<h1>Statement of applicability</h1>" in en and "<h2>Physical controls</h2>" in en


def test_not_applicable_controls_drop_out(catalog_project: Project) -> None:
    from compliance import soa
    from compliance.db import Database

    p = catalog_project
    p.run("scan", "--fail-on", "none")
    p.run("controls", "applicability", "BIO-UTILITIES", "--not-applicable", "--reason", "no server room")
    for number in ("7.10", "7.14"):  # every ISO control BIO-DISPOSAL refers to
        p.run("controls", "applicability", number, "--not-applicable", "--reason", "outsourced")
    p.run("controls", "applicability", "7.10", "--applicable", "--reason", "we do keep tapes after all")
    db = Database(p.db_url)
    try:
        assert soa.not_applicable_control_ids(db) == {"BIO-UTILITIES"}
    finally:
        db.close()


def _three_measures() -> tuple[str, list[str]]:
    """An ISO control with at least three BIO2 measures, and its first three (from the framework data)."""
    from compliance.frameworks import load

    requirement = next(r for r in load("bio2").requirements if len(r.measures) >= 3)
    return requirement.number, list(requirement.measures[:3])


def _own_catalog(project: Project) -> tuple[str, list[str]]:
    """AUTO (probe) names the first measure, PAPER (evidence) the second, WHOLE only the ISO control."""
    iso, (m1, m2, m3) = _three_measures()
    project.control("own.yaml", f"""
- id: AUTO
  title: Automated
  theme: technological
  severity: high
  references: {{bio2: "{m1}", iso27002: "{iso}"}}
  checks:
    - plugin: probe
      params: {{name: a, outcome: fail}}
- id: PAPER
  title: On paper
  theme: organizational
  severity: medium
  references: {{bio2: ["{m1}", "{m2}"]}}
  checks:
    - plugin: evidence
      params: {{requirement: Signed policy, max_age: 1y}}
- id: WHOLE
  title: The ISO control as a whole
  theme: organizational
  severity: low
  references: {{bio2: "{iso}"}}
  checks:
    - plugin: probe
      params: {{name: w, outcome: pass}}
""")
    return iso, [m1, m2, m3]


def measures_json(project: Project, *args: str) -> dict[str, Any]:
    result = project.run("controls", "coverage", "--by", "measure", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_coverage_per_measure_automated_evidence_none_and_applicability(project: Project, probe_plugin: type) -> None:
    from compliance.frameworks import load

    iso, (m1, m2, m3) = _own_catalog(project)
    data = measures_json(project)
    spec = load("bio2")
    assert [m["number"] for m in data["measures"]] == [m.number for m in spec.measures]
    row = {m["number"]: m for m in data["measures"]}
    measure = spec.measure(m1)
    assert measure is not None
    assert row[m1] == {"number": m1, "control": iso, "title": measure.title["en"], "hygiene": list(measure.hygiene),
                       "cbw": measure.cbw, "coverage": "automated", "controls": ["AUTO", "PAPER"],
                       "applicable": True, "reason": "", "status": "not evaluated"}
    # evidence only; WHOLE names the ISO control only, so it covers none of its measures
    assert (row[m2]["coverage"], row[m2]["controls"]) == ("evidence", ["PAPER"])
    assert (row[m3]["coverage"], row[m3]["controls"]) == ("none", [])
    others = len(spec.measures) - 2
    assert data["summary"] == {"measures": len(spec.measures), "automated": 1, "evidence": 1, "none": others,
                               "not_applicable": 0}

    project.run("scan", "--fail-on", "none")
    assert measures_json(project)["measures"][[m.number for m in spec.measures].index(m1)]["status"] == "fail"
    # an ISO control's decision holds for its measures; a measure's own decision comes first
    assert project.run("controls", "applicability", iso, "--not-applicable", "--reason", "outsourced").exit_code == 0
    assert project.run("controls", "applicability", m2, "--applicable").exit_code == 0
    # a control marked not applicable by its id covers nothing
    assert project.run("controls", "applicability", "AUTO", "--not-applicable", "--reason", "replaced").exit_code == 0
    row = {m["number"]: m for m in measures_json(project, "--lang", "nl")["measures"]}
    assert (row[m1]["applicable"], row[m1]["reason"]) == (False, "outsourced")
    # PAPER has no attestation yet: it fails, and so does the measure it alone covers now
    assert (row[m1]["coverage"], row[m1]["controls"], row[m1]["status"]) == ("evidence", ["PAPER"], "fail")
    assert row[m2]["applicable"] is True and row[m3]["applicable"] is False
    assert row[m1]["title"] == measure.title["nl"]
    summary = measures_json(project)["summary"]
    iso_measures = len(spec.get(iso).measures)  # type: ignore[union-attr]
    assert summary["not_applicable"] == iso_measures - 1
    assert summary["automated"] == 0 and summary["evidence"] == 1


def test_coverage_by_measure_table_and_framework_guard(project: Project, probe_plugin: type) -> None:
    _, (m1, _, _) = _own_catalog(project)
    table = project.run("controls", "coverage", "--by", "measure")
    assert table.exit_code == 0 and m1 in table.stdout and "automated" in table.stdout
    wrong = project.run("controls", "coverage", "--by", "measure", "--framework", "avg")
    assert wrong.exit_code == 2 and "--by measure lists BIO2 controls and measures" in wrong.stderr
    by_theme = json.loads(project.run("controls", "coverage", "--format", "json").stdout)
    assert set(by_theme) == {"framework", "groups", "totals"}  # the default view is unchanged


def test_soa_lists_each_measure_with_its_own_coverage(project: Project, probe_plugin: type) -> None:
    iso, (m1, m2, m3) = _own_catalog(project)
    data = json.loads(project.run("controls", "soa", "--format", "json", "--lang", "en").stdout)
    control = next(r for r in data["controls"] if r["number"] == iso)
    measures = {m["number"]: m for m in data["measures"] if m["control"] == iso}
    assert (measures[m1]["coverage"], measures[m2]["coverage"], measures[m3]["coverage"]) == \
        ("automated", "evidence", "none")
    # the ISO control takes the weakest of its measures, never `automated` because one of them is
    assert control["coverage"] == "none" and control["controls"] == ["WHOLE", "AUTO", "PAPER"]
    assert data["summary"]["measures_automated"] == 1 and data["summary"]["measures_evidence"] == 1

    for number in control["measures"][2:]:
        project.run("controls", "applicability", number, "--not-applicable", "--reason", "not here")
    data = json.loads(project.run("controls", "soa", "--format", "json").stdout)
    assert next(r for r in data["controls"] if r["number"] == iso)["coverage"] == "evidence"

    rows = list(csv.DictReader(io.StringIO(project.run("controls", "soa", "--format", "csv").stdout)))
    at = [r["number"] for r in rows].index(iso)
    assert [(r["row"], r["number"], r["coverage"]) for r in rows[at:at + 3]] == [
        ("control", iso, "evidence"), ("measure", m1, "automated"), ("measure", m2, "evidence")]
    md = project.run("controls", "soa", "--format", "md", "--lang", "nl").stdout
    assert f"| ↳ {m1} |" in md and "| geautomatiseerd | AUTO, PAPER |" in md
    html = project.run("controls", "soa", "--format", "html", "--lang", "en").stdout
    assert f'<td class="num">↳ {m2}</td>' in html
