"""Start-up of `compliance report --format json` (issue 18): it reads with Core and takes the controls from the
cache, so it imports neither the ORM nor pydantic, the plugin API, the catalog's models or the settings'
validation, and its report is the one the command gives in process.

Run as `compliance ...` runs, in a fresh interpreter, twice (the first run fills the caches); see
tests/compliance/test_startup_imports.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.compliance.report.conftest import Seeded
from tests.compliance.test_startup_imports import _run
from tests.conftest import Project

#: What the JSON report does without (a package stands for its submodules too).
_HEAVY = ("sqlalchemy.orm", "compliance.db.models", "pydantic", "pydantic_core", "compliance.api",
          "compliance.plugins", "compliance.catalog.model", "compliance.settings")

#: A control of the catalog with a check that runs (a file check): its kind is `automated`.
_CONTROL = """\
- id: G
  title: TLS configuration
  theme: technological
  severity: medium
  checks:
    - plugin: file_age
      params: {path: /etc/hostname, max_age: 1d}
"""


def _report(output: str) -> dict[str, Any]:
    """The JSON report without the moment it was made."""
    report: dict[str, Any] = json.loads(output)
    del report["generated_at"]
    return report


@pytest.mark.parametrize(("paths", "split"), [
    ("[controls]", True),  # the catalog loads: measures are split into automated and evidence
    ("[controls, missing]", False),  # it does not (a path is missing): no split, as without a catalog
])
def test_the_json_report_starts_without_the_orm_pydantic_or_the_catalog_models(
        project: Project, seeded: Seeded, paths: str, split: bool) -> None:
    project.control("g.yaml", _CONTROL)
    project.config.write_text(project.config.read_text(encoding="utf-8").replace("[controls]", paths),
                              encoding="utf-8")

    output, heavy = _run(project, "report", "--as-of", "2026-03-08", "--format", "json", heavy=_HEAVY)

    assert heavy == []
    in_process = project.run("report", "--as-of", "2026-03-08", "--format", "json")
    assert in_process.exit_code == 0, in_process.stderr
    report = _report(output)
    assert report == _report(in_process.stdout)
    assert (report["compliance"]["score"], [r["control"] for r in report["top_risks"]]) == (41.2, ["A", "G"])
    coverage = report["coverage"]
    # only A names a measure (8.15.01); it is not in this catalog, so it counts as synced with checks: automated
    assert (coverage["automated"], coverage["evidence"]) == ((1, 0) if split else (None, None))
