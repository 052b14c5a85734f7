"""The command line as a user meets it: exit codes, messages, formats, and what ends up in the database."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from compliance.db.models import CheckResultRow
from tests.conftest import Project

CONTROLS = """\
- id: WEB-01
  title: Public web server answers
  theme: technological
  references: {bio2: "8.20", iso27002: "8.20"}
  severity: high
  owner: IT
  tags: [web]
  checks:
    - plugin: probe
      targets: [{name: www, outcome: pass}, {name: loket, outcome: fail}]
- id: BACKUP-01
  title: Backups are recent
  theme: technological
  severity: medium
  tags: [backup]
  checks:
    - plugin: probe
      params: {name: nas, outcome: pass}
- id: HANG-01
  title: A check that hangs
  theme: technological
  severity: low
  timeout: 0.3s
  checks:
    - plugin: probe
      params: {name: slow, outcome: hang}
"""


def count_rows(url: str, model: Any) -> int:
    from compliance.db import Database

    db = Database(url)
    try:
        with db.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        db.close()


def test_help_teaches_the_commands_and_exit_codes(run_cli: Any) -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    for word in ("init", "scan", "findings", "exceptions", "controls", "checks", "db", "demo", "Exit codes:",
                 "2  bad usage, configuration or control file"):
        assert word in result.stdout


def test_init_creates_config_controls_and_a_migrated_private_database(tmp_path: Path, run_cli: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("init")
    assert result.exit_code == 0, result.output
    assert "wrote compliance.yaml" in result.stdout and "wrote controls/example.yaml" in result.stdout
    assert oct((tmp_path / "compliance.db").stat().st_mode & 0o777) == "0o600"
    again = run_cli("init")
    assert "kept  compliance.yaml (exists; --force overwrites)" in again.stdout
    validated = run_cli("controls", "validate")
    shipped = len(json.loads(run_cli("controls", "list", "--format", "json").stdout)) - 1
    assert shipped >= 30  # init offers the shipped catalog
    assert validated.exit_code == 0
    assert validated.stdout == f"1 control in 1 file and {shipped} from the shipped catalog: valid\n"
    scanned = run_cli("scan", "--control", "MON-01", "--format", "json")
    assert scanned.exit_code == 0, scanned.output
    assert [r["status"] for r in json.loads(scanned.stdout)["results"]] == ["pass"]


def test_scan_json_contract_and_exit_code(project: Project, probe_plugin: type) -> None:
    project.control("c.yaml", CONTROLS)
    result = project.run("scan", "--format", "json")
    assert result.exit_code == 1  # WEB-01 fails (high) and --fail-on defaults to any failure
    assert result.stderr == ""  # no progress bar when not on a terminal
    data = json.loads(result.stdout)
    assert isinstance(data["scan_id"], int) and data["status"] == "completed"
    rows = {(r["control"], r["target"]): r for r in data["results"]}
    assert set(rows) == {("WEB-01", "www"), ("WEB-01", "loket"), ("BACKUP-01", "nas"), ("HANG-01", "slow")}
    for row in data["results"]:
        assert {"control", "plugin", "target", "status", "message"} <= set(row)
    assert rows[("WEB-01", "loket")]["status"] == "fail" and rows[("WEB-01", "loket")]["plugin"] == "probe"
    hung = rows[("HANG-01", "slow")]
    assert hung["status"] == "error" and "did not finish within its timeout of 0.3 s" in hung["message"]
    assert data["summary"] == {"controls": 3, "pass": 1, "fail": 1, "error": 1, "skipped": 0, "accepted": 0}


@pytest.mark.parametrize(("fail_on", "code"), [("low", 1), ("high", 1), ("critical", 0), ("none", 0)])
def test_fail_on_threshold(project: Project, probe_plugin: type, fail_on: str, code: int) -> None:
    project.control("c.yaml", CONTROLS)
    assert project.run("scan", "--fail-on", fail_on, "--control", "WEB-01").exit_code == code


def test_scan_table_selects_by_tag_and_prints_a_summary(project: Project, probe_plugin: type) -> None:
    project.control("c.yaml", CONTROLS)
    result = project.run("scan", "--tag", "backup")
    assert result.exit_code == 0
    assert "BACKUP-01" in result.stdout and "WEB-01" not in result.stdout
    assert "1 controls, 1 passed, 0 failed (0 accepted), 0 could not be checked, 0 skipped" in result.stdout


def test_findings_show_open_then_resolved(project: Project, probe_plugin: type) -> None:
    project.control("c.yaml", CONTROLS)
    project.run("scan")
    [finding] = json.loads(project.run("findings", "--format", "json").stdout)
    assert (finding["control"], finding["target"], finding["state"], finding["severity"]) == (
        "WEB-01", "loket", "open", "high")
    assert finding["first_seen"].endswith("+00:00") and finding["resolved_at"] is None

    project.control("c.yaml", CONTROLS.replace("{name: loket, outcome: fail}", "{name: loket, outcome: pass}"))
    assert project.run("scan").exit_code == 0
    assert json.loads(project.run("findings", "--format", "json").stdout) == []
    rows = list(csv.DictReader(io.StringIO(project.run("findings", "--status", "resolved", "--format", "csv").stdout)))
    assert [(r["control"], r["target"], r["state"]) for r in rows] == [("WEB-01", "loket", "resolved")]
    assert rows[0]["resolved_at"]
    table = project.run("findings", "--status", "all").stdout
    assert "WEB-01" in table and "resolved" in table


def test_exception_accepts_the_failure_until_its_date(project: Project, probe_plugin: type) -> None:
    project.control("c.yaml", CONTROLS)
    project.run("scan")
    added = project.run("exceptions", "add", "WEB-01", "--reason", "new portal in Q1", "--approved-by",
                        "J. de Vries (CISO)", "--until", "2099-12-31", "--by", "tester", "--format", "json")
    assert added.exit_code == 0, added.output
    exception = json.loads(added.stdout)
    assert exception["state"] == "active" and exception["until"] == "2099-12-31"
    [finding] = json.loads(project.run("findings", "--status", "accepted", "--format", "json").stdout)
    assert finding["exception"] == exception["id"] and finding["exception_until"] == "2099-12-31"
    assert project.run("scan", "--control", "WEB-01").exit_code == 0  # accepted: no longer fails the run

    revoked = project.run("exceptions", "revoke", str(exception["id"]), "--reason", "portal delayed")
    assert revoked.exit_code == 0
    assert project.run("scan", "--control", "WEB-01").exit_code == 1
    listed = json.loads(project.run("exceptions", "list", "--all", "--format", "json").stdout)
    assert [(e["id"], e["state"], e["revoke_reason"]) for e in listed] == [(exception["id"], "revoked",
                                                                            "portal delayed")]


def test_exception_for_unknown_control_or_past_date(project: Project, probe_plugin: type) -> None:
    project.control("c.yaml", CONTROLS)
    unknown = project.run("exceptions", "add", "WEB-1", "--reason", "r", "--approved-by", "a",
                          "--until", "2099-01-01")
    assert unknown.exit_code == 2
    assert unknown.stderr == ("error: no control with id 'WEB-1'; did you mean 'WEB-01'? "
                              "(see `compliance controls list`)\n")
    past = project.run("exceptions", "add", "WEB-01", "--reason", "r", "--approved-by", "a", "--until", "2001-01-01")
    assert past.exit_code == 2 and "lies in the past" in past.stderr


def test_validate_reports_every_mistake_and_scan_refuses_without_touching_the_database(
        project: Project, probe_plugin: type) -> None:
    from compliance.db.models import CheckResultRow, ControlRow, Scan

    project.control("a.yaml", CONTROLS)
    project.control("b.yaml", textwrap.dedent("""\
        - id: WEB-01
          title: duplicate id
          theme: technological
          severity: high
          checks:
            - plugin: prob
        - id: PORT
          title: wrong type
          theme: technological
          severity: loww
          checks:
            - plugin: tcp_port
              params: {host: h, port: eighty}
        """))
    result = project.run("controls", "validate")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "controls/b.yaml:1:7: duplicate control id 'WEB-01' (already defined at controls/a.yaml:1; "
        "give one of them another id)",
        "controls/b.yaml:6:15: unknown check plugin 'prob'; did you mean 'probe'? "
        "(run `compliance checks list` to see the installed plugins)",
        "controls/b.yaml:10:13: severity 'loww': Input should be 'low', 'medium', 'high' or 'critical' "
        "(did you mean 'low'?)",
        "controls/b.yaml:13:31: parameter 'port' 'eighty' of plugin 'tcp_port': Input should be a valid integer, "
        "unable to parse string as an integer",
        "4 problems found",
    ]
    scan = project.run("scan")
    assert scan.exit_code == 2 and scan.stderr.endswith("4 problems found\n")
    for model in (Scan, CheckResultRow, ControlRow):
        assert count_rows(project.db_url, model) == 0


def test_malformed_yaml(project: Project) -> None:
    project.control("bad.yaml", "- id: X\n  title: 'unterminated\n")
    result = project.run("scan")
    assert result.exit_code == 2
    assert result.stderr.startswith("controls/bad.yaml:3:1: YAML syntax error: ")


def test_validate_explicit_paths(project: Project, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.yaml"
    other.write_text("id: X\ntitle: t\ntheme: people\nseverity: low\nchecks: [{plugin: tcp_port, "
                     "params: {host: h, port: 70000}}]\n")
    result = project.run("controls", "validate", str(other))
    assert result.exit_code == 2
    assert "elsewhere.yaml:5:53: parameter 'port' '70000' of plugin 'tcp_port': Input should be less than or " \
           "equal to 65535" in result.stderr


def test_unknown_control_id_on_scan(project: Project, probe_plugin: type) -> None:
    project.control("c.yaml", CONTROLS)
    result = project.run("scan", "--control", "BACKUP-1")
    assert result.exit_code == 2 and "did you mean 'BACKUP-01'?" in result.stderr


def test_missing_config_file(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "nope.yaml"), "scan")
    assert result.exit_code == 2
    assert result.stderr == (f"error: config file {tmp_path}/nope.yaml (from --config) does not exist; "
                             "create one with `compliance init` or point to an existing file\n")


def test_unknown_setting_in_config(project: Project) -> None:
    project.write_config("scan:\n  concurency: 4\n")
    result = project.run("scan")
    assert result.exit_code == 2
    assert result.stderr.startswith("compliance.yaml:6:3: unknown setting 'scan.concurency'")


def test_unreachable_database_is_a_clear_error(project: Project, probe_plugin: type) -> None:
    project.control("c.yaml", CONTROLS)
    env = {"COMPLIANCE_DATABASE_URL": "postgresql+psycopg://nobody:s3cret@127.0.0.1:1/none"}
    result = project.run("scan", env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot open the database postgresql+psycopg://nobody:***@127.0.0.1:1/none")
    assert "s3cret" not in result.output


def test_database_without_schema_says_how_to_fix(project: Project, probe_plugin: type, tmp_path: Path) -> None:
    project.control("c.yaml", CONTROLS)
    (tmp_path / "new.db").touch()  # an empty file, e.g. from an SQLite shell
    result = project.run("scan", env={"COMPLIANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"})
    assert result.exit_code == 2 and "run `compliance db upgrade`" in result.stderr
    upgraded = project.run("db", "upgrade", env={"COMPLIANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"})
    assert upgraded.exit_code == 0 and "migrated from empty to schema" in upgraded.stdout


@pytest.mark.parametrize("migrated", [True, False])
def test_db_status_as_json_for_scripts(project: Project, tmp_path: Path, migrated: bool) -> None:
    from compliance.db import SCHEMA_HEAD, safe_url

    url = project.db_url if migrated else f"sqlite:///{tmp_path / 'empty.db'}"
    result = project.run("db", "status", "--format", "json", env={"COMPLIANCE_DATABASE_URL": url})
    assert result.exit_code == (0 if migrated else 1)
    assert json.loads(result.stdout) == {"database": safe_url(url), "schema": SCHEMA_HEAD if migrated else None,
                                         "head": SCHEMA_HEAD, "current": migrated}
    text = project.run("db", "status", env={"COMPLIANCE_DATABASE_URL": url})
    assert (text.exit_code, text.stdout) == (result.exit_code, f"database: {safe_url(url)}\n"
                                             f"schema:   {SCHEMA_HEAD if migrated else 'none'} "
                                             f"(this version needs {SCHEMA_HEAD})\n")


@pytest.mark.postgresql
def test_postgresql_from_the_environment_works_the_same(pg_template: str, tmp_path: Path, run_cli: Any,
                                                        monkeypatch: pytest.MonkeyPatch, probe_plugin: type) -> None:
    from tests.conftest import _pg_connect, pg_url

    name = f"cm_env_{os.getpid()}"
    with _pg_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        monkeypatch.chdir(tmp_path)
        env = {"COMPLIANCE_DATABASE_URL": pg_url(name)}
        assert run_cli("init", env=env).exit_code == 0
        (tmp_path / "controls" / "c.yaml").write_text(CONTROLS)
        assert run_cli("db", "upgrade", env=env).stdout.endswith("is already at schema " +
                                                                 __import__("compliance.db").db.SCHEMA_HEAD + "\n")
        assert run_cli("scan", env=env).exit_code == 1
        findings = json.loads(run_cli("findings", "--format", "json", env=env).stdout)
        assert [f["target"] for f in findings if f["control"] == "WEB-01"] == ["loket"]
        assert not (tmp_path / "compliance.db").exists() or (tmp_path / "compliance.db").stat().st_size == 0
    finally:
        with _pg_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_internal_error_exits_3_without_traceback(project: Project, probe_plugin: type,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from compliance.store import Store

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Store, "findings", broken)  # fault injection: an unexpected bug in the core
    result = project.run("findings")
    assert result.exit_code == 3
    assert result.stderr == ("internal error: RuntimeError: disk on fire "
                             "(run again with --debug for the traceback)\n")


def test_checks_list_shows_the_built_ins(run_cli: Any) -> None:
    data = json.loads(run_cli("checks", "list", "--format", "json").stdout)
    names = {d["name"]: d for d in data}
    assert {"file_age", "file_permissions", "tcp_port", "command"} <= set(names)
    assert names["file_age"]["parameters"] == ["path", "mode", "max_age", "min_age"]
    assert names["file_age"]["origin"].startswith("compliance-monitor ")


def test_controls_list_json(project: Project, probe_plugin: type) -> None:
    project.control("c.yaml", CONTROLS)
    data = json.loads(project.run("controls", "list", "--tag", "web", "--format", "json").stdout)
    assert [(c["id"], c["source"], c["line"], c["references"]) for c in data] == [
        ("WEB-01", "controls/c.yaml", 1, {"bio2": "8.20", "iso27002": "8.20"})]


def test_third_party_plugin_is_found_through_entry_points(tmp_path: Path) -> None:
    """A plugin from another distribution: found by `checks list` and used by `scan`, in a new process."""
    site = tmp_path / "site"
    (site / "gemeente_checks").mkdir(parents=True)
    (site / "gemeente_checks" / "__init__.py").write_text(textwrap.dedent("""\
        from compliance.api import Check, Params, Result

        class VpnParams(Params):
            gateway: str

        class VpnUp(Check):
            '''The VPN gateway reports healthy.'''
            name = "vpn_up"
            Params = VpnParams
            target_param = "gateway"

            def run(self, params, ctx):
                yield Result.failed(params.gateway, f"VPN gateway {params.gateway} is down.")
        """))
    dist = site / "gemeente_checks-1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gemeente-checks\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text("[compliance.checks]\nvpn_up = gemeente_checks:VpnUp\n")
    project = tmp_path / "p"
    (project / "controls").mkdir(parents=True)
    (project / "controls" / "vpn.yaml").write_text(
        "id: VPN\ntitle: VPN up\ntheme: technological\nseverity: high\n"
        "checks: [{plugin: vpn_up, targets: [vpn1.gemeente.local]}]\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("COMPLIANCE_DATABASE_URL", None)
    env.pop("COMPLIANCE_CONFIG", None)
    exe = [sys.executable, "-m", "compliance"]

    listed = subprocess.run([*exe, "checks", "list", "--format", "json"], env=env, cwd=project,
                            capture_output=True, text=True, check=True)
    vpn = next(p for p in json.loads(listed.stdout) if p["name"] == "vpn_up")
    assert vpn["origin"] == "gemeente-checks 1.2" and vpn["summary"] == "The VPN gateway reports healthy."
    subprocess.run([*exe, "init"], env=env, cwd=project, capture_output=True, check=True)
    scanned = subprocess.run([*exe, "scan", "--control", "VPN", "--format", "json"], env=env, cwd=project,
                             capture_output=True, text=True)
    assert scanned.returncode == 1, scanned.stderr
    [row] = json.loads(scanned.stdout)["results"]
    assert row["message"] == "VPN gateway vpn1.gemeente.local is down." and row["plugin"] == "vpn_up"


def test_demo_runs_against_local_targets(tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("demo", "--format", "json")
    assert result.exit_code == 0, result.output
    statuses: dict[str, set[str]] = {}
    for row in json.loads(result.stdout)["results"]:
        statuses.setdefault(row["control"], set()).add(row["status"])
    assert statuses == {
        "BIO-BACKUP": {"pass"}, "BIO-LOGSHIP": {"fail"}, "BIO-FILE-PERMISSIONS": {"fail"},
        "BIO-EXPOSED-SERVICES": {"pass"}, "BIO-POLICY": {"pass"}, "BIO-PATCHING": {"fail"},
        "AVG-BREACHES": {"pass"}, "DEMO-SSH": {"pass"}, "DEMO-PATCH": {"pass"}, "MON-01": {"pass"}}
    monkeypatch.chdir(tmp_path / "demo")
    findings = json.loads(run_cli("findings", "--format", "json").stdout)
    assert sorted(f["control"] for f in findings) == ["BIO-FILE-PERMISSIONS", "BIO-LOGSHIP", "BIO-PATCHING"]
    disabled = json.loads(run_cli("controls", "list", "--format", "json").stdout)
    assert {c["id"] for c in disabled if not c["enabled"]} >= {"BIO-MFA", "FS-HTTPS"}


@pytest.mark.parametrize(("default", "overdue"), [("0 2 * * *", True), ("null", False)])
def test_report_uses_the_schedulers_default_for_controls_without_a_schedule(
        project: Project, probe_plugin: type, default: str, overdue: bool) -> None:
    """A control without a schedule of its own, last evaluated 3 days ago: overdue when the default is
    daily; without a default the report's weekly fallback still finds it in time."""
    from datetime import timedelta

    from compliance.db import Database
    from compliance.db.models import CheckResultRow, ControlRow, Scan

    project.control("c.yaml", CONTROLS)
    project.write_config(f"schedule:\n  default: {default}\n")
    assert project.run("scan", "--control", "BACKUP-01").exit_code == 0
    db = Database(project.db_url)
    with db.transaction() as session:  # move the evaluation three days back
        days = timedelta(days=3)
        for control in session.scalars(select(ControlRow).where(ControlRow.last_evaluated_at.is_not(None))):
            control.last_evaluated_at -= days
        for result in session.scalars(select(CheckResultRow)):
            result.started_at -= days
        for scan in session.scalars(select(Scan)):
            scan.started_at, scan.finished_at = scan.started_at - days, scan.finished_at - days
    db.close()
    report = json.loads(project.run("report", "--format", "json").stdout)
    assert ("BACKUP-01" in [n["control"] for n in report["not_evaluated"]]) is overdue


