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
