"""The configuration from the cache (compliance.configuration): the same as validated, never stale, no secrets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from compliance import cache
from compliance.configuration import load_settings
from compliance.errors import ValidationFailed
from compliance.located import LocDict, position_of
from compliance.settings import Section, Settings
from compliance.settings import load_settings as validate
from compliance.settings_view import Secret, View

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
database:
  url: sqlite:///data/compliance.db
controls:
  paths: [controls, extra]
  bundled: [bio2]
schedule:
  default: "0 3 * * *"
  stop_grace: 45s
smtp:
  host: mail.example.org
  tls: true
slack:
  channel: "#security"
targets:
  websites: [https://www.example.org, {url: https://loket.example.org, min_days: 30}]
  domains:
    - example.org
zones:
  groups: {websites: dmz}
timezone: Europe/Amsterdam
org: utrecht
organisations:
  zeist:
    controls: {paths: [zeist-controls]}
    incidents: {id_prefix: ZT}
    digest: {to: [cio@zeist.example]}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    where = tmp_path / "cache"
    return where


def env(folder: Path, **more: str) -> dict[str, str]:
    return {"COMPLIANCE_CACHE_DIR": str(folder), **more}


def same(model: Any, view: Any, where: str = "settings") -> None:
    """Every field of MODEL (pydantic) equal in VIEW (from the cache), with the same fields set."""
    if isinstance(model, Section):
        assert type(view).__name__ == type(model).__name__, where
        assert view.model_fields_set == model.model_fields_set, where
        for name in type(model).model_fields:
            same(getattr(model, name), getattr(view, name), f"{where}.{name}")
    elif isinstance(model, dict):
        assert type(view) is type(model) and list(view) == list(model), where
        for key in model:
            same(model[key], view[key], f"{where}.{key}")
    elif isinstance(model, list):
        assert type(view) is type(model) and len(view) == len(model), where
        for i, (a, b) in enumerate(zip(model, view, strict=True)):
            same(a, b, f"{where}[{i}]")
    elif hasattr(model, "get_secret_value"):
        assert view.get_secret_value() == model.get_secret_value(), where
    else:
        assert view == model and type(view) is type(model), where


def write(tmp_path: Path, text: str = CONFIG) -> Path:
    config = tmp_path / "compliance.yaml"
    config.write_text(text, encoding="utf-8")
    return config


def test_the_second_load_comes_from_the_cache_and_equals_the_validated_one(tmp_path: Path, folder: Path) -> None:
    config = write(tmp_path)
    first = load_settings(str(config), env(folder))
    assert isinstance(first, Settings)  # validated: nothing in the cache yet
    second = load_settings(str(config), env(folder))
    assert isinstance(second, View)
    same(validate(str(config), environ={}), second)
    # the methods the commands use behave alike
    assert second.database_url == first.database_url == f"sqlite:///{tmp_path}/data/compliance.db"
    assert second.control_paths == first.control_paths
    assert second.zone == first.zone
    assert second.schedule.default_cron == "0 3 * * *"
    assert second.smtp.effective_port == 465 and second.slack.effective_mode is None
    same(first.for_org("zeist", name="Gemeente Zeist", first=False),
         second.for_org("zeist", name="Gemeente Zeist", first=False))
    with pytest.raises(TypeError):
        second.timezone = "UTC"


def test_a_target_keeps_its_position_in_the_file(tmp_path: Path, folder: Path) -> None:
    config = write(tmp_path)
    load_settings(str(config), env(folder))
    cached = load_settings(str(config), env(folder))
    assert isinstance(cached, View) and isinstance(cached.targets, LocDict)
    assert position_of(cached.targets, ("websites", 1, "min_days")) == (15, 82)
    assert position_of(cached.targets, ("domains", 0)) == (17, 7)
    validated = validate(str(config), environ={})
    for loc in [("websites",), ("websites", 0), ("domains", 0), ("domains",)]:
        assert position_of(cached.targets, loc) == position_of(validated.targets, loc)
        assert position_of(cached.targets, loc, key=True) == position_of(validated.targets, loc, key=True)
    assert cached.targets["websites"].path == str(config)


def test_a_changed_file_or_environment_is_seen_at_once(tmp_path: Path, folder: Path) -> None:
    config = write(tmp_path)
    load_settings(str(config), env(folder))
    write(tmp_path, CONFIG.replace("Europe/Amsterdam", "Europe/Brussels"))  # same size, same second
    assert load_settings(str(config), env(folder)).timezone == "Europe/Brussels"
    changed = load_settings(str(config), env(folder, COMPLIANCE_DATABASE_URL="sqlite:////srv/other.db"))
    assert changed.database_url == "sqlite:////srv/other.db"
    assert load_settings(str(config), env(folder, COMPLIANCE_SLACK_CHANNEL="#other")).slack.channel == "#other"
    again = load_settings(str(config), env(folder))  # one entry per config file: validated again
    assert again.slack.channel == "#security" and again.environment == {}
    assert isinstance(load_settings(str(config), env(folder)), View)


def test_secrets_come_from_the_environment_and_are_never_stored(tmp_path: Path, folder: Path) -> None:
    config = write(tmp_path)
    secrets = {"COMPLIANCE_SMTP_PASSWORD": "s3cret-Pa55word", "COMPLIANCE_SLACK_TOKEN": "xoxb-t0ken-value"}
    first = load_settings(str(config), env(folder, **secrets))
    second = load_settings(str(config), env(folder, **secrets))
    assert isinstance(second, View) and isinstance(second.smtp.password, Secret)
    assert second.smtp.password.get_secret_value() == "s3cret-Pa55word"
    assert second.slack.token.get_secret_value() == "xoxb-t0ken-value"
    assert second.slack.effective_mode == first.slack.effective_mode == "token"
    assert "s3cret" not in repr(second) and "xoxb" not in repr(second)
    assert second.environment == first.environment == {"smtp": frozenset({"password"}),
                                                      "slack": frozenset({"token"})}
    stored = b"".join(p.read_bytes() for p in folder.iterdir())
    assert b"s3cret" not in stored and b"xoxb" not in stored and b"t0ken" not in stored
    # another secret value: the same entry, the new value
    third = load_settings(str(config), env(folder, COMPLIANCE_SMTP_PASSWORD="other", COMPLIANCE_SLACK_TOKEN="x"))
    assert third.smtp.password.get_secret_value() == "other"
    without = load_settings(str(config), env(folder))
    assert without.smtp.password is None and without.slack.token is None


def test_a_config_with_a_mistake_is_reported_at_its_line_on_every_run(tmp_path: Path, folder: Path) -> None:
    config = write(tmp_path, CONFIG.replace("  concurrency", "  x").replace("tls: true", "tls: maybe"))
    for _ in range(2):
        with pytest.raises(ValidationFailed) as failed:
            load_settings(str(config), env(folder))
        assert [(p.line, p.message) for p in failed.value.problems] == [
            (11, "smtp.tls: Input should be a valid boolean, unable to interpret input")]
    assert not folder.exists() or not any(folder.iterdir())


def test_the_cache_is_private_and_a_foreign_or_damaged_entry_is_not_used(tmp_path: Path, folder: Path) -> None:
    config = write(tmp_path)
    load_settings(str(config), env(folder))
    assert folder.stat().st_mode & 0o777 == 0o700
    (entry,) = folder.iterdir()
    assert entry.stat().st_mode & 0o777 == 0o600
    data = json.loads(entry.read_text("utf-8"))
    data["data"]["v"]["database"]["v"]["url"] = "sqlite:////tmp/someone-elses.db"
    entry.write_text(json.dumps(data), "utf-8")
    os.chmod(entry, 0o666)  # anyone could have written it: not used
    assert load_settings(str(config), env(folder)).database.url == "sqlite:///data/compliance.db"
    assert entry.stat().st_mode & 0o777 == 0o600  # and replaced
    entry.write_text("{not json", "utf-8")
    assert isinstance(load_settings(str(config), env(folder)), Settings)
    assert isinstance(load_settings(str(config), env(folder)), View)
    os.chmod(folder, 0o777)
    assert isinstance(load_settings(str(config), env(folder)), Settings)
    os.chmod(folder, 0o700)


def test_off_leaves_nothing_behind(tmp_path: Path) -> None:
    config = write(tmp_path)
    home = tmp_path / "home"
    for _ in range(2):
        assert isinstance(load_settings(str(config), {"COMPLIANCE_CACHE_DIR": "off", "HOME": str(home),
                                                      "XDG_CACHE_HOME": str(home / ".cache")}), Settings)
    assert not home.exists()
    assert cache.folder({"XDG_CACHE_HOME": "/x/cache"}) == Path("/x/cache/compliance-monitor")


def test_other_code_does_not_use_an_entry(tmp_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path)
    load_settings(str(config), env(folder))
    assert isinstance(load_settings(str(config), env(folder)), View)
    monkeypatch.setattr("compliance.__version__", "99.0")
    assert isinstance(load_settings(str(config), env(folder)), Settings)


def test_a_command_from_the_cache_imports_neither_pydantic_nor_yaml(tmp_path: Path, folder: Path) -> None:
    write(tmp_path, CONFIG.replace("sqlite:///data/compliance.db", "sqlite:///compliance.db").split("org: utrecht")[0])
    subprocess.run([sys.executable, "-m", "compliance", "db", "upgrade"], cwd=tmp_path, check=True,
                   env={**os.environ, **env(folder)}, capture_output=True)
    probe = ("import sys, runpy\nsys.argv = ['compliance', 'incident', 'list', '--format', 'json']\n"
             "try:\n    runpy.run_module('compliance', run_name='__main__')\n"
             "except SystemExit as e:\n    assert not e.code, e.code\n"
             "print(sorted(m for m in ('pydantic', 'yaml', 'apscheduler', 'sqlalchemy.orm') if m in sys.modules),"
             " file=sys.stderr)")
    shutil.rmtree(folder)  # filled by `db upgrade`
    runs = [subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={**os.environ, **env(folder)},
                           capture_output=True, text=True) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert [json.loads(r.stdout) for r in runs] == [[], []]  # no breaches yet: the command ran
    first, second = (r.stderr.strip().splitlines()[-1] for r in runs)
    assert "pydantic" in first and "yaml" in first  # the first run validated
    assert second == "[]"


def test_the_cache_keeps_a_bounded_number_of_entries(tmp_path: Path, folder: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    for n in range(5):
        cache.write(f"entry-{n}", "k", {"n": n}, env(folder))
        os.utime(folder / f"entry-{n}.json", ns=(n * 10**9, n * 10**9))  # written one after the other
    assert sorted(p.name for p in folder.iterdir()) == ["entry-2.json", "entry-3.json", "entry-4.json"]
    assert cache.read("entry-4", "k", env(folder)) == {"n": 4} and cache.read("entry-0", "k", env(folder)) is None
