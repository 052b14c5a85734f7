"""`controls list` from the cache (compliance.catalog.listing): the same output, never stale, never a mistake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from compliance.catalog import load_catalog
from compliance.catalog.listing import listed
from compliance.errors import ValidationFailed

ROOT = Path(__file__).resolve().parents[2]

CONTROL = """\
- id: OWN-BACKUP
  title: Backups are recent
  theme: technological
  severity: high
  tags: [backup]
  checks:
    - plugin: file_age
      targets: backups
- id: OWN-POLICY
  title: A backup policy is adopted
  theme: organizational
  severity: low
  references: {bio2: "8.13.01"}
  checks:
    - plugin: evidence
      params: {requirement: Backup policy, max_age: 1y}
"""

BROKEN = """\
- id: OWN-BACKUP
  title: Backups are recent
  theme: technological
  severity: high
  checks:
    - plugin: file_age
      params: {max_agee: 26h}
"""


def write_config(root: Path, targets: str = "  backups: []\n") -> Path:
    config = root / "compliance.yaml"
    config.write_text(f"database:\n  url: sqlite:///compliance.db\ncontrols:\n  paths: [controls]\n"
                      f"  bundled: [bio2]\ntargets:\n{targets}", encoding="utf-8")
    return config


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COMPLIANCE_DATABASE_URL", raising=False)
    monkeypatch.delenv("COMPLIANCE_CONFIG", raising=False)
    (tmp_path / "controls").mkdir()
    (tmp_path / "controls" / "own.yaml").write_text(CONTROL, encoding="utf-8")
    write_config(tmp_path)
    return tmp_path


def cached(root: Path) -> dict[str, str]:
    return {"COMPLIANCE_CACHE_DIR": str(root / "cache")}


def entries(root: Path) -> list[Path]:
    return sorted((root / "cache").glob("controls-*.json"))


def run(run_cli: Any, root: Path, env: dict[str, str], *args: str) -> Any:
    return run_cli("--config", str(root / "compliance.yaml"), "controls", "list", *args, env=env)


@pytest.mark.parametrize("args", [(), ("--format", "json"), ("--tag", "backup"),
                                  ("--framework", "bio2", "--format", "json")])
def test_the_list_is_the_same_with_and_without_the_cache(run_cli: Any, root: Path, args: tuple[str, ...]) -> None:
    without = run(run_cli, root, {"COMPLIANCE_CACHE_DIR": "off"}, *args)
    first = run(run_cli, root, cached(root), *args)
    assert len(entries(root)) == 1
    again = run(run_cli, root, cached(root), *args)
    assert without.exit_code == first.exit_code == again.exit_code == 0
    assert without.stdout == first.stdout == again.stdout
    assert "OWN-" in again.stdout


def test_the_json_holds_each_control_as_validated(run_cli: Any, root: Path) -> None:
    run(run_cli, root, cached(root), "--format", "json")
    shown = json.loads(run(run_cli, root, cached(root), "--format", "json").stdout)
    catalog = load_catalog([Path("controls")], {"backups": []}, bundled=["bio2"])
    assert [c["id"] for c in shown] == catalog.ids()
    for row, control in zip(shown, catalog, strict=True):
        assert {k: row[k] for k in control.model_dump(mode="json")} == control.model_dump(mode="json")
        assert (row["line"], row["frameworks"]) == (control.line, control.frameworks)
    own = next(c for c in shown if c["id"] == "OWN-BACKUP")
    assert (own["source"], own["kind"], own["unconfigured_groups"]) == ("controls/own.yaml", "unconfigured",
                                                                        ["backups"])


def test_a_hit_imports_neither_pydantic_nor_yaml_nor_a_plugin(root: Path) -> None:
    code = ("import sys; from pathlib import Path; from compliance.catalog.listing import listed; "
            "shown = listed([Path('controls')], {'backups': []}, bundled=['bio2']); "
            "print(len(shown), sorted(m for m in ('pydantic', 'yaml', 'compliance.checks.file_age', "
            "'compliance.plugins') if m in sys.modules))")
    environment = {**os.environ, **cached(root)}
    first = subprocess.run([sys.executable, "-c", code], cwd=root, env=environment, capture_output=True, text=True,
                           check=True)
    second = subprocess.run([sys.executable, "-c", code], cwd=root, env=environment, capture_output=True, text=True,
                            check=True)
    count = len(load_catalog([Path("controls")], {"backups": []}, bundled=["bio2"]))
    assert first.stdout == f"{count} ['compliance.checks.file_age', 'compliance.plugins', 'pydantic', 'yaml']\n"
    assert second.stdout == f"{count} []\n"


def test_a_changed_control_file_is_seen_at_once(run_cli: Any, root: Path) -> None:
    run(run_cli, root, cached(root))
    own = root / "controls" / "own.yaml"
    written = own.stat()
    own.write_text(CONTROL.replace("Backups are recent", "Backups are fresh!"), encoding="utf-8")
    os.utime(own, ns=(written.st_atime_ns, written.st_mtime_ns))  # the same size and time: the bytes tell
    assert "Backups are fresh!" in run(run_cli, root, cached(root)).stdout


def test_a_new_control_file_is_seen_at_once(run_cli: Any, root: Path) -> None:
    run(run_cli, root, cached(root))
    (root / "controls" / "more.yaml").write_text(CONTROL.replace("OWN-", "MORE-"), encoding="utf-8")
    assert "MORE-POLICY" in run(run_cli, root, cached(root)).stdout


def test_changed_target_groups_are_seen_at_once(run_cli: Any, root: Path) -> None:
    before = json.loads(run(run_cli, root, cached(root), "--format", "json").stdout)
    write_config(root, "  backups: [{path: /srv/backup/*.gz, max_age: 26h}]\n")
    after = json.loads(run(run_cli, root, cached(root), "--format", "json").stdout)
    kind = {c["id"]: c["kind"] for c in before}, {c["id"]: c["kind"] for c in after}
    assert (kind[0]["OWN-BACKUP"], kind[1]["OWN-BACKUP"]) == ("unconfigured", "automated")


def test_a_broken_control_file_is_reported_at_its_line_on_every_run(run_cli: Any, root: Path) -> None:
    assert run(run_cli, root, cached(root)).exit_code == 0  # a valid catalog stored
    (root / "controls" / "own.yaml").write_text(BROKEN, encoding="utf-8")
    for _ in range(2):
        broken = run(run_cli, root, cached(root))
        assert broken.exit_code == 2
        assert "controls/own.yaml:7:16: unknown parameter 'max_agee' for plugin 'file_age'" in broken.output


def test_a_catalog_with_a_problem_is_never_stored(root: Path) -> None:
    (root / "controls" / "own.yaml").write_text(BROKEN, encoding="utf-8")
    for _ in range(2):
        with pytest.raises(ValidationFailed) as failed:
            listed([Path("controls")], {"backups": []}, bundled=["bio2"], environ=cached(root))
        assert {(p.path, p.line) for p in failed.value.problems} == {("controls/own.yaml", 7)}
    assert entries(root) == []


def test_an_entry_is_used_only_while_the_plugins_it_was_validated_with_are_unchanged(root: Path) -> None:
    listed([Path("controls")], {"backups": []}, bundled=["bio2"], environ=cached(root))
    [entry] = entries(root)
    stored = json.loads(entry.read_text(encoding="utf-8"))
    depends = dict(stored["data"]["depends"])
    plugin = str((ROOT / "compliance" / "checks" / "file_age.py").resolve())
    assert plugin in depends
    for control in stored["data"]["controls"]:
        control["definition"]["title"] = "from the cache"  # to see whether the entry was used
    entry.write_text(json.dumps(stored), encoding="utf-8")
    assert {c.title for c in listed([Path("controls")], {"backups": []}, bundled=["bio2"],
                                    environ=cached(root))} == {"from the cache"}
    stored["data"]["depends"] = [[p, "0:0" if p == plugin else stamp] for p, stamp in depends.items()]
    entry.write_text(json.dumps(stored), encoding="utf-8")
    assert "from the cache" not in {c.title for c in listed([Path("controls")], {"backups": []}, bundled=["bio2"],
                                                            environ=cached(root))}


def test_nothing_is_stored_while_a_plugin_is_registered_in_the_process(root: Path, probe_plugin: type) -> None:
    listed([Path("controls")], {"backups": []}, bundled=["bio2"], environ=cached(root))
    assert entries(root) == []


PLUGIN = '''\
"""A plugin installed from another distribution (for the tests of the catalog cache)."""

from compliance.api import Check, Params, Result


class ColourParams(Params):
    colour: str = "blue"


class Colour(Check):
    """Always passes."""

    name = "colour"
    Params = ColourParams

    def run(self, params, ctx):
        yield Result.passed("colour", "blue enough")
'''

OWN_PLUGIN_CONTROL = """\
id: OWN-COLOUR
title: The colour is right
theme: technological
severity: low
checks:
  - plugin: colour
    params: {colour: red}
