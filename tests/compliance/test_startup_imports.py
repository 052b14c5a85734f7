"""Start-up (issue 18): the read-only commands do not import what they do not use.

Each test runs the command in a fresh interpreter, as `compliance ...` runs it, with the configuration
already in the cache (a first run stores it), and looks at the modules that interpreter holds afterwards:
the ORM, pydantic, PyYAML, the plugin API and the catalog cost most of a short command's start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from compliance.db import Database, schema
from tests.conftest import Project

#: Run the CLI with the given arguments, then write the names of the loaded modules to stderr, last line.
_SCRIPT = """\
import json, sys
from compliance.cli import main
sys.argv = ["compliance", *json.loads(sys.argv[1])]
try:
    main()
finally:
    sys.stderr.write("\\n" + json.dumps(sorted(sys.modules)) + "\\n")
"""

#: What no read-only command imports (a package stands for its submodules too).
_HEAVY = ("sqlalchemy.orm", "pydantic", "pydantic_core", "yaml", "apscheduler", "compliance.api",
          "compliance.catalog")
#: What a scan does not import: it runs checks (the plugin API, pydantic), but stores with Core, and hands
#: the engine the breach register's facts without the register.
_SCAN_HEAVY = ("sqlalchemy.orm", "compliance.db.models", "apscheduler", "compliance.incidents.register",
               "compliance.incidents.model")


def _run(project: Project, *args: str, heavy: tuple[str, ...] = _HEAVY) -> tuple[str, list[str]]:
    """The command's standard output and the heavy modules it imported, run twice: the first run fills the
    configuration cache, the second is the one looked at."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}
    env["COMPLIANCE_CACHE_DIR"] = str(project.root / "cache")
    command = [sys.executable, "-c", _SCRIPT, json.dumps(["--config", str(project.config), *args])]
    for _ in range(2):
        result = subprocess.run(command, capture_output=True, text=True, cwd=project.root, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
    modules = json.loads(result.stderr.rstrip().rpartition("\n")[2])
    return result.stdout, [m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy)]


def _findings_project(project: Project, probe_plugin: type) -> None:
    """Two failing controls, one of them accepted by an exception, one finding resolved."""
    project.control("c.yaml", """\
- id: WEB-01
  title: Public web server answers
  theme: technological
  severity: high
  checks:
    - plugin: probe
      targets: [{name: www, outcome: fail}, {name: loket, outcome: fail}]
- id: MAIL-01
  title: Mail is signed
  theme: technological
  severity: critical
  checks:
    - plugin: probe
      params: {name: mx, outcome: fail}
""")
    assert project.run("scan").exit_code == 1
    project.control("c.yaml", (project.controls / "c.yaml").read_text(encoding="utf-8")
                    .replace("{name: www, outcome: fail}", "{name: www, outcome: pass}"))
    assert project.run("scan").exit_code == 1
    added = project.run("exceptions", "add", "MAIL-01", "--reason", "new gateway in Q1", "--approved-by", "CISO",
                        "--until", "2099-12-31", "--by", "tester")
    assert added.exit_code == 0, added.output


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
@pytest.mark.parametrize(("status", "expected"), [
    ("open", [("WEB-01", "loket", "open")]),
    ("accepted", [("MAIL-01", "mx", "accepted")]),
    ("resolved", [("WEB-01", "www", "resolved")]),
    # open first, then by severity: the critical accepted one before the high resolved one
    ("all", [("WEB-01", "loket", "open"), ("MAIL-01", "mx", "accepted"), ("WEB-01", "www", "resolved")]),
])
def test_findings_start_without_the_orm_pydantic_or_the_catalog(
        project: Project, probe_plugin: type, fmt: str, status: str, expected: list[tuple[str, str, str]]) -> None:
    _findings_project(project, probe_plugin)

    output, heavy = _run(project, "findings", "--status", status, "--format", fmt)

    assert heavy == []
    if fmt == "json":
        assert [(f["control"], f["target"], f["state"]) for f in json.loads(output)] == expected
    else:  # the same findings as the in-process command shows, in the same order
        assert output == project.run("findings", "--status", status, "--format", fmt).stdout
        assert all(control in output and target in output for control, target, _ in expected)


