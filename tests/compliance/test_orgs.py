"""Several organisations in one install (issue 20): the register, choosing one, access, settings per
organisation, the migration of a single-organisation database and the check that a database is its own."""

from __future__ import annotations

import getpass
import grp
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from compliance import db
from compliance.db import SCHEMA_HEAD
from tests.conftest import Project

#: A control that fails on one target and passes on the other (the `probe` plugin of the tests).
CONTROLS = """\
- id: WEB-01
  title: Public web server answers
  theme: technological
  severity: high
  checks:
    - plugin: probe
      targets: [{name: www, outcome: pass}, {name: loket, outcome: fail}]
"""

HINT_ACCESS = "the `orgs:` section of compliance.yaml names who may act for which organisation"


@pytest.fixture(autouse=True)
def _no_org_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("COMPLIANCE_ORG", "COMPLIANCE_DIGEST_TO", "COMPLIANCE_DIGEST_FROM"):
        monkeypatch.delenv(variable, raising=False)


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr or result.stdout
    return result


def listed(project: Project, *args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(ok(project.run("org", "list", "--format", "json", *args, env=env)).stdout)
    return data


def location(project: Project, code: str) -> str:
    """Where `org add CODE` puts the organisation's data on the project's database."""
    return f"compliance-{code}.db" if project.db_url.startswith("sqlite") else f"org_{code}"


def two_orgs(project: Project) -> None:
    """utrecht (the first database) and zeist (a database of its own)."""
    ok(project.run("org", "rename", "default", "utrecht", "--name", "Gemeente Utrecht"))
    ok(project.run("org", "add", "zeist", "--name", "Gemeente Zeist"))


def add_exception(project: Project, reason: str, *org: str) -> dict[str, Any]:
    result = ok(project.run("exceptions", "add", "WEB-01", "--reason", reason, "--approved-by", "J. de Vries (CISO)",
                            "--until", "2099-12-31", "--by", "tester", "--format", "json", *org))
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def reasons(project: Project, *args: str, env: dict[str, str] | None = None) -> list[str]:
    result = ok(project.run("exceptions", "list", "--format", "json", *args, env=env))
    return [e["reason"] for e in json.loads(result.stdout)]


def table_rows(stdout: str) -> list[list[str]]:
    """The cells of a drawn table, header first (the rule lines left out)."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in stdout.splitlines() if line.startswith("│")]


def me() -> str:
    return getpass.getuser()


def my_group() -> str:
    return grp.getgrgid(os.getgid()).gr_name


# -- the register: list, rename, add -------------------------------------------------------------------


def test_a_fresh_install_lists_one_organisation_default(project: Project) -> None:
    rows = table_rows(ok(project.run("org", "list")).stdout)
    assert rows[0] == ["", "Code", "Name", "Data", "Added", "By"]
    [(mark, code, name, data, added, by)] = rows[1:]
    assert (mark, code, name, data, by) == ("*", "default", "", "(first database)", "compliance db upgrade")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", added)


def test_org_list_as_json_names_every_field(project: Project) -> None:
    [org] = listed(project)
    assert list(org) == ["code", "name", "location", "created_at", "created_by", "current"]
    assert (org["code"], org["name"], org["location"], org["created_by"], org["current"]) == (
        "default", "", "(first database)", "compliance db upgrade", True)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", org["created_at"])


def test_rename_gives_the_first_organisation_a_code_and_name(project: Project) -> None:
    result = ok(project.run("org", "rename", "default", "utrecht", "--name", "Gemeente Utrecht"))
    assert result.stdout == "organisation default is now utrecht (Gemeente Utrecht)\n"
    assert [(o["code"], o["name"], o["location"], o["current"]) for o in listed(project)] == [
        ("utrecht", "Gemeente Utrecht", "(first database)", True)]


def test_rename_without_a_new_code_or_name_is_refused(project: Project) -> None:
    result = project.run("org", "rename", "default")
    assert (result.exit_code, result.stderr) == (2, "error: give a new code, --name NAME, or both\n")


def test_rename_of_an_unknown_organisation_suggests_the_known_one(project: Project) -> None:
    result = project.run("org", "rename", "defualt", "utrecht")
    assert (result.exit_code, result.stderr) == (
        2, "error: there is no organisation 'defualt' (--org); did you mean 'default'?\n")


def test_add_creates_a_database_of_its_own_at_the_schema_head(project: Project) -> None:
    from compliance.orgs import org_url

    ok(project.run("org", "rename", "default", "utrecht", "--name", "Gemeente Utrecht"))
    result = ok(project.run("org", "add", "zeist", "--name", "Gemeente Zeist", "--by", "beheer"))
    where = location(project, "zeist")
    assert result.stdout == f"organisation zeist (Gemeente Zeist) added; its data: {where}\n"
    assert [(o["code"], o["name"], o["location"], o["created_by"]) for o in listed(project, "--org", "zeist")] == [
        ("utrecht", "Gemeente Utrecht", "(first database)", "compliance db upgrade"),
        ("zeist", "Gemeente Zeist", where, "beheer")]
    assert db.current_revision(org_url(project.db_url, where)) == SCHEMA_HEAD
    if project.db_url.startswith("sqlite"):
        file = project.root / "compliance-zeist.db"
        assert oct(file.stat().st_mode & 0o777) == "0o600"
    else:
        engine = db.create_engine(project.db_url)
        with engine.connect() as connection:
            schemas = connection.execute(text(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'org%'")).scalars().all()
            tables = connection.execute(text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'org_zeist' "
                "AND table_name IN ('scans', 'findings', 'incidents', 'organisations')")).scalar()
        engine.dispose()
        assert (schemas, tables) == (["org_zeist"], 4)


def test_the_new_database_holds_its_own_row(project: Project) -> None:
    from compliance.orgs import org_url

    two_orgs(project)
    own = db.Database(org_url(project.db_url, location(project, "zeist")))
    try:
        with own.engine.connect() as connection:
            rows = connection.execute(text("SELECT code, name, location FROM organisations")).all()
    finally:
        own.close()
    assert [tuple(r) for r in rows] == [("zeist", "Gemeente Zeist", "")]


def test_adding_an_existing_code_is_refused(project: Project) -> None:
    two_orgs(project)
    result = project.run("org", "add", "zeist", "--name", "Zeist again")
    assert (result.exit_code, result.stderr) == (
        2, "error: organisation 'zeist' already exists; `compliance org list` shows them\n")
    assert [o["name"] for o in listed(project, "--org", "zeist")] == ["Gemeente Utrecht", "Gemeente Zeist"]


def test_renaming_onto_an_existing_code_is_refused(project: Project) -> None:
    two_orgs(project)
    result = project.run("org", "rename", "zeist", "utrecht")
    assert (result.exit_code, result.stderr) == (
        2, "error: organisation 'utrecht' already exists; choose another code\n")


@pytest.mark.parametrize("code", ["Zeist", "1x", "z", "zeist_oost"])
def test_a_bad_code_is_refused_and_nothing_is_created(project: Project, code: str) -> None:
    result = project.run("org", "add", code, "--name", "Gemeente Zeist")
    assert (result.exit_code, result.stderr) == (
        2, f"error: '{code}' is not a valid organisation code: use 2 to 40 lower-case letters, digits and "
           "hyphens, starting with a letter (e.g. utrecht, de-bilt)\n")
    assert [o["code"] for o in listed(project)] == ["default"]
    assert sorted(p.name for p in project.root.glob("compliance-*")) == []


def test_org_list_marks_the_chosen_one_when_there_are_several(project: Project) -> None:
    two_orgs(project)
    assert [(o["code"], o["current"]) for o in listed(project)] == [("utrecht", False), ("zeist", False)]
    assert [(o["code"], o["current"]) for o in listed(project, "--org", "zeist")] == [
        ("utrecht", False), ("zeist", True)]


def test_org_list_works_with_organisation_sections_and_no_org_chosen(project: Project) -> None:
    two_orgs(project)
    project.write_config("organisations:\n  zeist:\n    digest:\n      to: [ciso@zeist.example]\n")
    rows = table_rows(ok(project.run("org", "list")).stdout)
    assert [row[:4] for row in rows[1:]] == [["", "utrecht", "Gemeente Utrecht", "(first database)"],
                                             ["", "zeist", "Gemeente Zeist", location(project, "zeist")]]


# -- choosing the organisation a command acts for -----------------------------------------------------


@pytest.fixture
def scanned(project: Project, probe_plugin: type) -> Project:
    """utrecht and zeist, both scanned once, with the control WEB-01 failing on `loket`."""
    project.control("web.yaml", CONTROLS)
    two_orgs(project)
    assert project.run("scan", "--org", "utrecht").exit_code == 1
    assert project.run("scan", "--org", "zeist").exit_code == 1
    return project


def test_data_written_for_one_organisation_is_seen_for_it_only(scanned: Project) -> None:
    add_exception(scanned, "zeist: new portal in Q1", "--org", "zeist")
    assert reasons(scanned, "--org", "zeist") == ["zeist: new portal in Q1"]
    assert reasons(scanned, "--org", "utrecht") == []


def test_org_may_come_before_the_command(scanned: Project) -> None:
    add_exception(scanned, "zeist only", "--org", "zeist")
    result = ok(scanned.run("--org", "zeist", "exceptions", "list", "--format", "json"))
    assert [e["reason"] for e in json.loads(result.stdout)] == ["zeist only"]


def test_org_with_an_equals_sign_may_follow_the_command(scanned: Project) -> None:
    add_exception(scanned, "zeist only", "--org=zeist")
    assert reasons(scanned, "--org=zeist") == ["zeist only"]
    assert reasons(scanned, "--org=utrecht") == []


def test_org_after_a_double_dash_is_not_taken_as_the_organisation() -> None:
    from compliance.cli import hoist_org

    assert hoist_org(["findings", "--org", "zeist", "--", "--org", "utrecht"]) == [
        "--org", "zeist", "findings", "--", "--org", "utrecht"]


def test_org_may_come_from_the_environment(scanned: Project) -> None:
    add_exception(scanned, "zeist only", "--org", "zeist")
    assert reasons(scanned, env={"COMPLIANCE_ORG": "zeist"}) == ["zeist only"]
    assert reasons(scanned, env={"COMPLIANCE_ORG": "utrecht"}) == []


def test_org_may_come_from_the_config(scanned: Project) -> None:
    add_exception(scanned, "zeist only", "--org", "zeist")
    scanned.write_config("org: zeist\n")
    assert reasons(scanned) == ["zeist only"]


def test_org_option_wins_over_the_environment_and_the_config(scanned: Project) -> None:
    add_exception(scanned, "zeist only", "--org", "zeist")
    scanned.write_config("org: utrecht\n")
    assert reasons(scanned, "--org", "zeist") == ["zeist only"]
    assert reasons(scanned, env={"COMPLIANCE_ORG": "zeist"}) == ["zeist only"]
    assert reasons(scanned, "--org", "utrecht", env={"COMPLIANCE_ORG": "zeist"}) == []


def test_the_only_organisation_needs_no_naming(project: Project, probe_plugin: type) -> None:
    project.control("web.yaml", CONTROLS)
    assert project.run("scan").exit_code == 1
    add_exception(project, "one organisation")
    assert reasons(project) == ["one organisation"]
    assert reasons(project, "--org", "default") == ["one organisation"]


def test_several_organisations_and_none_named_is_an_error(scanned: Project) -> None:
    result = scanned.run("exceptions", "list")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: this monitor serves several organisations (utrecht, zeist): name one with --org CODE, the "
        "environment variable COMPLIANCE_ORG, or `org: CODE` in compliance.yaml\n")


def test_an_unknown_code_suggests_a_close_one(scanned: Project) -> None:
    result = scanned.run("findings", "--org", "zeis")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "error: there is no organisation 'zeis' (--org or COMPLIANCE_ORG); did you mean 'zeist'?\n"


def test_an_unknown_code_in_the_config_names_the_config(scanned: Project) -> None:
    scanned.write_config("org: utrect\n")
    result = scanned.run("findings")
    assert (result.exit_code, result.stderr) == (
        2, "error: there is no organisation 'utrect' (org: in compliance.yaml); did you mean 'utrecht'?\n")


def test_an_unknown_code_with_nothing_close_points_to_org_list(scanned: Project) -> None:
    result = scanned.run("findings", "--org", "amersfoort")
    assert (result.exit_code, result.stderr) == (
        2, "error: there is no organisation 'amersfoort' (--org or COMPLIANCE_ORG); `compliance org list` shows them\n")


def test_each_organisation_has_a_breach_register_of_its_own(project: Project) -> None:
    from tests.incidents.conftest import INCIDENT_SETTINGS, LETTER

    project.write_config(INCIDENT_SETTINGS)
    two_orgs(project)
    zeist = ok(project.run("incident", "new", *LETTER, "--format", "json", "--by", "anna", "--org", "zeist"))
    utrecht = ok(project.run("incident", "new", *LETTER, "--format", "json", "--by", "bert", "--org", "utrecht"))
    year = json.loads(zeist.stdout)["id"].split("-")[1]
    assert (json.loads(zeist.stdout)["id"], json.loads(utrecht.stdout)["id"]) == (f"DL-{year}-0001", f"DL-{year}-0001")

    def register(code: str) -> list[tuple[str, str]]:
        listed = json.loads(ok(project.run("incident", "list", "--format", "json", "--org", code)).stdout)
        return [(i["id"], i["created_by"]) for i in listed]

    assert (register("zeist"), register("utrecht")) == ([(f"DL-{year}-0001", "anna")], [(f"DL-{year}-0001", "bert")])
    verified = ok(project.run("incident", "verify", "--org", "zeist"))
    assert verified.stdout.startswith("audit trail intact: 1 event, 1 incident; head hash ")


def test_scans_and_findings_stay_with_their_organisation(project: Project, probe_plugin: type) -> None:
    project.control("web.yaml", CONTROLS)
    two_orgs(project)
    assert project.run("scan", "--org", "zeist").exit_code == 1
    zeist = json.loads(ok(project.run("findings", "--org", "zeist", "--format", "json")).stdout)
    utrecht = json.loads(ok(project.run("findings", "--org", "utrecht", "--format", "json")).stdout)
    assert ([(f["control"], f["target"]) for f in zeist], utrecht) == ([("WEB-01", "loket")], [])


# -- access: who may act for which organisation -------------------------------------------------------


def test_a_user_may_not_act_for_an_organisation_not_granted(scanned: Project) -> None:
    add_exception(scanned, "utrecht: secret reason", "--org", "utrecht")
    scanned.write_config(f"orgs:\n  users:\n    {me()}: [zeist]\n")
    result = scanned.run("exceptions", "list", "--org", "utrecht", "--format", "json")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (f"error: user '{me()}' may not act for organisation 'utrecht' (--org or "
                             f"COMPLIANCE_ORG); {HINT_ACCESS}\n")


def test_a_user_not_granted_the_config_org_may_not_act_for_it(scanned: Project) -> None:
    scanned.write_config(f"org: utrecht\norgs:\n  users:\n    {me()}: [zeist]\n")
    result = scanned.run("findings")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (f"error: user '{me()}' may not act for organisation 'utrecht' (org: in "
                             f"compliance.yaml); {HINT_ACCESS}\n")


def test_the_only_organisation_granted_is_the_one_used(scanned: Project) -> None:
    add_exception(scanned, "zeist only", "--org", "zeist")
    scanned.write_config(f"orgs:\n  users:\n    {me()}: [zeist]\n")
    assert reasons(scanned) == ["zeist only"]


def test_a_group_grants_access_too(scanned: Project) -> None:
    add_exception(scanned, "zeist only", "--org", "zeist")
    scanned.write_config(f"orgs:\n  users:\n    someone-else: ['*']\n  groups:\n    {my_group()}: [zeist]\n")
    assert reasons(scanned, "--org", "zeist") == ["zeist only"]
    refused = scanned.run("findings", "--org", "utrecht")
    assert (refused.exit_code, refused.stderr) == (
        2, f"error: user '{me()}' may not act for organisation 'utrecht' (--org or COMPLIANCE_ORG); {HINT_ACCESS}\n")


def test_a_user_granted_nothing_may_act_for_none(scanned: Project) -> None:
    scanned.write_config("orgs:\n  users:\n    someone-else: ['*']\n")
    result = scanned.run("findings")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (f"error: user '{me()}' may act for none of this monitor's organisations; "
                             f"{HINT_ACCESS}\n")


def test_unknown_codes_suggest_only_organisations_the_user_may_see(scanned: Project) -> None:
    scanned.write_config(f"orgs:\n  users:\n    {me()}: [zeist]\n")
    result = scanned.run("findings", "--org", "utrech")
    assert (result.exit_code, result.stderr) == (
        2, "error: there is no organisation 'utrech' (--org or COMPLIANCE_ORG); `compliance org list` shows them\n")


def test_a_granted_code_that_does_not_exist_is_reported_as_missing(scanned: Project) -> None:
    scanned.write_config(f"orgs:\n  users:\n    {me()}: [zeist, bilt]\n")
    result = scanned.run("findings", "--org", "bilt")
    assert (result.exit_code, result.stderr) == (
        2, "error: there is no organisation 'bilt' (--org or COMPLIANCE_ORG); `compliance org list` shows them\n")


def test_org_list_shows_only_the_organisations_granted(project: Project) -> None:
    two_orgs(project)
    project.write_config(f"orgs:\n  users:\n    {me()}: [zeist]\n")
    assert [(o["code"], o["current"]) for o in listed(project)] == [("zeist", True)]


def test_org_list_shows_every_organisation_to_a_user_granted_all(project: Project) -> None:
    two_orgs(project)
    project.write_config(f"orgs:\n  users:\n    {me()}: ['*']\n")
    assert [o["code"] for o in listed(project)] == ["utrecht", "zeist"]


@pytest.mark.parametrize("args", [("org", "add", "bilt", "--name", "Gemeente De Bilt"),
                                  ("org", "rename", "zeist", "--name", "Zeist")])
def test_adding_or_renaming_needs_access_to_all(project: Project, args: tuple[str, ...]) -> None:
    two_orgs(project)
    project.write_config(f"orgs:\n  users:\n    {me()}: [utrecht, zeist]\n")
    result = project.run(*args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (f"error: user '{me()}' may not add or rename organisations: that needs \"*\" under "
                             "`orgs:` in compliance.yaml\n")
    project.write_config("")
    assert [(o["code"], o["name"]) for o in listed(project)] == [("utrecht", "Gemeente Utrecht"),
                                                                 ("zeist", "Gemeente Zeist")]


def test_a_group_granted_all_may_add(project: Project) -> None:
    ok(project.run("org", "rename", "default", "utrecht"))
    project.write_config(f"orgs:\n  groups:\n    {my_group()}: ['*']\n")
    ok(project.run("org", "add", "zeist", "--name", "Gemeente Zeist"))
    assert [o["code"] for o in listed(project, "--org", "zeist")] == ["utrecht", "zeist"]


# -- settings per organisation (Settings.for_org) ------------------------------------------------------


SHARED_AND_ZEIST = """\
database:
  url: sqlite:///compliance.db
controls:
  paths: [controls]
evidence:
  store: /srv/evidence
digest:
  from: monitor@ssc.example
  to: [ciso@utrecht.example]
  lang: en
targets:
  web: [https://www.utrecht.example]
  mail: [mail.ssc.example]
organisations:
  zeist:
    targets:
      web: [https://www.zeist.example]
      dns: [ns1.zeist.example]
    digest:
      to: [ciso@zeist.example, fg@zeist.example]
    controls:
      paths: [zeist-controls]
    slack:
      channel: "#zeist-security"
"""


def settings_of(tmp_path: Path, content: str = SHARED_AND_ZEIST, environ: dict[str, str] | None = None) -> Any:
    from compliance.settings import load_settings

    config = tmp_path / "compliance.yaml"
    config.write_text(content, encoding="utf-8")
    return load_settings(str(config), environ=environ or {})


def test_an_organisation_adds_and_replaces_target_groups(tmp_path: Path) -> None:
    zeist = settings_of(tmp_path).for_org("zeist")
    assert {k: list(v) for k, v in zeist.targets.items()} == {
        "web": ["https://www.zeist.example"], "mail": ["mail.ssc.example"], "dns": ["ns1.zeist.example"]}


def test_an_organisation_without_a_section_gets_the_shared_settings(tmp_path: Path) -> None:
    shared = settings_of(tmp_path)
    utrecht = shared.for_org("utrecht")
    assert {k: list(v) for k, v in utrecht.targets.items()} == {
        "web": ["https://www.utrecht.example"], "mail": ["mail.ssc.example"]}
    assert (utrecht.digest, utrecht.controls, utrecht.evidence, utrecht.org_code) == (
        shared.digest, shared.controls, shared.evidence, "utrecht")


def test_an_organisation_replaces_the_digest_recipients_only(tmp_path: Path) -> None:
    digest = settings_of(tmp_path).for_org("zeist").digest
    assert (digest.to, digest.sender, digest.lang) == (
        ["ciso@zeist.example", "fg@zeist.example"], "monitor@ssc.example", "en")


def test_an_organisation_has_its_own_slack_channel(tmp_path: Path) -> None:
    settings = settings_of(tmp_path)
    assert (settings.for_org("zeist").slack.channel, settings.for_org("utrecht").slack.channel) == (
        "#zeist-security", None)


def test_the_environment_wins_over_an_organisations_section(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, environ={"COMPLIANCE_DIGEST_TO": "crisis@ssc.example"})
    assert settings.for_org("zeist").digest.to == ["crisis@ssc.example"]
    assert settings.for_org("utrecht").digest.to == ["crisis@ssc.example"]


def test_an_organisations_control_paths_come_after_the_shared_ones(tmp_path: Path) -> None:
    zeist = settings_of(tmp_path).for_org("zeist")
    assert zeist.control_paths == [tmp_path / "controls", tmp_path / "zeist-controls"]


def test_an_organisation_choosing_bundled_controls_only_keeps_the_shared_paths(tmp_path: Path) -> None:
    content = SHARED_AND_ZEIST.replace("      paths: [zeist-controls]\n", "      bundled: [bio2]\n")
    zeist = settings_of(tmp_path, content).for_org("zeist")
    assert (zeist.control_paths, zeist.controls.bundled) == ([tmp_path / "controls"], ["bio2"])


def test_evidence_of_a_later_organisation_goes_to_a_folder_of_its_own(tmp_path: Path) -> None:
    settings = settings_of(tmp_path)
    assert settings.for_org("zeist", first=False).evidence.store == "/srv/evidence-zeist"
    assert settings.for_org("utrecht").evidence.store == "/srv/evidence"


def test_an_organisations_own_evidence_store_is_kept(tmp_path: Path) -> None:
    content = SHARED_AND_ZEIST + "    evidence:\n      store: /srv/zeist-evidence\n"
    assert settings_of(tmp_path, content).for_org("zeist", first=False).evidence.store == "/srv/zeist-evidence"


def test_the_command_line_uses_the_settings_of_the_chosen_organisation(project: Project) -> None:
    from compliance.cli import App

    two_orgs(project)
    project.write_config("evidence:\n  store: evidence\norganisations:\n  zeist:\n    digest:\n"
                         "      to: [ciso@zeist.example]\n")
    zeist = App(str(project.config), False, "zeist")
    utrecht = App(str(project.config), False, "utrecht")
    try:
        assert (zeist.settings.org_code, zeist.settings.digest.to, zeist.settings.evidence.store) == (
            "zeist", ["ciso@zeist.example"], "evidence-zeist")
        assert (utrecht.settings.org_code, utrecht.settings.digest.to, utrecht.settings.evidence.store) == (
            "utrecht", [], "evidence")
    finally:
        zeist.close()
        utrecht.close()


def test_evidence_copies_of_a_later_organisation_go_to_its_folder(project: Project, probe_plugin: type) -> None:
    project.control("web.yaml", CONTROLS)
    two_orgs(project)
    document = project.root / "verwerkersovereenkomst.pdf"
    document.write_bytes(b"%PDF-1.4 agreement")
    copies = {}
    for code in ("utrecht", "zeist"):
        added = ok(project.run("attest", "add", "WEB-01", "--by", "FG", "--evidence", str(document), "--valid-until",
                               "2099-12-31", "--copy", "--format", "json", "--org", code))
        copies[code] = Path(json.loads(added.stdout)["copy"]).parent
    assert copies == {"utrecht": project.root / "evidence", "zeist": project.root / "evidence-zeist"}


def test_an_organisations_own_controls_are_loaded_for_it_only(project: Project, probe_plugin: type) -> None:
    project.control("web.yaml", CONTROLS)
    two_orgs(project)
    (project.root / "zeist-controls").mkdir()
    (project.root / "zeist-controls" / "own.yaml").write_text(
        CONTROLS.replace("WEB-01", "ZEIST-01").replace("Public web server answers", "Zeist's own"), encoding="utf-8")
    project.write_config("organisations:\n  zeist:\n    controls:\n      paths: [zeist-controls]\n")

    def ids(code: str) -> list[str]:
        result = ok(project.run("controls", "list", "--format", "json", "--org", code))
        return [c["id"] for c in json.loads(result.stdout)]

    assert (ids("utrecht"), ids("zeist")) == (["WEB-01"], ["WEB-01", "ZEIST-01"])


def test_a_bad_value_in_an_organisations_section_is_reported_at_its_line(project: Project) -> None:
    project.write_config("organisations:\n  zeist:\n    digest:\n      to: [not-an-address]\n")
    result = project.run("findings")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == ("compliance.yaml:8:11: organisations.zeist.digest.to: 'not-an-address' is not an "
                             "e-mail address\n1 problem found\n")


def test_a_bad_organisation_code_in_the_config_is_reported_at_its_line(project: Project) -> None:
    project.write_config("organisations:\n  Zeist:\n    digest:\n      to: [ciso@zeist.example]\n")
    result = project.run("findings")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(
        "compliance.yaml:6:3: organisations.Zeist: 'Zeist' is not a valid organisation code")


# -- an existing single-organisation database --------------------------------------------------------


def test_db_upgrade_makes_existing_data_organisation_default(project: Project, probe_plugin: type) -> None:
    from alembic import command

    project.control("web.yaml", CONTROLS)
    assert project.run("scan").exit_code == 1
    add_exception(project, "before there were several")
    command.downgrade(db.alembic_config(project.db_url), "0014")
    assert db.current_revision(project.db_url) == "0014"

    upgraded = ok(project.run("db", "upgrade"))
    assert upgraded.stdout == f"database {db.safe_url(project.db_url)} migrated from 0014 to schema {SCHEMA_HEAD}\n"
    assert [(o["code"], o["location"], o["current"]) for o in listed(project)] == [
        ("default", "(first database)", True)]
    findings = json.loads(ok(project.run("findings", "--status", "all", "--format", "json")).stdout)
    assert [(f["control"], f["target"], f["state"]) for f in findings] == [("WEB-01", "loket", "accepted")]
    assert reasons(project) == ["before there were several"]
    assert reasons(project, "--org", "default") == ["before there were several"]


def test_after_the_migration_a_scan_works_as_before(project: Project, probe_plugin: type) -> None:
    from alembic import command

    project.control("web.yaml", CONTROLS)
    assert project.run("scan").exit_code == 1
    command.downgrade(db.alembic_config(project.db_url), "0014")
    ok(project.run("db", "upgrade"))
    assert project.run("scan").exit_code == 1
    history = json.loads(ok(project.run("findings", "--format", "json")).stdout)
    assert [(f["control"], f["target"], f["state"]) for f in history] == [("WEB-01", "loket", "open")]


def test_a_database_built_at_0014_is_migrated(tmp_path: Path, db_url: str) -> None:
    """A database created by the version before (upgrade to 0014, then the store writes a scan)."""
    from alembic import command

    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'old.db'}"
        assert db.upgrade(url, "0014") == "0014"
    else:
        url = db_url
        command.downgrade(db.alembic_config(url), "0014")
    engine = db.create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO controls (id, title, description, theme, severity, \"references\", tags, content_hash, "
            "source, active, synced_at, translations) VALUES ('OLD-1', 'old', '', 'people', 'low', '{}', '[]', "
            "'x', '', true, '2026-01-01 00:00:00+00:00', '{}')"))
    engine.dispose()
    assert db.upgrade(url) == SCHEMA_HEAD
    database = db.Database(url)
    try:
        with database.engine.connect() as connection:
            controls = connection.execute(text("SELECT id FROM controls")).scalars().all()
        from compliance.orgs import registry

        orgs = [(o.code, o.location, o.first) for o in registry(database)]
    finally:
        database.close()
    assert (controls, orgs) == (["OLD-1"], [("default", "", True)])


# -- the check that a database is its organisation's ---------------------------------------------------


def _swap_sqlite(root: Path, a: str, b: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        left, right, spare = (root / f"compliance-{a}.db{suffix}", root / f"compliance-{b}.db{suffix}",
                              root / f"spare.db{suffix}")
        if left.exists() or right.exists():
            shutil.move(left, spare)
            shutil.move(right, left)
            shutil.move(spare, right)


def _swap_schemas(url: str, a: str, b: str) -> None:
    engine = db.create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"ALTER SCHEMA org_{a} RENAME TO org_swap"))
        connection.execute(text(f"ALTER SCHEMA org_{b} RENAME TO org_{a}"))
        connection.execute(text(f"ALTER SCHEMA org_swap RENAME TO org_{b}"))
    engine.dispose()


def zeist_and_bilt_swapped(project: Project) -> None:
    """Three organisations, the databases of zeist and bilt swapped (files, or schemas renamed)."""
    two_orgs(project)
    ok(project.run("org", "add", "bilt", "--name", "Gemeente De Bilt"))
    if project.db_url.startswith("sqlite"):
        _swap_sqlite(project.root, "zeist", "bilt")
    else:
        _swap_schemas(project.db_url, "zeist", "bilt")


def test_swapped_databases_are_refused(project: Project) -> None:
    zeist_and_bilt_swapped(project)
    result = project.run("findings", "--org", "zeist")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: the database of organisation 'zeist' ({location(project, 'zeist')}) holds organisation 'bilt': "
        "if a rename was interrupted, run `compliance org rename zeist bilt` or the other way round again; "
        "otherwise restore that database from the backup\n")


def test_an_organisation_pointing_at_the_first_database_is_refused(project: Project) -> None:
    from compliance.orgs import org_url

    two_orgs(project)
    # the register row of zeist edited to name the first organisation's place
    engine = db.create_engine(project.db_url)
    first = "compliance.db" if project.db_url.startswith("sqlite") else "public"
    with engine.begin() as connection:
        connection.execute(text("UPDATE organisations SET location = :where WHERE code = 'zeist'"), {"where": first})
    engine.dispose()
    assert db.current_revision(org_url(project.db_url, first)) == SCHEMA_HEAD
    result = project.run("exceptions", "list", "--org", "zeist")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: the database of organisation 'zeist' ({first}) holds organisation 'utrecht': if a rename was "
        "interrupted, run `compliance org rename zeist utrecht` or the other way round again; otherwise restore "
        "that database from the backup\n")


def test_the_first_organisation_is_unaffected_by_a_swapped_later_one(project: Project) -> None:
    zeist_and_bilt_swapped(project)
    assert ok(project.run("findings", "--org", "utrecht", "--format", "json")).stdout == "[]\n"


def test_db_upgrade_migrates_every_organisations_database(project: Project) -> None:
    from alembic import command

    from compliance.orgs import org_url

    two_orgs(project)
    zeist = org_url(project.db_url, location(project, "zeist"))
    command.downgrade(db.alembic_config(zeist), "0014")
    assert (db.current_revision(project.db_url), db.current_revision(zeist)) == (SCHEMA_HEAD, "0014")
    result = ok(project.run("db", "upgrade"))
    assert result.stdout == (f"database {db.safe_url(project.db_url)} is already at schema {SCHEMA_HEAD}\n"
                             f"database of organisation zeist migrated from 0014 to schema {SCHEMA_HEAD}\n")
    assert db.current_revision(zeist) == SCHEMA_HEAD


def test_db_upgrade_says_each_organisation_is_up_to_date(project: Project) -> None:
    two_orgs(project)
    ok(project.run("org", "add", "bilt", "--name", "Gemeente De Bilt"))
    result = ok(project.run("db", "upgrade"))
    assert result.stdout == (f"database {db.safe_url(project.db_url)} is already at schema {SCHEMA_HEAD}\n"
                             f"database of organisation bilt is already at schema {SCHEMA_HEAD}\n"
                             f"database of organisation zeist is already at schema {SCHEMA_HEAD}\n")


def test_controls_validate_needs_no_database_with_organisations_configured(
        tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch, probe_plugin: type) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "controls").mkdir()
    (tmp_path / "controls" / "web.yaml").write_text(CONTROLS)
    (tmp_path / "zeist").mkdir()
    (tmp_path / "zeist" / "own.yaml").write_text(CONTROLS.replace("WEB-01", "ZEIST-01"))
    (tmp_path / "compliance.yaml").write_text("controls:\n  paths: [controls]\norganisations:\n  zeist:\n"
                                              "    controls: {paths: [zeist]}\n")

    shared = run_cli("controls", "validate")
    zeist = run_cli("--org", "zeist", "controls", "validate")

    assert (shared.exit_code, zeist.exit_code) == (0, 0)
    assert (shared.stdout, zeist.stdout) == ("1 control in 1 file: valid\n", "2 controls in 2 files: valid\n")
    assert not (tmp_path / "compliance.db").exists()


def test_the_report_names_the_organisation_it_is_for(project: Project) -> None:
    two_orgs(project)
    for code, name in (("zeist", "Gemeente Zeist"), ("utrecht", "Gemeente Utrecht")):
        document = json.loads(ok(project.run("report", "--format", "json", "--org", code)).stdout)
        assert (document["report"], document["organisation"]) == ("risk-overview", name)


@pytest.mark.parametrize("own", ["", "    digest:\n      to: [ciso@zeist.example]\n"
                                        "    alerts:\n      email: [fg@zeist.example]\n"])
def test_the_registered_name_names_the_organisation_whatever_its_own_section_holds(tmp_path: Path, own: str) -> None:
    content = "incidents:\n  organisation: Gemeente Utrecht\norganisations:\n  zeist:\n" + (own or "    targets: {}\n")
    settings = settings_of(tmp_path, content).for_org("zeist", name="Gemeente Zeist", first=False)
    assert settings.incidents.organisation == "Gemeente Zeist"