"""


def install(site: Path, version: str, module: str = "colour_plugin") -> None:
    """Install the `colour` plugin's distribution into SITE (an entry on PYTHONPATH), as pip would."""
    for old in site.glob("colour_plugin-*.dist-info"):
        for file in old.iterdir():
            file.unlink()
        old.rmdir()
    info = site / f"colour_plugin-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: colour-plugin\nVersion: {version}\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[compliance.checks]\ncolour = {module}:Colour\n", encoding="utf-8")


def test_an_installed_or_changed_plugin_is_seen_at_once(root: Path) -> None:
    site = root / "site"
    site.mkdir()
    (root / "controls" / "colour.yaml").write_text(OWN_PLUGIN_CONTROL, encoding="utf-8")
    environment = {**os.environ, **cached(root), "PYTHONPATH": str(site)}
    environment.pop("COMPLIANCE_DATABASE_URL", None)

    def listing() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "compliance", "--config", str(root / "compliance.yaml"),
                               "controls", "list", "--format", "json"], cwd=root, env=environment,
                              capture_output=True, text=True)

    missing = listing()
    assert missing.returncode == 2
    assert "controls/colour.yaml:6:13: unknown check plugin 'colour'" in missing.stderr
    (site / "colour_plugin.py").write_text(PLUGIN, encoding="utf-8")
    install(site, "1.0")
    for _ in range(2):  # validated, then from the cache
        shown = listing()
        assert shown.returncode == 0, shown.stderr
        assert "OWN-COLOUR" in {c["id"] for c in json.loads(shown.stdout)}
    # the plugin's code changes in place (an editable install): its parameter is now `color`
    (site / "colour_plugin.py").write_text(PLUGIN.replace("colour: str", "color: str"), encoding="utf-8")
    edited = listing()
    assert edited.returncode == 2
    assert "controls/colour.yaml:7:14: unknown parameter 'colour' for plugin 'colour'" in edited.stderr
    (site / "colour_plugin.py").write_text(PLUGIN, encoding="utf-8")
    assert listing().returncode == 0
    # version 2 is installed: its entry point names another module, whose parameter is `shade`
    (site / "colour_plugin2.py").write_text(PLUGIN.replace("colour: str", "shade: str"), encoding="utf-8")
    install(site, "2.0", module="colour_plugin2")
    upgraded = listing()
    assert upgraded.returncode == 2
    assert "controls/colour.yaml:7:14: unknown parameter 'colour' for plugin 'colour'" in upgraded.stderr