def test_incident_list_starts_without_the_orm_pydantic_or_yaml(project: Project) -> None:
    from tests.incidents.conftest import INCIDENT_SETTINGS, LETTER

    project.write_config(INCIDENT_SETTINGS)
    created = project.run("incident", "new", *LETTER, "--format", "json")
    assert created.exit_code == 0, created.output

    output, heavy = _run(project, "incident", "list", "--format", "json")

    assert heavy == []
    [incident] = json.loads(output)
    assert incident["id"] == json.loads(created.stdout)["id"]


#: What the report does not import: it reads with Core, and counts the breach register from a few columns
#: with the register's clocks (`compliance.incidents.clocks`), without the register or its model.
_REPORT_HEAVY = ("sqlalchemy.orm", "pydantic", "pydantic_core", "yaml", "compliance.db.models",
                 "compliance.incidents.register", "compliance.incidents.model")


def test_the_report_counts_the_breach_register_without_its_model(project: Project) -> None:
    from tests.incidents.conftest import INCIDENT_SETTINGS, LETTER

    project.write_config(INCIDENT_SETTINGS)
    created = project.run("incident", "new", *LETTER, "--format", "json")
    assert created.exit_code == 0, created.output

    output, heavy = _run(project, "report", "--format", "json", "--lang", "en", heavy=_REPORT_HEAVY)

    assert heavy == []
    assert json.loads(output)["incidents"]["open"] == 1


def test_a_one_control_scan_stores_without_the_orm_or_the_breach_register(project: Project) -> None:
    """`scan --control` syncs the catalog, closes abandoned scans, starts, stores and finishes its scan with
    Core statements: what it stored is all there, read back by other commands."""
    (project.root / "secret.txt").write_text("x", encoding="utf-8")
    (project.root / "secret.txt").chmod(0o644)
    project.control("c.yaml", """\
- id: KEY-01
  title: The key file is private
  theme: technological
  severity: high
  checks:
    - plugin: file_permissions
      params: {path: secret.txt, max_mode: "0600"}
- id: KEY-02
  title: Not scanned here
  theme: technological
  severity: low
  checks:
    - plugin: file_permissions
      params: {path: secret.txt, max_mode: "0644"}
""")

    output, heavy = _run(project, "scan", "--control", "KEY-01", "--fail-on", "none", "--format", "json",
                         heavy=_SCAN_HEAVY)

    assert heavy == []
    scan = json.loads(output)
    assert (scan["status"], scan["summary"]["controls"], scan["summary"]["fail"]) == ("completed", 1, 1)
    assert [(r["control"], r["target"], r["status"]) for r in scan["results"]] == [("KEY-01", "secret.txt", "fail")]
    # both runs stored their scan, closed with its counts; the catalog was synced; the finding opened by the
    # first run is still open
    database = Database(project.db_url)
    try:
        with database.engine.connect() as connection:
            scans = connection.execute(select(schema.scans.c.id, schema.scans.c.status, schema.scans.c.controls_total,
                                              schema.scans.c.controls_failed, schema.scans.c.results_total)
                                       .order_by(schema.scans.c.id)).all()
            controls = connection.execute(select(schema.controls.c.id, schema.controls.c.active,
                                                 schema.controls.c.last_status).order_by(schema.controls.c.id)).all()
    finally:
        database.close()
    assert [tuple(s) for s in scans] == [(scan["scan_id"] - 1, "completed", 1, 1, 1),
                                         (scan["scan_id"], "completed", 1, 1, 1)]
    assert [tuple(c) for c in controls] == [("KEY-01", True, "fail"), ("KEY-02", True, None)]
    [finding] = json.loads(project.run("findings", "--format", "json").stdout)
    assert (finding["control"], finding["target"], finding["state"]) == ("KEY-01", "secret.txt", "open")


def test_the_check_is_not_blind(project: Project) -> None:
    """A command that loads the catalog (`controls validate`) is seen to import pydantic and the catalog."""
    project.control("c.yaml", "- id: A-1\n  title: A\n  theme: people\n  severity: low\n"
                              "  checks: [{plugin: file_age, params: {path: /x, max_age: 1d}}]\n")

    _, heavy = _run(project, "controls", "validate")

    assert {"pydantic", "compliance.catalog", "compliance.api"} <= set(heavy)
