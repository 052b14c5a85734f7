"""The control catalog shipped with the product, and the framework data behind coverage and the VvT."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from compliance import frameworks, plugins
from compliance.catalog import bundled_folder, load_catalog
from compliance.errors import ValidationFailed
from tests.conftest import Project

ALL = ["bio2", "avg", "forum-standaardisatie"]


@pytest.fixture(scope="module")
def catalog():  # type: ignore[no-untyped-def]
    return load_catalog([], {}, bundled=ALL)


def test_the_shipped_catalog_validates_with_every_plugin_installed(catalog) -> None:  # type: ignore[no-untyped-def]
    assert len(catalog) >= 30
    used = {spec.plugin for control in catalog for spec in control.checks}
    assert used <= set(plugins.names())
    assert all(control.bundled for control in catalog)


def test_every_shipped_control_has_a_check_owner_and_references(catalog) -> None:  # type: ignore[no-untyped-def]
    for control in catalog:
        assert control.checks, control.id
        assert control.owner, control.id
        assert control.references, control.id
        assert control.description.strip(), control.id


def test_ids_are_unique_across_the_shipped_files() -> None:
    ids = [item["id"] for file in sorted(bundled_folder().glob("*.yaml"))
           for item in yaml.safe_load(file.read_text())]
    assert len(ids) == len(set(ids))


def test_every_reference_is_well_formed_and_exists(catalog) -> None:  # type: ignore[no-untyped-def]
    for control in catalog:
        for key, value in control.references.items():
            for one in [value] if isinstance(value, str) else value:
                assert frameworks.reference_error(key, one) == "", (control.id, key, one)


def _bio2_measures(control) -> list[str]:  # type: ignore[no-untyped-def]
    value = control.references.get("bio2", [])
    return [value] if isinstance(value, str) else list(value)


def test_every_live_bio2_measure_is_referenced_by_an_enabled_shipped_control(catalog) -> None:  # type: ignore[no-untyped-def]
    live = {m.number for m in frameworks.load("bio2").measures}
    covered = {n for control in catalog if control.enabled for n in _bio2_measures(control)}
    assert sorted(live - covered) == []


def test_no_shipped_control_references_a_moved_or_lapsed_measure(catalog) -> None:  # type: ignore[no-untyped-def]
    live = {m.number for m in frameworks.load("bio2").measures}
    stale = {(control.id, n) for control in catalog for n in _bio2_measures(control) if n not in live}
    assert sorted(stale) == []


def test_every_shipped_control_has_its_texts_in_english_and_dutch(catalog) -> None:  # type: ignore[no-untyped-def]
    for control in catalog:
        dutch = control.translations.get("nl", {})
        assert set(dutch) >= {"title", "description", "owner"}, control.id
        assert dutch["title"] != control.title, control.id
        assert dutch["description"] != control.description, control.id
        assert control.text("title", "nl") == dutch["title"] and control.text("title", "en") == control.title


def test_every_shipped_evidence_check_has_a_requirement_in_both_languages_and_a_max_age(catalog) -> None:  # type: ignore[no-untyped-def]
    evidence = [(control, spec) for control in catalog for spec in control.checks if spec.plugin == "evidence"]
    assert evidence
    for control, spec in evidence:
        requirement = spec.params["requirement"]
        assert isinstance(requirement, dict) and set(requirement) == {"en", "nl"}, control.id
        assert requirement["en"] != requirement["nl"], control.id
        assert spec.params.get("max_age"), control.id
        assert control.text("requirement", "nl") == requirement["nl"]


def test_the_shipped_catalog_validates_in_a_new_monitor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         run_cli) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    assert run_cli("init").exit_code == 0
    result = run_cli("controls", "validate")
    assert result.exit_code == 0, result.output
    assert "from the shipped catalog: valid" in result.output


def test_a_control_without_a_check_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("id: X\ntitle: t\ntheme: people\nseverity: low\nchecks: []\n")
    with pytest.raises(ValidationFailed, match="a control needs at least one check"):
        load_catalog([tmp_path])


@pytest.mark.parametrize(("key", "value", "message"), [
    ("bio2", "8.13.09", "BIO2 has no measure 8.13.09 (measures of 8.13: 8.13.01, 8.13.02, 8.13.03, 8.13.04)"),
    ("iso27002", "5.38", "ISO/IEC 27002:2022 has no control 5.38"),
    ("iso27002", "A.5.1", "'A.5.1' is not an ISO/IEC 27002:2022 control number such as \"8.13\""),
    ("avg", "art 30", "'art 30' is not an AVG/GDPR article such as \"30\" or \"33(5)\""),
    ("forum-standaardisatie", "ipv4", "'ipv4' is not a Forum Standaardisatie standard"),
])
def test_bad_references_are_named(tmp_path: Path, key: str, value: str, message: str) -> None:
    (tmp_path / "c.yaml").write_text(
        f"id: X\ntitle: t\ntheme: people\nseverity: low\nreferences: {{{key}: \"{value}\"}}\n"
        "checks: [{plugin: evidence, params: {requirement: r}}]\n")
    with pytest.raises(ValidationFailed) as info:
        load_catalog([tmp_path])
    assert f"c.yaml:5:{14 + len(key) + 2}: references.{key}: {message}" in str(info.value)


def test_framework_data_matches_the_published_counts() -> None:
    bio2 = frameworks.load("bio2")
    per_theme = {g: sum(r.group == g for r in bio2.requirements) for g in bio2.groups}
    assert per_theme == {"organizational": 37, "people": 8, "physical": 14, "technological": 34}
    assert sum(len(r.measures) for r in bio2.requirements) == 117  # BIO2 v1.3 live government measures
    assert all(r.label("nl") and r.label("en") for r in bio2.requirements)


def test_only_the_chosen_frameworks_are_loaded() -> None:
    avg_only = load_catalog([], {}, bundled=["avg"])
    assert avg_only.ids() and all("avg" in c.frameworks for c in avg_only)
    assert load_catalog([], {}, bundled=[]).ids() == []


def test_override_changes_or_disables_a_shipped_control_by_id(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "- {id: BIO-UTILITIES, override: true, enabled: false}\n"
        "- id: BIO-BACKUP\n  override: true\n  severity: critical\n  owner: Team Infra\n"
        "- {id: OWN-1, title: own, theme: people, severity: low,\n"
        "   checks: [{plugin: evidence, params: {requirement: r}}]}\n")
    catalog = load_catalog([tmp_path], {}, bundled=["bio2"])
    utilities, backup = catalog.get("BIO-UTILITIES"), catalog.get("BIO-BACKUP")
    assert utilities is not None and not utilities.enabled
    assert backup is not None and backup.severity.value == "critical" and backup.owner == "Team Infra"
    assert backup.checks[0].plugin == "file_age"  # the rest comes from the shipped control
    assert backup.override_source == str(tmp_path / "mine.yaml")
    assert catalog.get("OWN-1") is not None and not catalog.get("OWN-1").bundled  # type: ignore[union-attr]


def test_an_override_error_points_at_the_local_file(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("- id: BIO-BACKUP\n  override: true\n  severity: urgent\n")
    with pytest.raises(ValidationFailed) as info:
        load_catalog([tmp_path], {}, bundled=["bio2"])
    assert str(info.value).startswith(f"{tmp_path}/mine.yaml:3:13: severity 'urgent': Input should be")


def test_same_id_without_override_is_a_duplicate_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "- {id: BIO-BACKUP, title: t, theme: people, severity: low, checks: [{plugin: evidence, params: "
        "{requirement: r}}]}\n")
    with pytest.raises(ValidationFailed) as info:
        load_catalog([tmp_path], {}, bundled=["bio2"])
    assert "duplicate control id 'BIO-BACKUP'" in str(info.value)
    assert "or add `override: true` to change the bundled control" in str(info.value)


def test_override_of_an_unknown_id(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("- {id: BIO-BAKUP, override: true, enabled: false}\n")
    expected = r"override of unknown control 'BIO-BAKUP' \(did you mean 'BIO-BACKUP'\?\)"
    with pytest.raises(ValidationFailed, match=expected):
        load_catalog([tmp_path], {}, bundled=["bio2"])


def test_unconfigured_target_groups_are_fine_for_shipped_controls_but_not_for_own(tmp_path: Path) -> None:
    load_catalog([], {}, bundled=ALL)  # no targets configured at all: validates
    (tmp_path / "own.yaml").write_text(
        "id: OWN\ntitle: t\ntheme: technological\nseverity: low\nchecks: [{plugin: https, targets: webstes}]\n")
    with pytest.raises(ValidationFailed, match="unknown target group 'webstes'"):
        load_catalog([tmp_path], {"websites": []}, bundled=ALL)


@pytest.mark.parametrize("name", frameworks.FRAMEWORKS)
def test_every_requirement_has_a_whole_english_and_dutch_title(name: str) -> None:
    spec = frameworks.load(name)
    assert all(set(r.title) == {"en", "nl"} for r in spec.requirements)
    titles = {r.number: r.title for r in spec.requirements}
    if name == "bio2":  # titles with commas, once cut short by YAML flow syntax
        assert titles["7.3"]["nl"] == "Kantoren, ruimten en voorzieningen beveiligd"
        assert titles["5.18"]["en"] == "Access rights granted, reviewed and withdrawn"
    if name == "avg":
        assert titles["5"]["en"] == "Purpose limitation, minimisation and storage limits"


def _group_users(catalog) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    users: dict[str, set[str]] = {}
    for control in catalog:
        for spec in control.checks:
            if isinstance(spec.targets, str):
                users.setdefault(spec.targets, set()).add(control.id)
    return users


def test_every_target_group_of_the_shipped_catalog_is_documented(catalog) -> None:  # type: ignore[no-untyped-def]
    root = Path(__file__).resolve().parents[2]
    example = (root / "config" / "compliance.example.yaml").read_text()
    table = (root / "docs" / "catalog.md").read_text()
    for group, users in _group_users(catalog).items():
        assert f"| `{group}` |" in table, group
        for cid in users:  # the table names every control that uses the group
            row = next(line for line in table.splitlines() if line.startswith(f"| `{group}` |"))
            assert cid in row, (group, cid)
    # the groups added with issue 17 have an example entry in the example configuration
    for group in ("directories", "m365_tenants", "m365_scubagear", "m365_maester", "ssh_servers", "log_sources",
                  "retained_logs", "backup_copies", "vulnerability_exports"):
        assert f"  # {group}:" in example, group


def test_a_shipped_evidence_control_keeps_its_evidence_status_while_its_new_groups_are_empty(
        project: Project) -> None:
    """BIO-MFA gained checks on m365 groups; a monitor that has not filled them in sees its evidence only."""
    import json

    project.config.write_text(f"database:\n  url: {project.db_url}\ncontrols:\n  paths: [controls]\n"
                              f"  bundled: [bio2]\n", encoding="utf-8")
    mfa = load_catalog([], {}, bundled=["bio2"]).get("BIO-MFA")
    assert mfa is not None and {s.plugin for s in mfa.checks} > {"evidence"}
    assert project.run("attest", "BIO-MFA", "--by", "CISO", "--evidence", "https://example.org/mfa",
                       "--valid-until", "2099-01-31").exit_code == 0
    out = json.loads(project.run("scan", "--control", "BIO-MFA", "--control", "BIO-PRIVILEGED-REVIEW",
                                 "--format", "json").stdout)
    assert {c["control"]: c["status"] for c in out["controls"]} == {"BIO-MFA": "pass",
                                                                    "BIO-PRIVILEGED-REVIEW": "fail"}
    assert [(r["control"], r["plugin"]) for r in out["results"]] == [("BIO-MFA", "evidence"),
                                                                     ("BIO-PRIVILEGED-REVIEW", "evidence")]