def test_a_scan_killed_half_way_is_closed_by_the_next_scan(project: Project) -> None:
    """SIGKILL during a scan: the finished control stays, and the next scan on this machine marks the
    dead process's scan interrupted instead of leaving it `running` for ever."""
    import signal
    import time

    from compliance.db import Database
    from compliance.db.models import Scan

    project.control("c.yaml", textwrap.dedent(f"""\
        - id: FAST
          title: fast
          theme: technological
          severity: low
          checks: [{{plugin: command, params: {{run: ["{sys.executable}", -c, "print(1)"]}}}}]
        - id: SLOW
          title: slow
          theme: technological
          severity: low
          timeout: 60s
          checks: [{{plugin: command, params: {{run: ["{sys.executable}", -c, "import time; time.sleep(20)"]}}}}]
        """))
    env = {**os.environ, "COMPLIANCE_CONFIG": str(project.config)}
    env.pop("COMPLIANCE_DATABASE_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "compliance", "scan"], env=env, cwd=project.root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = Database(project.db_url)
    try:
        deadline = time.monotonic() + 30
        while count_rows(project.db_url, CheckResultRow) == 0:  # FAST is stored; SLOW still sleeps
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        with db.sessions() as session:
            [killed] = session.scalars(select(Scan)).all()
            assert killed.status == "running" and killed.pid == process.pid
        assert project.run("scan", "--control", "FAST").exit_code == 0
        with db.sessions() as session:
            scans = {s.id: s for s in session.scalars(select(Scan))}
        assert scans[killed.id].status == "interrupted"
        assert scans[killed.id].controls_total == 1 and scans[killed.id].finished_at is not None
        assert [s.status for s in scans.values() if s.id != killed.id] == ["completed"]
    finally:
        if process.poll() is None:
            process.kill()
        db.close()


def test_validate_as_json_for_scripts(project: Project, probe_plugin: type) -> None:
    project.control("c.yaml", CONTROLS)
    assert json.loads(project.run("controls", "validate", "--format", "json").stdout) == {
        "valid": True, "controls": 3, "problems": []}
    project.control("bad.yaml", "- id: X\n  title: t\n  theme: people\n  severity: hgh\n  checks: [{plugin: probe}]\n")
    result = project.run("controls", "validate", "--format", "json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["problems"] == [
        {"path": "controls/bad.yaml", "line": 4, "col": 13, "hint": "did you mean 'high'?",
         "message": "severity 'hgh': Input should be 'low', 'medium', 'high' or 'critical'"}]


def test_checks_show_prints_the_plugin_documentation(run_cli: Any) -> None:
    text = run_cli("checks", "show", "file_age").stdout
    assert "Secure state, `mode: newest` (the default): a recent copy exists." in text and "Example::" in text
    assert "max_age: default None — Mode `newest`: the oldest the newest match may be" in text
    data = json.loads(run_cli("checks", "show", "breach_register", "--format", "json").stdout)
    assert {p["name"]: p["default"] for p in data["parameters"]} == {"assess_within": "3d", "lookback": "365d"}
    assert data["facts"] == ["breaches"]
    assert run_cli("checks", "show", "file_ag").exit_code == 2


def test_init_without_the_catalog(tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli("init", "--no-catalog").exit_code == 0
    assert json.loads(run_cli("controls", "list", "--format", "json").stdout)[0]["id"] == "MON-01"
    assert len(json.loads(run_cli("controls", "list", "--format", "json").stdout)) == 1


def test_validate_shows_type_and_meaning_problems_of_every_control_in_one_run(
        tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compliance.yaml").write_text("targets:\n  websites: []\n", encoding="utf-8")
    (tmp_path / "controls").mkdir()
    (tmp_path / "controls" / "c.yaml").write_text(textwrap.dedent("""\
        - id: A
          title: a type problem
          theme: people
          severity: loww
          checks: [{plugin: file_age, params: {path: /x, max_age: 1d}}]
        - id: B
          title: an unknown plugin
          theme: people
          severity: low
          checks: [{plugin: tcp_portt, params: {host: h, port: 1}}]
        - id: C
          title: a bad cron expression and a bad duration
          theme: people
          severity: low
          schedule: "0 25 * * *"
          checks: [{plugin: file_age, params: {path: /x, max_age: soon}}]
        - id: D
          title: an unknown target group, besides a type problem in the same control
          theme: people
          severity: high
          timeout: 5 fortnights
          checks: [{plugin: file_age, params: {max_age: 1d}, targets: webstes}]
        """), encoding="utf-8")
    result = run_cli("controls", "validate")
    assert result.exit_code == 2
    assert [": ".join(line.split(": ")[:2]) for line in result.stderr.splitlines()] == [
        "controls/c.yaml:4:13: severity 'loww'",
        "controls/c.yaml:10:21: unknown check plugin 'tcp_portt'; did you mean 'tcp_port'? "
        "(run `compliance checks list` to see the installed plugins)",
        "controls/c.yaml:15:13: schedule '0 25 * * *' is not a valid cron expression",
        "controls/c.yaml:16:59: parameter 'max_age' 'soon' of plugin 'file_age'",
        "controls/c.yaml:21:12: timeout '5 fortnights'",
        "controls/c.yaml:22:63: unknown target group 'webstes' (did you mean 'websites'?)",
        "6 problems found",
    ]


def test_a_bad_target_in_compliance_yaml_is_reported_where_it_was_written(
        tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli("init").exit_code == 0
    config = tmp_path / "compliance.yaml"
    lines = config.read_text(encoding="utf-8").splitlines(keepends=True)
    line = next(i for i, text in enumerate(lines, 1) if text.startswith("  websites:"))
    lines[line - 1] = '  websites: ["http://www.example.nl"]\n'
    config.write_text("".join(lines), encoding="utf-8")
    result = run_cli("controls", "validate")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"compliance.yaml:{line}:14: target in group 'websites', used by controls 'FS-HTTPS', 'FS-WEB-ADVICE': "
        "parameter 'url' 'http://www.example.nl' of plugin 'https': 'http://www.example.nl' is not an https:// URL "
        "of a website",
        f"compliance.yaml:{line}:14: target in group 'websites', used by controls 'FS-SECURITY-TXT', "
        "'FS-WEB-ADVICE': parameter 'url' 'http://www.example.nl' of plugin 'security_txt': "
        "'http://www.example.nl' is not an https:// URL of a website",
        "2 problems found",
    ]


# -- finding the config; databases made only on purpose ----------------------------------------------

NO_CONFIG = "error: no compliance.yaml here or above; run `compliance init` or pass --config\n"


def test_a_command_in_a_subfolder_uses_the_monitors_config(project: Project, probe_plugin: type,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from compliance.cli import cli

    project.control("c.yaml", CONTROLS)
    assert project.run("scan", "--tag", "web").exit_code == 1
    subfolder = project.root / "reports" / "2026"
    subfolder.mkdir(parents=True)
    monkeypatch.chdir(subfolder)
    result = CliRunner().invoke(cli, ["findings", "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert [(f["control"], f["target"]) for f in json.loads(result.stdout)] == [("WEB-01", "loket")]
    assert list(subfolder.iterdir()) == []


@pytest.mark.parametrize("args", [("findings",), ("incident", "list", "--format", "csv"), ("attest", "list"),
                                  ("scan",), ("controls", "list"), ("db", "upgrade")])
def test_without_a_config_a_command_exits_2_and_creates_nothing(run_cli: Any, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                args: tuple[str, ...]) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli(*args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", NO_CONFIG)
    assert list(tmp_path.iterdir()) == []


def _config_with_a_missing_database(folder: Path) -> Path:
    (folder / "controls").mkdir()
    (folder / "data").mkdir()
    (folder / "compliance.yaml").write_text("database:\n  url: sqlite:///data/monitor.db\n"
                                            "controls:\n  bundled: [bio2]\n", encoding="utf-8")
    return folder / "data" / "monitor.db"


@pytest.mark.parametrize("args", [("findings", "--format", "csv"), ("incident", "list"), ("attest", "list"),
                                  ("exceptions", "revoke", "1"), ("controls", "coverage"), ("scan",)])
def test_a_command_does_not_create_a_missing_database(run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      args: tuple[str, ...]) -> None:
    monkeypatch.chdir(tmp_path)
    _config_with_a_missing_database(tmp_path)
    result = run_cli(*args)
    assert (result.exit_code, result.stderr) == (2, "error: the database does not exist at data/monitor.db; create it "
                                                    "with `compliance db upgrade` (or set up a new monitor with "
                                                    "`compliance init`)\n")
    assert list((tmp_path / "data").iterdir()) == []


def test_db_upgrade_creates_the_database_readable_by_its_owner_only(run_cli: Any, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    database = _config_with_a_missing_database(tmp_path)
    assert run_cli("db", "status").exit_code == 1 and not database.exists()
    upgraded = run_cli("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert oct(database.stat().st_mode & 0o777) == "0o600"
    assert run_cli("findings").exit_code == 0


def test_the_database_url_from_the_environment_needs_no_config_file(run_cli: Any, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    sqlite_template: Path) -> None:
    import shutil

    shutil.copy(sqlite_template, tmp_path / "env.db")
    monkeypatch.chdir(tmp_path)
    result = run_cli("findings", "--format", "json", env={"COMPLIANCE_DATABASE_URL": f"sqlite:///{tmp_path}/env.db"})
    assert (result.exit_code, result.stdout, result.stderr) == (0, "[]\n", "")


# -- the command line in a shell ---------------------------------------------------------------------


def console_script() -> Path:
    """The installed `compliance` command of this environment (not necessarily on PATH)."""
    script = Path(sys.executable).parent / "compliance"
    assert script.is_file(), f"{script} is missing: install the project (pip install -e .)"
    return script


def environment_without_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}


@pytest.mark.parametrize(("args", "lines_read"), [(("findings", "--format", "csv"), 1),
                                                  (("incident", "list", "--format", "csv"), 0)])
def test_output_into_a_pipe_that_closes_early_stops_quietly(tmp_path: Path, sqlite_template: Path,
                                                            probe_plugin: type, args: tuple[str, ...],
                                                            lines_read: int) -> None:
    """`compliance findings --format csv | head -1`: no message, no traceback, the exit code of `head`'s victims."""
    import shutil

    shutil.copy(sqlite_template, tmp_path / "compliance.db")
    project = Project(tmp_path, f"sqlite:///{tmp_path / 'compliance.db'}")
    targets = ", ".join(f"{{name: host-{i:04d}.afdeling.gemeente.example, outcome: fail}}" for i in range(800))
    project.control("many.yaml", f"- id: MANY\n  title: Many failing targets\n  theme: technological\n"
                                 f"  severity: high\n  checks: [{{plugin: probe, targets: [{targets}]}}]\n")
    assert project.run("scan").exit_code == 1
    assert len(project.run("findings", "--format", "csv").stdout) > 2 ** 17  # more than a pipe holds
    for _ in range(4):  # the race between writer and reader differs from run to run
        command = [str(console_script()), "--config", str(project.config), *args]
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=environment_without_settings()) as process:
            assert process.stdout is not None and process.stderr is not None
            for _ in range(lines_read):
                process.stdout.readline()
            process.stdout.close()
            stderr = process.stderr.read().decode()
            assert (process.wait(60), stderr) in ((0, ""), (141, ""))


@pytest.mark.parametrize("venv_on_path", [False, True], ids=["venv-not-activated", "venv-activated"])
def test_the_demos_last_hint_works_as_printed(tmp_path: Path, venv_on_path: bool) -> None:
    import shlex

    script = console_script()
    env = environment_without_settings()
    system_path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != script.parent]
    env["PATH"] = os.pathsep.join([str(script.parent), *system_path] if venv_on_path else system_path)
    demo = subprocess.run([str(script), "demo"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr
    program = "compliance" if venv_on_path else shlex.quote(str(script))
    assert demo.stdout.splitlines()[-1] == f"The demo lives in demo/. Try: cd demo && {program} findings"
    shown = subprocess.run(demo.stdout.splitlines()[-1].partition("Try: ")[2], shell=True, cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "BIO-LOGSHIP" in shown.stdout


@pytest.mark.parametrize("columns", ["40", "80", "200"])
def test_help_lists_every_command_with_a_complete_summary(run_cli: Any, columns: str) -> None:
    """Click shortens a summary to fit the line: each command carries a short help that needs no cutting."""
    import click

    from compliance.cli import cli

    text = run_cli("--help", env={"COLUMNS": columns}).stdout
    listing = text.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0]
    entries: list[list[str]] = []
    for line in listing.splitlines():
        if line.startswith("   "):  # a summary wrapped onto the next line
            entries[-1][1] += " " + line.strip()
        else:
            name, _, summary = line.strip().partition(" ")
            entries.append([name, summary.strip()])
    summaries = dict(entries)
    assert sorted(summaries) == cli.list_commands(click.Context(cli))
    for name, summary in summaries.items():
        assert summary.endswith(".") and not summary.endswith("..."), (name, summary)
        assert summary.count("(") == summary.count(")"), (name, summary)


# -- the root mounts each domain's commands -----------------------------------------------------------


def test_help_imports_neither_sqlalchemy_nor_a_command_module() -> None:
    code = textwrap.dedent("""\
        import sys
        from compliance.cli import main
        sys.argv = ["compliance", "--help"]
        try:
            main()
        except SystemExit:
            pass
        print(sorted(m for m in sys.modules if m.startswith("sqlalchemy") or m.endswith(".commands")),
              file=sys.stderr)
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=environment_without_settings())
    assert "Commands:" in result.stdout
    assert result.stderr == "[]\n"


def test_the_roots_summaries_are_the_commands_own() -> None:
    """`--help` lists the summaries of COMMANDS without importing the commands: they must not drift apart."""
    import click

    from compliance.cli import COMMANDS, cli, mounted

    ctx = click.Context(cli, info_name="compliance")
    assert {name: mounted(name).get_short_help_str(limit=300) for name in cli.list_commands(ctx)} == {
        name: mount.short_help for name, mount in COMMANDS.items()}


def test_each_command_lives_in_the_commands_module_of_its_domain() -> None:
    from compliance.cli import COMMANDS, mounted

    for name, mount in COMMANDS.items():
        module = mount.where.partition(":")[0]
        command = mounted(name)
        assert module.startswith("compliance.") and module.endswith(".commands") and module.count(".") == 2, name
        assert command.name == name
        assert command.callback is not None and command.callback.__module__ == module
