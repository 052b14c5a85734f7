"""A check on a target group runs only when the group has targets: until then it makes nothing automated.

A municipality that has not filled a group in compliance.yaml (`targets:`) runs nothing of such a check;
a control with evidence beside it is shown by its evidence only, and one with nothing beside it covers
nothing. `controls list`, `controls coverage`, the VvT and the report say so, and call the control
automated once the group has a target.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from compliance.catalog import CheckSpec, Control
from compliance.soa import check_runs, control_kind, coverage_kind, unconfigured_groups
from tests.conftest import Project

MEASURES = '["8.13.01", "8.13.02", "8.13.03", "8.13.04"]'
CONTROLS = f"""
- id: BACKUP-01
  title: Backups are made every night, and the restore test is documented
  theme: technological
  references: {{bio2: {MEASURES}}}
  severity: high
  checks:
    - plugin: evidence
      params: {{requirement: Restore test report}}
    - plugin: file_age
      params: {{max_age: 26h}}
      targets: backups
- id: REDUNDANCY-01
  title: The second data centre receives the replicas
  theme: technological
  references: {{bio2: "8.14"}}
  severity: medium
  checks:
    - plugin: file_age
      params: {{max_age: 26h}}
      targets: replicas
"""


@pytest.fixture
def town(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A monitor folder on SQLite with the two controls, and the groups `backups` and `replicas` empty."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COMPLIANCE_DATABASE_URL", raising=False)
    monkeypatch.delenv("COMPLIANCE_CONFIG", raising=False)
    shutil.copy(sqlite_template, tmp_path / "compliance.db")
    project = Project(tmp_path, f"sqlite:///{tmp_path / 'compliance.db'}")
    project.control("controls.yaml", CONTROLS)
    project.write_config("targets:\n  backups: []\n  replicas: []\n")
    return project


def fill_groups(project: Project) -> None:
    """Give both groups a target: a fresh file."""
    for name in ("nightly.tar", "replica.img"):
        (project.root / name).write_bytes(b"data")
    project.write_config(f"targets:\n  backups: [{project.root / 'nightly.tar'}]\n"
                         f"  replicas: [{project.root / 'replica.img'}]\n")


def run_json(project: Project, *args: str) -> Any:
    result = project.run(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def listed(project: Project) -> dict[str, tuple[str, list[str]]]:
    return {c["id"]: (c["kind"], c["unconfigured_groups"])
            for c in run_json(project, "controls", "list", "--format", "json")}


def coverages(project: Project) -> dict[str, Any]:
    """What each command says of 8.13 (BACKUP-01) and 8.14 (REDUNDANCY-01)."""
    themes = run_json(project, "controls", "coverage", "--format", "json")
    technological = next(g for g in themes["groups"] if g["group"] == "technological")
    by_measure = run_json(project, "controls", "coverage", "--by", "measure", "--format", "json")
    by_control = run_json(project, "controls", "coverage", "--by", "control", "--format", "json")
    soa = run_json(project, "controls", "soa", "--format", "json", "--lang", "en")
    return {
        "theme": (technological["automated"], technological["evidence"], "8.14" in technological["missing_numbers"]),
        "measures": {m["coverage"] for m in by_measure["measures"] if m["number"].startswith("8.13.")},
        "control": {c["number"]: c["coverage"] for c in by_control["controls"] if c["number"] in ("8.13", "8.14")},
        "soa": {c["number"]: c["coverage"] for c in soa["controls"] if c["number"] in ("8.13", "8.14")},
        "soa_measures": {m["coverage"] for m in soa["measures"] if m["number"].startswith("8.13.")},
        "soa_summary": (soa["summary"]["automated"], soa["summary"]["evidence"], soa["summary"]["measures_automated"],
                        soa["summary"]["measures_evidence"]),
    }


def test_a_check_on_an_empty_group_makes_nothing_automated_until_the_group_has_a_target(town: Project) -> None:
    assert listed(town) == {"BACKUP-01": ("evidence", ["backups"]), "REDUNDANCY-01": ("unconfigured", ["replicas"])}
    assert coverages(town) == {
        "theme": (0, 1, True),
        "measures": {"evidence"},
        "control": {"8.13": "evidence", "8.14": "none"},
        "soa": {"8.13": "evidence", "8.14": "none"},
        "soa_measures": {"evidence"},
        "soa_summary": (0, 1, 0, 4),
    }
    table = town.run("controls", "list")
    assert table.exit_code == 0
    assert "without targets do not run" in table.stdout and "backups, replicas" in table.stdout
    assert "unconfigured" in table.stdout

    fill_groups(town)
    assert listed(town) == {"BACKUP-01": ("automated", []), "REDUNDANCY-01": ("automated", [])}
    assert coverages(town) == {
        "theme": (2, 0, False),
        "measures": {"automated"},
        "control": {"8.13": "automated", "8.14": "automated"},
        "soa": {"8.13": "automated", "8.14": "automated"},
        "soa_measures": {"automated"},
        "soa_summary": (2, 0, 4, 0),
    }
    assert "without targets" not in town.run("controls", "list").stdout


def test_the_report_counts_a_measure_automated_only_once_its_group_has_a_target(town: Project) -> None:
    assert town.run("scan").exit_code in (0, 1)  # the evidence check fails: nothing attested
    coverage = run_json(town, "report", "--format", "json")["coverage"]
    assert (coverage["automated"], coverage["evidence"]) == (0, 4)

    fill_groups(town)
    assert town.run("scan").exit_code in (0, 1)
    coverage = run_json(town, "report", "--format", "json")["coverage"]
    assert (coverage["automated"], coverage["evidence"]) == (4, 0)


# -- the rule itself -------------------------------------------------------------------------------------


def control(*checks: dict[str, Any]) -> Control:
    return Control.model_validate({"id": "X-01", "title": "x", "theme": "technological", "severity": "low",
                                   "checks": list(checks)})


EVIDENCE = {"plugin": "evidence", "params": {"requirement": "a document"}}


@pytest.mark.parametrize(("targets", "groups", "runs"), [
    (None, {}, True),                          # no targets: runs once with its params
    (["/srv/a"], {}, True),                    # an inline list
    ([], {}, False),                           # an empty inline list
    ("backups", {"backups": ["/srv/a"]}, True),
    ("backups", {"backups": []}, False),       # an empty group
    ("backups", {}, False),                    # a group not configured at all (bundled controls may name one)
    ("backups", None, True),                   # no configuration known: the catalog alone decides
])
def test_when_a_check_runs(targets: Any, groups: Any, runs: bool) -> None:
    spec = CheckSpec.model_validate({"plugin": "file_age", "params": {"max_age": "1d"}, "targets": targets})
    assert check_runs(spec, groups) is runs
    kind = control_kind(control(EVIDENCE, spec.model_dump(exclude_none=True)), groups)
    assert kind == ("automated" if runs else "evidence")


def test_control_kinds_with_and_without_the_configured_groups() -> None:
    on_group = {"plugin": "file_age", "params": {"max_age": "1d"}, "targets": "backups"}
    mixed, alone, plain = control(EVIDENCE, on_group), control(on_group), control(EVIDENCE)
    # without groups: today's meaning from the catalog alone
    assert [control_kind(c) for c in (mixed, alone, plain)] == ["automated", "automated", "evidence"]
    assert [control_kind(c, {}) for c in (mixed, alone, plain)] == ["evidence", "unconfigured", "evidence"]
    assert unconfigured_groups(mixed, {}) == ["backups"] and unconfigured_groups(mixed, None) == []
    assert unconfigured_groups(plain, {}) == []
    filled = {"backups": ["/srv/backup.tar"]}
    assert [control_kind(c, filled) for c in (mixed, alone, plain)] == ["automated", "automated", "evidence"]
    assert unconfigured_groups(mixed, filled) == []
    assert coverage_kind([alone], {}) == "none" and coverage_kind([alone, plain], {}) == "evidence"
    assert coverage_kind([alone], filled) == "automated" and coverage_kind([], filled) == "none"


def test_the_ensia_export_counts_a_measure_automated_only_once_its_group_has_a_target(town: Project) -> None:
    from tests.conftest import local_today

    year = str(local_today().year)

    def coverage() -> dict[str, str]:
        data = run_json(town, "ensia", "export", "--year", year, "--format", "json")
        return {m["number"]: m["coverage"] for m in data["measures"] if m["number"].startswith("8.13.")}

    # as the statement of applicability says: evidence only while `backups` is empty
    assert coverage() == dict.fromkeys(("8.13.01", "8.13.02", "8.13.03", "8.13.04"), "evidence")
    fill_groups(town)
    assert coverage() == dict.fromkeys(("8.13.01", "8.13.02", "8.13.03", "8.13.04"), "automated")
