"""The digest's overview splits coverage into automated checks and evidence, as the report does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compliance.digest import build_digest
from compliance.settings import Settings
from tests.compliance.report.conftest import NOW

CONTROLS = """
- id: POLICY-01
  title: The information security policy is approved by the board
  theme: organizational
  references: {bio2: "5.01.01"}
  severity: high
  checks:
    - plugin: evidence
      params: {requirement: Information security policy approved by the board}
- id: BACKUP-01
  title: Backups are made every night
  theme: technological
  references: {bio2: "8.13.01"}
  severity: high
  checks:
    - plugin: file_age
      params: {path: /var/backups/nightly.tar, max_age: 26h}
"""


def test_the_digest_overview_knows_the_check_kinds(database: Any, tmp_path: Path) -> None:
    from compliance.catalog import load_catalog
    from compliance.report import build_overview
    from compliance.soa import control_kind

    (tmp_path / "controls.yaml").write_text(CONTROLS)
    settings = Settings.model_validate({"database": {"url": database.url}, "schedule": {"default": None},
                                        "controls": {"paths": [str(tmp_path / "controls.yaml")]}})
    catalog = load_catalog(settings.control_paths, settings.targets, bundled=settings.controls.bundled)
    kinds = {control.id: control_kind(control) for control in catalog}
    assert kinds == {"POLICY-01": "evidence", "BACKUP-01": "automated"}
    digest = build_digest(database, settings, now=NOW)
    expected = build_overview(database, "week", digest.week.end, settings.zone, now=NOW, kinds=kinds)
    assert digest.overview.coverage.automated is not None and digest.overview.coverage.evidence is not None
    assert digest.overview.coverage == expected.coverage


def test_a_digest_without_a_catalog_leaves_the_split_out(database: Any, tmp_path: Path) -> None:
    settings = Settings.model_validate({"database": {"url": database.url}, "schedule": {"default": None},
                                        "controls": {"paths": [str(tmp_path / "missing")]}})
    digest = build_digest(database, settings, now=NOW)
    assert digest.overview.coverage.automated is None and digest.overview.coverage.evidence is None


def test_a_check_on_a_group_without_targets_does_not_make_the_digest_call_a_control_automated(
        database: Any, tmp_path: Path) -> None:
    from compliance.digest import _check_kinds

    (tmp_path / "controls.yaml").write_text(CONTROLS + """
- id: BACKUP-02
  title: The weekly full backup is restorable and fresh
  theme: technological
  references: {bio2: "8.13.02"}
  severity: high
  checks:
    - plugin: evidence
      params: {requirement: Restore test report}
    - plugin: file_age
      params: {max_age: 8d}
      targets: weekly_backups
""")
    base = {"database": {"url": database.url}, "schedule": {"default": None},
            "controls": {"paths": [str(tmp_path / "controls.yaml")]}}
    empty = Settings.model_validate({**base, "targets": {"weekly_backups": []}})
    assert _check_kinds(empty) == {"POLICY-01": "evidence", "BACKUP-01": "automated", "BACKUP-02": "evidence"}
    filled = Settings.model_validate({**base, "targets": {"weekly_backups": ["/var/backups/weekly.tar"]}})
    assert _check_kinds(filled) == {"POLICY-01": "evidence", "BACKUP-01": "automated", "BACKUP-02": "automated"}