# --- `load_catalog` from the cache: the same `Control` objects as a validation gives ---------------------------

ALL = ["bio2", "avg", "forum-standaardisatie"]

#: A target in every group the shipped catalog uses (the examples of config/compliance.example.yaml and
#: docs/catalog.md).
EVERY_GROUP = """\
  websites: [https://www.gemeente.nl, https://loket.gemeente.nl]
  mail_domains: [{domain: gemeente.nl, dkim_selectors: [selector1, selector2]}]
  domains: [gemeente.nl]
  rpki_domains:
    - {domain: gemeente.nl, roas: /var/lib/rpki-client/json}
    - {domain: https://www.gemeente.nl, roas: http://routinator.gemeente.local:8323/json, services: [web]}
  mail_servers: [{host: mx1.gemeente.nl, port: 25, starttls: smtp}]
  tls_endpoints: [vpn.gemeente.nl, portal.gemeente.nl:8443, {host: mail.gemeente.nl, port: 993}]
  backups: [{path: /srv/backup/db/*.sql.gz, max_age: 26h}]
  log_exports: [{path: /var/log/shipped/*.log, max_age: 1h}]
  sensitive_paths: [{path: /etc/zaaksysteem, max_mode: "0640"}]
  exposed_hosts: [www.gemeente.nl]
  directories:
    - {url: ldaps://dc01.gemeente.local, base_dn: "DC=gemeente,DC=local",
       bind_dn: svc-compliance@gemeente.local, password_env: LDAP_BIND_PASSWORD}
  m365_tenants:
    - {tenant: gemeente.onmicrosoft.com, client_id: 00000000-0000-0000-0000-000000000000,
       client_secret_env: M365_CLIENT_SECRET, mfa_exceptions: [breakglass1@gemeente.onmicrosoft.com]}
  m365_scubagear: [/srv/scubagear/M365BaselineConformance_*/ScubaResults*.json]
  m365_maester: [/srv/maester/test-results/TestResults-*.json]
  ssh_servers: [bastion.gemeente.local, {host: sftp.gemeente.nl, port: 2222}]
  log_sources:
    - {path: /var/log/zaaksysteem/audit-*.jsonl, format: jsonl,
       fields: {action: event.action, object: object.id, result: event.outcome, origin: source.ip,
                actor: user.name, timestamp: "@timestamp"}}
  retained_logs: [{path: /var/log/nginx/access.log*, min_age: 180d}]
  backup_copies: [{primary: /srv/backup/db/*.sql.gz, max_age: 26h, copies: [/mnt/offsite/db]}]
  vulnerability_exports: [/srv/scans/openvas-*.xml]
  management_interfaces: [{host: 10.0.0.1, port: 22}]
  offsite_backups: [{path: /mnt/offsite/db/*.sql.gz, max_age: 26h}]
"""

