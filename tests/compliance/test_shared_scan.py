"""`compliance scan --all-orgs`: each organisation its own scan, a check they share run once (issue 20)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from compliance.api import Result, Status
from compliance.db import Database
from compliance.db.models import CheckResultRow
from compliance.engine import CheckTask, SharedChecks, TaskOutcome
from compliance.orgs import org_url, registry


def counting_control(cid: str, log: Path, word: str = "gateway") -> str:
    """A control whose check appends a line to LOG each time it runs (the `command` plugin)."""
    return (f"- id: {cid}\n  title: Control {cid}\n  theme: technological\n  severity: high\n"
            f"  checks: [{{plugin: command, params: {{run: [sh, -c, 'echo {word} >> {log}; exit 1']}}}}]\n")


def two_orgs(project: Any) -> str:
    assert project.run("org", "rename", "default", "alpha", "--name", "Gemeente Alpha").exit_code == 0
    assert project.run("org", "add", "beta", "--name", "Gemeente Beta").exit_code == 0
    home = Database(project.db_url)
    try:
        beta = next(o for o in registry(home) if o.code == "beta")
    finally:
        home.close()
    return org_url(project.db_url, beta.location)


def results(url: str) -> list[tuple[str, str]]:
    db = Database(url)
    try:
        with db.engine.connect() as connection:
            rows = connection.execute(select(CheckResultRow.control_id, CheckResultRow.status)).all()
    finally:
        db.close()
    return [(row.control_id, row.status) for row in rows]


def test_a_shared_check_runs_once_and_is_stored_for_each_organisation(project: Any) -> None:
    log = project.root / "runs.log"
    project.control("shared.yaml", counting_control("GW-1", log))
    beta_url = two_orgs(project)

    result = project.run("scan", "--all-orgs", "--format", "json", "--fail-on", "none")

    assert result.exit_code == 0, result.output
    assert log.read_text().splitlines() == ["gateway"]  # once, not once per organisation
    document = json.loads(result.stdout)
    assert [(s["org"], s["name"], s["summary"]["fail"]) for s in document["organisations"]] == [
        ("alpha", "Gemeente Alpha", 1), ("beta", "Gemeente Beta", 1)]
    assert document["shared_checks"] == 1
    assert results(project.db_url) == [("GW-1", "fail")]
    assert results(beta_url) == [("GW-1", "fail")]


def test_checks_that_differ_per_organisation_run_for_each(project: Any) -> None:
    log = project.root / "runs.log"
    beta_url = two_orgs(project)
    # the same control, but the organisation's own parameters: two different checks
    (project.root / "alpha").mkdir()
    (project.root / "beta").mkdir()
    project.control("own.yaml", counting_control("OWN-1", log, "common"))
    for org in ("alpha", "beta"):
        (project.root / org / "own.yaml").write_text(
            "- id: OWN-1\n  override: true\n"
            f"  checks: [{{plugin: command, params: {{run: [sh, -c, 'echo {org} >> {log}; exit 1']}}}}]\n")
    project.write_config("organisations:\n  alpha:\n    controls: {paths: [alpha]}\n"
                         "  beta:\n    controls: {paths: [beta]}\n")

    result = project.run("scan", "--all-orgs", "--fail-on", "none")

    assert result.exit_code == 0, result.output
    assert sorted(log.read_text().splitlines()) == ["alpha", "beta"]
    assert "0 check(s) shared by more than one organisation ran once" in result.stdout
    assert results(project.db_url) == [("OWN-1", "fail")] and results(beta_url) == [("OWN-1", "fail")]


def test_an_exception_on_a_shared_finding_is_the_organisations_own(project: Any) -> None:
    project.control("shared.yaml", counting_control("GW-1", project.root / "runs.log"))
    two_orgs(project)
    assert project.run("exceptions", "add", "GW-1", "--reason", "replaced in Q1", "--approved-by", "CISO Beta",
                       "--until", "2099-01-01", "--org", "beta").exit_code == 0

    result = project.run("scan", "--all-orgs", "--format", "json")

    assert result.exit_code == 1  # alpha's failure is not accepted
    accepted = {s["org"]: s["summary"]["accepted"] for s in json.loads(result.stdout)["organisations"]}
    assert accepted == {"alpha": 0, "beta": 1}
    assert json.loads(project.run("findings", "--org", "alpha", "--format", "json").stdout)[0]["state"] == "open"
    assert json.loads(project.run("findings", "--org", "beta", "--format", "json", "--status", "accepted")
                      .stdout)[0]["exception"] is not None


def test_all_orgs_scans_only_the_organisations_the_user_may_act_for(project: Any) -> None:
    import getpass

    log = project.root / "runs.log"
    project.control("shared.yaml", counting_control("GW-1", log))
    beta_url = two_orgs(project)
    project.write_config(f"orgs:\n  users:\n    {getpass.getuser()}: [beta]\n")

    result = project.run("scan", "--all-orgs", "--format", "json", "--fail-on", "none")

    assert result.exit_code == 0, result.output
    assert [s["org"] for s in json.loads(result.stdout)["organisations"]] == ["beta"]
    assert results(project.db_url) == [] and results(beta_url) == [("GW-1", "fail")]


def test_all_orgs_with_org_is_a_usage_error(project: Any) -> None:
    project.control("shared.yaml", counting_control("GW-1", project.root / "runs.log"))
    two_orgs(project)

    result = project.run("scan", "--all-orgs", "--org", "beta")

    assert result.exit_code == 2
    assert result.stderr == "error: --all-orgs scans every organisation you may act for; leave out --org\n"


class Recording:
    """An executor that runs nothing and records which tasks it was given."""

    def __init__(self) -> None:
        self.given: list[list[str]] = []
        self.prepared: list[list[str]] = []

    def prepare(self, tasks: Sequence[CheckTask]) -> None:
        self.prepared.append([t.control_id for t in tasks])

    def execute(self, tasks: Sequence[CheckTask]) -> Iterator[TaskOutcome]:
        self.given.append([t.control_id for t in tasks])
        for task in tasks:
            outcome = (Result(Status.PASS, "gw is up", task.params["host"]),)
            yield TaskOutcome(task, outcome, datetime(2026, 11, 30, tzinfo=UTC), 0.5)


def task(control_id: str, target: str, facts: dict[str, Any] | None = None) -> CheckTask:
    return CheckTask(control_id, 0, "tcp_port", {"host": target}, 5.0, facts=facts or {})


def test_shared_checks_hand_each_later_scan_the_first_outcome_under_its_own_control() -> None:
    inner = Recording()
    shared = SharedChecks(inner)
    first = list(shared.execute([task("A-1", "gw"), task("A-2", "mail-a")]))
    shared.prepare([task("B-9", "gw"), task("B-2", "mail-b"), task("B-3", "gw", {"breaches": 1})])
    second = list(shared.execute([task("B-9", "gw"), task("B-2", "mail-b"), task("B-3", "gw", {"breaches": 1})]))
    list(shared.execute([task("C-1", "gw")]))  # a third organisation: still one check shared

    assert inner.given == [["A-1", "A-2"], ["B-2", "B-3"]]  # other facts: another check
    assert inner.prepared == [["B-2", "B-3"]]
    reused = next(o for o in second if o.task.control_id == "B-9")
    assert reused.results == first[0].results and reused.started_at == first[0].started_at
    assert shared.shared == 1


def test_a_control_one_organisation_lacks_stops_all_orgs_before_any_scan(project: Any) -> None:
    project.control("shared.yaml", counting_control("GW-1", project.root / "runs.log"))
    beta_url = two_orgs(project)
    (project.root / "beta").mkdir()
    (project.root / "beta" / "own.yaml").write_text(counting_control("BETA-1", project.root / "runs.log"))
    project.write_config("organisations:\n  beta:\n    controls: {paths: [beta]}\n")

    result = project.run("scan", "--all-orgs", "--control", "BETA-1")

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == ("error: no control with id 'BETA-1' of organisation alpha (see `compliance controls "
                             "list`)\n")
    assert results(project.db_url) == [] and results(beta_url) == []
    assert not (project.root / "runs.log").exists()


def test_all_orgs_for_a_user_who_may_act_for_none_is_a_usage_error(project: Any) -> None:
    import getpass

    project.control("shared.yaml", counting_control("GW-1", project.root / "runs.log"))
    two_orgs(project)
    project.write_config(f"orgs:\n  users:\n    {getpass.getuser()}: []\n")

    result = project.run("scan", "--all-orgs")

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: user '{getpass.getuser()}' may act for none of this monitor's ")
