"""The wheel as a user installs it: one top-level name, `compliance`, and no clash with local modules.

The wheel is built from a copy of the checkout (an in-tree build would leave a `build/` folder behind,
whose stale files setuptools puts into later wheels) and installed with `--no-deps` into a fresh venv.
Its third-party dependencies come from this venv through a `.pth` file, which saves reinstalling them
all (a minute); the dev venv's own compliance-monitor (the editable install) is never imported there:
its finder is only activated by a `.pth` file of the dev venv, which Python does not read from a folder
that another `.pth` file adds, and the fresh venv's metadata comes first on sys.path (tests below check
both).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
# the plugins pyproject.toml declares, in the order `checks list` shows them
BUILT_IN_PLUGINS = sorted(tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(
    encoding="utf-8"))["project"]["entry-points"]["compliance.checks"])
# Not sources: left out of the copy that the wheel is built from
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "demo", "__pycache__", "*.egg-info",
                                     ".*_cache", "*.db")


@dataclass(frozen=True)
class FreshVenv:
    root: Path
    python: Path
    compliance: Path


def pip(*args: str) -> None:
    """Run this interpreter's pip; in the checkout, so that a relative PIP_CONSTRAINT (as in CI) resolves."""
    subprocess.run([sys.executable, "-m", "pip", "--quiet", *args], cwd=REPO, check=True, timeout=300)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without PYTHON* and COMPLIANCE_* variables, so only what a test sets counts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "COMPLIANCE_"))}
    return env | extra


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "compliance-monitor"
    shutil.copytree(REPO, source, symlinks=True, ignore=NOT_SOURCES)
    out = tmp_path_factory.mktemp("wheel")
    # With build isolation: the venvs of the README and CI have the setuptools of `python -m venv`
    # (65 on Python 3.11), older than the 77 that pyproject.toml needs.
    pip("wheel", "--no-deps", "--wheel-dir", str(out), str(source))
    [built] = out.glob("compliance_monitor-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    root = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    venv = FreshVenv(root, root / "bin" / "python", root / "bin" / "compliance")
    # Before the .pth file exists, so pip sees only this venv (and not the editable compliance-monitor)
    pip("--python", str(venv.python), "install", "--no-deps", str(wheel))
    pip("--python", str(venv.python), "install", "config")  # the PyPI package that owns the name `config`
    site_packages = subprocess.run([venv.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    Path(site_packages, "dev-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_wheel_has_no_top_level_name_but_compliance(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        top_level = {name.split("/")[0] for name in archive.namelist()}
    assert top_level == {"compliance", f"compliance_monitor-{version('compliance-monitor')}.dist-info"}


@pytest.mark.parametrize("pattern", [
    "compliance/cli.py",
    "compliance/checks/tls.py",
    "compliance/checks/ncsc_tls.yaml",
    "compliance/controls/*.yaml",
    "compliance/config/compliance.example.yaml",
    "compliance/incidents/register.py",
])
def test_wheel_holds(wheel: Path, pattern: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        assert fnmatch.filter(archive.namelist(), pattern)


def test_fresh_venv_runs_the_wheel_not_the_checkout(fresh_venv: FreshVenv) -> None:
    probe = """
import json
from importlib.metadata import distribution, entry_points
import compliance, compliance.cli, compliance.checks.tls
print(json.dumps({
    "modules": [compliance.__file__, compliance.cli.__file__, compliance.checks.tls.__file__],
    "distribution": str(distribution("compliance-monitor").locate_file("")),
    "plugins": sorted(ep.name for ep in entry_points(group="compliance.checks")),
    "scripts": [ep.value for ep in entry_points(group="console_scripts", name="compliance")],
}))
"""
    result = subprocess.run([fresh_venv.python, "-c", probe], cwd=fresh_venv.root.parent, env=clean_env(),
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
    found = json.loads(result.stdout)
    assert [module for module in found["modules"] if not Path(module).is_relative_to(fresh_venv.root)] == []
    assert Path(found["distribution"]).is_relative_to(fresh_venv.root)
    # importlib.metadata takes each distribution once, the first on sys.path: the editable one is not counted
    assert (found["plugins"], found["scripts"]) == (BUILT_IN_PLUGINS, ["compliance.cli:main"])


def config_importable(venv: FreshVenv, cwd: Path) -> bool:
    check = "from config import Config; import config, sys; sys.exit(not config.__file__.startswith(sys.prefix))"
    return subprocess.run([venv.python, "-c", check], cwd=cwd, env=clean_env(), timeout=60).returncode == 0


def test_init_and_scan_beside_the_config_package(fresh_venv: FreshVenv, tmp_path: Path) -> None:
    assert config_importable(fresh_venv, tmp_path)
    init = subprocess.run([fresh_venv.compliance, "init"], cwd=tmp_path, env=clean_env(), capture_output=True,
                          text=True, timeout=120)
    assert (init.returncode, init.stderr) == (0, "")
    assert init.stdout.startswith("wrote compliance.yaml\nwrote controls/example.yaml\n")
    scan = subprocess.run([fresh_venv.compliance, "scan", "--format", "json"], cwd=tmp_path, env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    # Exit 1: the shipped catalog's organisational controls fail while no evidence is recorded
    assert (scan.returncode, scan.stderr) == (1, "")
    assert json.loads(scan.stdout)["status"] == "completed"
    assert config_importable(fresh_venv, tmp_path)


def run_beside(venv: FreshVenv, folder: Path, local_file: str, *argv: str) -> str:
    """Run `compliance ARGV` in FOLDER, which holds LOCAL_FILE, with PYTHONPATH=. as many shells have it."""
    (folder / local_file).parent.mkdir(exist_ok=True)
    (folder / local_file).write_text('print("WRONG")\nraise SystemExit(4)\n')
    result = subprocess.run([venv.compliance, *argv], cwd=folder, env=clean_env(PYTHONPATH="."), capture_output=True,
                            text=True, timeout=120)
    assert (result.returncode, result.stderr) == (0, "")
    assert "WRONG" not in result.stdout
    return result.stdout


def test_local_cli_module_does_not_shadow_ours(fresh_venv: FreshVenv, tmp_path: Path) -> None:
    stdout = run_beside(fresh_venv, tmp_path, "cli.py", "--version")
    assert stdout == f"compliance, version {version('compliance-monitor')}\n"


def test_local_config_package_does_not_shadow_ours(fresh_venv: FreshVenv, tmp_path: Path) -> None:
    stdout = run_beside(fresh_venv, tmp_path, "config/__init__.py", "init")
    assert stdout.startswith("wrote compliance.yaml\nwrote controls/example.yaml\n")


def test_local_checks_package_does_not_shadow_ours(fresh_venv: FreshVenv, tmp_path: Path) -> None:
    plugins = json.loads(run_beside(fresh_venv, tmp_path, "checks/__init__.py", "checks", "list", "--format", "json"))
    assert [plugin["name"] for plugin in plugins] == BUILT_IN_PLUGINS
    assert [plugin["name"] for plugin in plugins if plugin["summary"].startswith("BROKEN")] == []