OVERRIDE = "- {id: BIO-UTILITIES, override: true, enabled: false, title: {en: Utilities, nl: Nutsvoorzieningen}}\n"


def typed(value: Any) -> Any:
    """VALUE with the type of every part, the fields written of a model and the positions of located data: two
    values give the same result only when they are the same all the way down (1 == 1.0 == True does not do)."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return (type(value).__name__, sorted(value.model_fields_set), typed(dict(value.__dict__)))
    where = tuple(getattr(value, name, None) for name in ("path", "pos", "key_pos", "value_pos", "item_pos"))
    if isinstance(value, dict):
        return (type(value).__name__, where, [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value).__name__, where, [typed(v) for v in value])
    return (type(value).__name__, value)


@pytest.fixture
def every_group(root: Path) -> Any:
    """The targets of compliance.yaml with a target in every group (located, as the commands pass them), with
    an override of a shipped control beside the own controls."""
    from compliance.configuration import load_settings

    (root / "compliance.yaml").write_text(
        "database:\n  url: sqlite:///compliance.db\ncontrols:\n  paths: [controls]\n"
        f"  bundled: [{', '.join(ALL)}]\ntargets:\n{EVERY_GROUP}", encoding="utf-8")
    (root / "controls" / "mine.yaml").write_text(OVERRIDE, encoding="utf-8")
    return load_settings(str(root / "compliance.yaml")).targets


def test_a_hit_gives_the_bundled_catalog_as_validated_field_by_field(root: Path, every_group: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from compliance.catalog import LANGUAGES, TRANSLATABLE, Control, model
    from compliance.catalog.listing import cached_catalog

    fresh = model.validate_catalog([Path("controls")], every_group, bundled=ALL)
    used = {spec.targets for control in fresh for spec in control.checks if isinstance(spec.targets, str)}
    # every group the catalog uses has targets
    assert used and all(every_group.get(group) for group in used), used - set(every_group)
    assert {c.bundled for c in fresh} == {True, False} and len(fresh) > 30
    stored = cached_catalog([Path("controls")], every_group, bundled=ALL, environ=cached(root))
    assert len(entries(root)) == 1

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("validated again on a hit")

    monkeypatch.setattr(model, "validate_catalog", refused)
    hit = cached_catalog([Path("controls")], every_group, bundled=ALL, environ=cached(root))
    assert hit.ids() == stored.ids() == fresh.ids()
    for new, old in zip(hit, fresh, strict=True):
        assert type(new) is Control
        for name in Control.model_fields:
            assert typed(getattr(new, name)) == typed(getattr(old, name)), (old.id, name)
        assert typed(new) == typed(old)
        assert new.model_fields_set == old.model_fields_set
        assert [s.model_fields_set for s in new.checks] == [s.model_fields_set for s in old.checks]
        assert (new.source, new.line, new.bundled, new.override_source, new.frameworks) == (
            old.source, old.line, old.bundled, old.override_source, old.frameworks), old.id
        assert [new.text(f, lang) for f in (*TRANSLATABLE, "requirement") for lang in LANGUAGES] == [
            old.text(f, lang) for f in (*TRANSLATABLE, "requirement") for lang in LANGUAGES]
        assert new.model_dump(mode="json") == old.model_dump(mode="json")
        assert new.content_hash() == old.content_hash()
        assert new == old
    utilities = hit.get("BIO-UTILITIES")
    assert utilities is not None and not utilities.enabled
    assert (utilities.override_source, utilities.text("title", "nl")) == (str(Path("controls") / "mine.yaml"),
                                                                          "Nutsvoorzieningen")
    # the kept hash belongs to the definition: a copy with another field computes its own
    copied = utilities.model_copy(update={"enabled": True})
    assert copied.content_hash() != utilities.content_hash()
    assert copied.content_hash() == Control.model_validate(copied.model_dump()).content_hash()


def test_a_changed_or_broken_control_file_is_seen_by_load_catalog_at_once(root: Path) -> None:
    from compliance.catalog.listing import cached_catalog

    def load() -> Any:
        return cached_catalog([Path("controls")], {"backups": []}, bundled=["bio2"], environ=cached(root))

    assert load().get("OWN-BACKUP").title == "Backups are recent"
    assert load().get("OWN-BACKUP").title == "Backups are recent"
    own = root / "controls" / "own.yaml"
    written = own.stat()
    own.write_text(CONTROL.replace("Backups are recent", "Backups are fresh!"), encoding="utf-8")
    os.utime(own, ns=(written.st_atime_ns, written.st_mtime_ns))  # the same size and time: the bytes tell
    assert load().get("OWN-BACKUP").title == "Backups are fresh!"
    own.write_text(BROKEN, encoding="utf-8")
    for _ in range(2):
        with pytest.raises(ValidationFailed) as failed:
            load()
        assert {(p.path, p.line) for p in failed.value.problems} == {("controls/own.yaml", 7)}
        assert ("controls/own.yaml", 7, 16, "unknown parameter 'max_agee' for plugin 'file_age'") in {
            (p.path, p.line, p.col, p.message) for p in failed.value.problems}


def test_load_catalog_on_a_hit_imports_neither_yaml_nor_a_plugin(root: Path) -> None:
    code = ("import sys; from pathlib import Path; from compliance.catalog import load_catalog; "
            "catalog = load_catalog([Path('controls')], {'backups': []}, bundled=['bio2']); "
            "print(len(catalog), catalog.get('OWN-BACKUP').source, "
            "sorted(m for m in ('yaml', 'compliance.checks.file_age', 'compliance.plugins') if m in sys.modules))")
    environment = {**os.environ, **cached(root)}
    runs = [subprocess.run([sys.executable, "-c", code], cwd=root, env=environment, capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    count = len(load_catalog([Path("controls")], {"backups": []}, bundled=["bio2"]))
    assert runs == [f"{count} controls/own.yaml ['compliance.checks.file_age', 'compliance.plugins', 'yaml']\n",
                    f"{count} controls/own.yaml []\n"]


def test_controls_that_json_cannot_give_back_exactly_are_not_stored(root: Path) -> None:
    import datetime

    from compliance.catalog import Catalog
    from compliance.catalog.listing import _encoded, _faithful
    from compliance.catalog.model import validate_catalog

    catalog = validate_catalog([Path("controls")], {"backups": []})
    assert _faithful(catalog, _encoded(catalog))
    for params in ({"max_age": datetime.date(2026, 1, 1)}, {"max_age": 1}, {"max_age": ("1d",)}):
        first = catalog.controls[0]
        spec = first.checks[0].model_copy(update={"params": params})
        changed = Catalog((first.model_copy(update={"checks": [spec]}), *catalog.controls[1:]))
        if params == {"max_age": 1}:  # an int stays an int
            assert _faithful(changed, _encoded(changed))
        else:
            assert not _faithful(changed, _encoded(changed)), params
