"""Loading controls from YAML: the model, and every kind of mistake reported with file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance.catalog import Severity, load_catalog, plan
from compliance.errors import ValidationFailed

GOOD = """\
- id: BACKUP-01
  title: Nightly backup is recent
  theme: technological
  references: {bio2: "8.13", iso27002: "8.13"}
  severity: high
  owner: IT
  schedule: "0 6 * * *"
  tags: [backup]
  checks:
    - plugin: file_age
      params: {path: /var/backups/*.gz, max_age: 26h}
- id: PERMS-01
  title: Secrets are private
  theme: technological
  severity: critical
  combine: any
  checks:
    - plugin: file_permissions
      params: {max_mode: "0600"}
      targets: [/etc/a, {path: /etc/b, max_mode: "0640"}]
"""


def problems_of(tmp_path: Path, text: str, name: str = "c.yaml", **kwargs: object) -> list[str]:
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(ValidationFailed) as info:
        load_catalog([tmp_path], **kwargs)  # type: ignore[arg-type]
    return [str(p).replace(str(tmp_path) + "/", "") for p in info.value.problems]


def test_loads_a_list_of_controls_with_their_source(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(GOOD)
    catalog = load_catalog([tmp_path])
    assert catalog.ids() == ["BACKUP-01", "PERMS-01"]
    backup = catalog.get("BACKUP-01")
    assert backup is not None
    assert backup.severity is Severity.HIGH and backup.references == {"bio2": "8.13", "iso27002": "8.13"}
    assert backup.source == str(tmp_path / "c.yaml") and backup.line == 1
    assert catalog.get("PERMS-01").line == 12  # type: ignore[union-attr]


def test_a_file_may_hold_a_single_control(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(
        "id: X\ntitle: t\ntheme: people\nseverity: low\nchecks: [{plugin: tcp_port, params: {host: h, port: 1}}]\n")
    assert load_catalog([tmp_path / "one.yaml"]).ids() == ["X"]


def test_targets_expand_into_one_run_each_with_mapping_targets_overriding_params(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(GOOD)
    perms = load_catalog([tmp_path]).get("PERMS-01")
    runs = plan(perms, {}, 30.0)  # type: ignore[arg-type]
    assert [r.params for r in runs] == [{"max_mode": "0600", "path": "/etc/a"}, {"max_mode": "0640", "path": "/etc/b"}]
    assert all(r.timeout == 30.0 for r in runs)


def test_named_target_groups_come_from_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "id: NET\ntitle: t\ntheme: technological\nseverity: low\ntimeout: 5s\n"
        "checks: [{plugin: tcp_port, params: {port: 3389, expect: closed}, targets: servers}]\n")
    control = load_catalog([tmp_path], {"servers": ["a.local", "b.local"]}).get("NET")
    assert [(r.params["host"], r.timeout) for r in plan(control, {"servers": ["a.local", "b.local"]}, 30)] == [  # type: ignore[arg-type]
        ("a.local", 5.0), ("b.local", 5.0)]


def test_content_hash_changes_with_the_definition(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(GOOD)
    first = load_catalog([tmp_path]).get("BACKUP-01").content_hash()  # type: ignore[union-attr]
    (tmp_path / "c.yaml").write_text(GOOD.replace("26h", "27h"))
    assert load_catalog([tmp_path]).get("BACKUP-01").content_hash() != first  # type: ignore[union-attr]


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "- id: A\n  title: [unclosed\n  theme: people\n") == [
        "c.yaml:3:8: YAML syntax error: expected ',' or ']', but got ':' "
        "(check the indentation and quoting around this place)"]


def test_tabs_get_their_own_hint(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, "id: A\n\ttitle: x\n")
    assert problem.startswith("c.yaml:2:1: YAML syntax error") and "use spaces" in problem


def test_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    text = GOOD.replace("  severity: high\n", "  severity: high\n  severity: low\n", 1)
    assert problems_of(tmp_path, text) == [
        "c.yaml:6:3: duplicate key 'severity' (it is already set on line 5; keep one of them)"]


def test_unknown_and_missing_keys_and_bad_values_are_all_reported_at_once(tmp_path: Path) -> None:
    text = """\
- id: A
  title: first
  theme: technologcal
  severity: hgh
  colour: red
  checks:
    - plugin: file_age
      parms: {}
- id: B
  theme: people
  severity: low
  checks: []
"""
    assert problems_of(tmp_path, text) == [
        "c.yaml:3:10: theme 'technologcal': Input should be 'organizational', 'people', 'physical' or "
        "'technological' (did you mean 'technological'?)",
        "c.yaml:4:13: severity 'hgh': Input should be 'low', 'medium', 'high' or 'critical' (did you mean 'high'?)",
        "c.yaml:5:3: unknown key 'colour' (did you mean 'tags'?)".replace("did you mean 'tags'?",
                                                                          _allowed_hint("colour")),
        "c.yaml:8:7: unknown key 'parms' in checks.0 (did you mean 'params'?)",
        "c.yaml:9:3: missing required key 'title' (add `title:` with a one-line title)",
        "c.yaml:12:11: checks: a control needs at least one check "
        "(a list of checks, e.g. `- plugin: file_age`)",
    ]


def _allowed_hint(key: str) -> str:
    from compliance.catalog import Control
    from compliance.errors import did_you_mean

    return did_you_mean(key, list(Control.model_fields)) or "allowed keys: " + ", ".join(Control.model_fields)


def test_unquoted_reference_numbers_get_a_quoting_hint(tmp_path: Path) -> None:
    text = GOOD.replace('bio2: "8.13"', "bio2: 8.10")
    assert problems_of(tmp_path, text) == [
        "c.yaml:4:22: references.bio2 '8.1': Input should be a valid string "
        '(quote it, e.g. "8.10": YAML reads an unquoted 8.10 as the number 8.1)']


def test_unknown_plugin_suggests_a_close_name(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, GOOD.replace("plugin: file_age", "plugin: file_ages"))
    assert problem == ("c.yaml:10:15: unknown check plugin 'file_ages'; did you mean 'file_age'? "
                       "(run `compliance checks list` to see the installed plugins)")


def test_plugin_parameters_are_validated_against_the_plugin_schema(tmp_path: Path) -> None:
    text = GOOD.replace("max_age: 26h", "max_age: soon, maxage: 1").replace('max_mode: "0640"', "max_mode: 640")
    assert problems_of(tmp_path, text) == [
        "c.yaml:11:50: parameter 'max_age' 'soon' of plugin 'file_age': 'soon' is not a duration; write a "
        "number and a unit, e.g. '26h', '7d' or '1h30m'",
        "c.yaml:11:56: unknown parameter 'maxage' for plugin 'file_age' (did you mean 'max_age'?)",
        "c.yaml:20:50: parameter 'max_mode' '640' of plugin 'file_permissions': write the mode as a quoted "
        'octal string, e.g. "0640"',
    ]


def test_missing_plugin_parameter_names_the_parameter(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, GOOD.replace("path: /var/backups/*.gz, ", ""))
    assert problem == ("c.yaml:11:15: plugin 'file_age' needs parameter 'path' "
                       "(add `path:` under params or list targets (they fill `path`))")


def test_wrong_parameter_type(tmp_path: Path) -> None:
    text = ("id: N\ntitle: t\ntheme: people\nseverity: low\n"
            "checks:\n- plugin: tcp_port\n  params: {host: h, port: ssh}\n")
    assert problems_of(tmp_path, text) == [
        "c.yaml:7:27: parameter 'port' 'ssh' of plugin 'tcp_port': Input should be a valid integer, "
        "unable to parse string as an integer"]


def test_duplicate_ids_across_files_point_at_the_first(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    problems = problems_of(tmp_path, GOOD.split("- id: PERMS-01")[0], name="b.yaml")
    assert problems == ["b.yaml:1:7: duplicate control id 'BACKUP-01' (already defined at "
                        f"{tmp_path}/a.yaml:1; give one of them another id)".replace(str(tmp_path) + "/", "")]


def test_bad_cron_and_unknown_target_group(tmp_path: Path) -> None:
    text = GOOD.replace('"0 6 * * *"', '"0 25 * * *"').replace(
        "targets: [/etc/a, {path: /etc/b, max_mode: \"0640\"}]", "targets: webstes")
    problems = problems_of(tmp_path, text, target_groups={"websites": ["https://x"]})
    assert problems[0].startswith("c.yaml:7:13: schedule '0 25 * * *' is not a valid cron expression: ")
    assert problems[0].endswith("(use five fields: minute hour day-of-month month day-of-week, e.g. '0 6 * * *')")
    assert problems[1] == "c.yaml:20:16: unknown target group 'webstes' (did you mean 'websites'?)"


def test_missing_path_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as info:
        load_catalog([tmp_path / "nope"])
    assert "nope:0:0: no such file or folder" in str(info.value)


def test_not_a_control_at_all(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "just a string\n") == [
        "c.yaml:1:1: a control file holds a control (a mapping) or a list of them "
        "(start the file with `id: ...` or `- id: ...`)"]


def test_python_object_tags_are_not_constructed(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, "id: !!python/object/apply:os.system ['echo hacked']\n")
    assert "could not determine a constructor" in problem


PARTLY_BAD = """\
- id: A
  title: type and meaning problems in one control
  theme: people
  severity: loww
  schedule: "0 25 * * *"
  checks:
    - plugin: file_agee
    - plugin: file_age
      parms: {path: /x}
- id: D
  title: a type problem hides neither the group nor the parameters
  theme: people
  severity: low
  timeout: 5 fortnights
  checks:
    - plugin: file_age
      params: {max_age: soon}
      targets: webstes
"""


def test_meaning_problems_of_a_control_with_type_problems_are_reported_too(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, PARTLY_BAD, target_groups={"websites": []})
    assert [": ".join(p.split(": ")[:2]) for p in problems] == [
        "c.yaml:4:13: severity 'loww'",
        "c.yaml:5:13: schedule '0 25 * * *' is not a valid cron expression",
        "c.yaml:7:15: unknown check plugin 'file_agee'; did you mean 'file_age'? (run `compliance checks list` to "
        "see the installed plugins)",
        "c.yaml:9:7: unknown key 'parms' in checks.1 (did you mean 'params'?)",
        "c.yaml:14:12: timeout '5 fortnights'",
        "c.yaml:17:25: parameter 'max_age' 'soon' of plugin 'file_age'",
        "c.yaml:18:16: unknown target group 'webstes' (did you mean 'websites'?)",
    ]


def test_parameters_of_a_check_on_an_empty_group_are_validated(tmp_path: Path) -> None:
    text = ("id: N\ntitle: t\ntheme: people\nseverity: low\n"
            "checks:\n- plugin: tcp_port\n  params: {port: ssh}\n  targets: servers\n")
    assert problems_of(tmp_path, text, target_groups={"servers": []}) == [
        "c.yaml:7:18: parameter 'port' 'ssh' of plugin 'tcp_port': Input should be a valid integer, "
        "unable to parse string as an integer"]


def test_a_bad_target_of_a_group_is_reported_in_the_config_once_with_every_control_using_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from compliance.yamlfile import load_yaml

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "compliance.yaml"
    config.write_text("targets:\n  servers:\n    - a.local\n    - {host: b.local, port: ssh}\n    - {hots: c}\n")
    groups, _ = load_yaml(config)
    (tmp_path / "controls").mkdir()
    (tmp_path / "controls" / "c.yaml").write_text("".join(
        f"- id: {cid}\n  title: t\n  theme: people\n  severity: low\n"
        "  checks: [{plugin: tcp_port, params: {port: 22}, targets: servers}]\n" for cid in ("X", "Y")))
    with pytest.raises(ValidationFailed) as info:
        load_catalog([tmp_path / "controls"], groups["targets"])
    assert [str(p) for p in info.value.problems] == [
        "compliance.yaml:4:29: target in group 'servers', used by controls 'X', 'Y': parameter 'port' 'ssh' of "
        "plugin 'tcp_port': Input should be a valid integer, unable to parse string as an integer",
        "compliance.yaml:5:7: target in group 'servers', used by controls 'X', 'Y': plugin 'tcp_port' needs "
        "parameter 'host' (add `host:` to this target)",
        "compliance.yaml:5:8: target in group 'servers', used by controls 'X', 'Y': unknown parameter 'hots' for "
        "plugin 'tcp_port' (did you mean 'host'?)",
    ]


BILINGUAL = """\
- id: POLICY-01
  title: {en: Policy adopted, nl: Beleid vastgesteld}
  description:
    en: The board adopted it.
    nl: Het bestuur heeft het vastgesteld.
  owner: {en: Municipal secretary, nl: Gemeentesecretaris}
  theme: organizational
  severity: high
  checks:
    - plugin: evidence
      params:
        requirement: {en: Adopted policy, nl: Vastgesteld beleid}
        max_age: 1y
"""


def test_a_text_per_language_keeps_english_as_the_plain_value(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(BILINGUAL, encoding="utf-8")
    control = load_catalog([tmp_path]).controls[0]
    assert (control.title, control.description, control.owner) == (
        "Policy adopted", "The board adopted it.", "Municipal secretary")
    assert control.translations == {
        "nl": {"title": "Beleid vastgesteld", "description": "Het bestuur heeft het vastgesteld.",
               "owner": "Gemeentesecretaris", "requirement": "Vastgesteld beleid"},
        "en": {"requirement": "Adopted policy"},
    }
    assert [control.text(f, "nl") for f in ("title", "owner", "requirement")] == [
        "Beleid vastgesteld", "Gemeentesecretaris", "Vastgesteld beleid"]
    assert [control.text(f, "en") for f in ("title", "owner", "requirement")] == [
        "Policy adopted", "Municipal secretary", "Adopted policy"]


def test_a_one_language_control_falls_back_to_its_only_text(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "id: OWN-1\ntitle: Eigen maatregel\ntheme: people\nseverity: low\nowner: Team Infra\n"
        "checks: [{plugin: evidence, params: {requirement: Verslag}}]\n", encoding="utf-8")
    control = load_catalog([tmp_path]).controls[0]
    assert control.translations == {}
    assert [control.text(f, "nl") for f in ("title", "description", "owner", "requirement")] == [
        "Eigen maatregel", "", "Team Infra", "Verslag"]
    with pytest.raises(ValueError, match="unknown text field 'severity'"):
        control.text("severity", "nl")


def test_the_content_hash_changes_when_only_the_dutch_text_changes(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(BILINGUAL, encoding="utf-8")
    before = load_catalog([tmp_path]).controls[0].content_hash()
    (tmp_path / "c.yaml").write_text(BILINGUAL.replace("Beleid vastgesteld", "Beleid door college vastgesteld"),
                                     encoding="utf-8")
    assert load_catalog([tmp_path]).controls[0].content_hash() != before


@pytest.mark.parametrize(("title", "message"), [
    ("{nl: Beleid}", "c.yaml:2:10: title: a text per language needs at least the English one, under `en:`"),
    ("{en: Policy, de: Politik}", "c.yaml:2:10: title: unknown language 'de'; write the texts under en and nl"),
    ("{en: Policy, nl: ''}", "c.yaml:2:10: title: each language's text must be a non-empty string"),
])
def test_a_bad_text_per_language_is_reported_at_its_key(tmp_path: Path, title: str, message: str) -> None:
    problems = problems_of(tmp_path, BILINGUAL.replace("{en: Policy adopted, nl: Beleid vastgesteld}", title))
    assert [p for p in problems if p.startswith("c.yaml:2:")] == [message]


def test_a_requirement_without_english_is_a_parameter_problem(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, BILINGUAL.replace("{en: Adopted policy, nl: Vastgesteld beleid}",
                                                       "{nl: Vastgesteld beleid}"))
    assert len(problems) == 1
    assert "parameter 'requirement' of plugin 'evidence': a requirement per language needs at least the English " \
           "one, under `en:`" in problems[0]
